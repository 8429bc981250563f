"""GPU checks that `bench/gpu.sh` runs (each also runs on a CPU, for testing the script itself).

    python bench/gpu_checks.py correctness [--device cuda] [--steps 50] [--json PATH] [key=value ...]
    python bench/gpu_checks.py nosync [--device cuda] [--steps 3] [--json PATH] [key=value ...]

correctness: the same 50 training steps (same initial weights, same uint8 batches of the embedded
  digits set, same crops and masks, all built on the host) run three times: fp32 on the CPU (the
  reference), fp32 on the device and bf16 autocast on the device. Passes when the device's fp32 loss
  curve matches the CPU's within FP32_TOL and the bf16 curve within BF16_TOL (relative, at every
  step), and the bf16 loss after the last step is within BF16_TOL of the reference. With
  optim.compile=true the two device runs are compiled; the reference stays eager.
nosync: a few training steps of the given config with torch.cuda.set_sync_debug_mode("warn") after
  warm-up; passes when no step synchronises the host with the GPU (no .item(), no blocking copy).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from simple_ijepa.config import validate  # noqa: E402
from simple_ijepa.models import build_model  # noqa: E402
from simple_ijepa.training.step import TrainStep, compile_net, effective_precision  # noqa: E402
from simple_ijepa.training.trainer import make_config  # noqa: E402

# A small model on the embedded digits (8x8 upsampled to 32 px, 8x8 grid of 4 px patches).
SMALL = ["data.dataset_name=digits", "model.image_size=32", "model.patch_size=4", "model.hidden_dim=64",
         "model.depth=2", "model.heads=4", "model.head_dim=16", "model.predictor_dim=64", "model.predictor_depth=2",
         "model.predictor_heads=4", "dataloader.batch_size=64", "optim.learning_rate=5e-4",
         "optim.warmup_fraction=0.2", "ema.gamma=0.99"]
FP32_TOL = 1e-3  # fp32 on two devices: only the summation order differs
BF16_TOL = 0.01  # CPU bf16 autocast vs CPU fp32 on these 50 steps differed by at most 0.08% (measured)


def host_batches(cfg, steps: int) -> list[torch.Tensor]:
    """`steps` seeded uint8 batches of the digits set (synthetic noise if scikit-learn is missing)."""
    g = torch.Generator().manual_seed(cfg.seed)
    B = cfg.dataloader.batch_size
    try:
        from simple_ijepa.data import build_dataset

        ds = build_dataset("digits", cfg.data.dataset_path, "unlabeled")
        return [ds.__getitems__(torch.randint(0, len(ds), (B,), generator=g).tolist())[0] for _ in range(steps)]
    except ImportError as e:
        print(f"digits unavailable ({e}); using synthetic uint8 images")
        return [torch.randint(0, 256, (B, 1, 8, 8), dtype=torch.uint8, generator=g) for _ in range(steps)]


def loss_curve(cfg, device: torch.device, precision: str, inputs: list[tuple], compile: bool) -> list[float]:
    """Train from the seeded initial weights on the given host inputs; the loss of every step."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)  # weights drawn on the CPU: identical on every device
    net = compile_net(model) if compile else model
    step = TrainStep(cfg, model, device, precision, total_steps=len(inputs), net=net)
    losses = [step(tuple(x.to(device) if torch.is_tensor(x) else x for x in batch), s)[0]
              for s, batch in enumerate(inputs)]
    return [float(x) for x in losses]


def correctness(args, overrides: list[str]) -> dict:
    cfg = make_config(SMALL + ["optim.precision=fp32", f"optim.max_steps={args.steps}"] + overrides)
    validate(cfg)
    device = torch.device(args.device)
    cpu = torch.device("cpu")
    with torch.device("meta"):
        shell = build_model(cfg)  # no weights: the host step below only builds inputs
    host_step = TrainStep(cfg, shell, cpu, "fp32", args.steps)
    inputs = [host_step.inputs(b, s) for s, b in enumerate(host_batches(cfg, args.steps))]
    bf16 = effective_precision("bf16", device)  # fp32 when rehearsing on a CPU
    compiled = bool(cfg.optim.compile)  # (the reference is always eager)
    curves = {"ref_cpu_fp32": loss_curve(cfg, cpu, "fp32", inputs, compile=False),
              "dev_fp32": loss_curve(cfg, device, "fp32", inputs, compiled),
              "dev_bf16": loss_curve(cfg, device, bf16, inputs, compiled)}
    ref, fp32_dev, bf16_dev = curves["ref_cpu_fp32"], curves["dev_fp32"], curves["dev_bf16"]
    titles = ("CPU fp32 (ref)", *(f"{device.type} {p}{' compiled' if compiled else ''}" for p in ("fp32", bf16)))
    print(f"loss per step ({args.steps} steps, {cfg.model.hidden_dim}-wide model on digits, batch "
          f"{cfg.dataloader.batch_size}):")
    print("  step " + "".join(f"{t:>20s}" for t in titles))
    for s in sorted({0, 9, 19, 29, 39, args.steps - 1} & set(range(args.steps))):
        print(f"  {s + 1:4d} " + "".join(f"{curve[s]:20.6f}" for curve in (ref, fp32_dev, bf16_dev)))

    def worst(curve):
        return max(abs(a - b) / abs(b) for a, b in zip(curve, ref))

    result = {
        "steps": args.steps, "device": str(device), "device_low_precision": bf16, "curves": curves,
        "fp32_max_rel_diff": worst(fp32_dev), "bf16_max_rel_diff": worst(bf16_dev),
        "bf16_final_rel_diff": abs(bf16_dev[-1] - ref[-1]) / abs(ref[-1]),
        "fp32_tol": FP32_TOL, "bf16_tol": BF16_TOL,
        "loss_fell": ref[-1] < ref[0],
    }
    result["pass"] = (result["fp32_max_rel_diff"] <= FP32_TOL and result["bf16_max_rel_diff"] <= BF16_TOL
                      and result["bf16_final_rel_diff"] <= BF16_TOL and result["loss_fell"])
    print(f"fp32 {device.type} vs CPU: max relative difference {result['fp32_max_rel_diff']:.2e} (tol {FP32_TOL:g}); "
          f"{bf16} vs CPU fp32: max {result['bf16_max_rel_diff']:.2e}, after step {args.steps} "
          f"{result['bf16_final_rel_diff']:.2e} (tol {BF16_TOL:g}); loss {ref[0]:.4f} -> {ref[-1]:.4f}: "
          f"{'PASS' if result['pass'] else 'FAIL'}")
    return result


def nosync(args, overrides: list[str]) -> dict:
    """Training steps under the CUDA sync debugger: every host-device synchronisation warns."""
    cfg = make_config(["dataloader.batch_size=64", "optim.precision=bf16"] + overrides)
    validate(cfg)
    device = torch.device(args.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    net = compile_net(model) if cfg.optim.compile else model
    step = TrainStep(cfg, model, device, effective_precision("bf16", device), 1000, net=net)
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (cfg.dataloader.batch_size, 3, 96, 96), dtype=torch.uint8, generator=g)
    if device.type == "cuda":
        batch = batch.pin_memory()
    for s in range(3):  # warm-up: handles, caches, compilation
        step(step.inputs(batch, s), s)
    syncs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
        try:
            for s in range(3, 3 + args.steps):
                step(step.inputs(batch, s), s)
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
        # The debugger's own "prototype feature" notice is not a sync; real ones name the operation.
        syncs = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
                 if "synchronizing CUDA operation" in str(w.message)]
    for line in syncs[:10]:
        print("  sync:", line)
    result = {"device": str(device), "steps": args.steps, "syncs": len(syncs), "pass": not syncs,
              "checked": device.type == "cuda"}
    print(f"host-device synchronisations in {args.steps} training steps: {len(syncs)}"
          + ("" if device.type == "cuda" else " (not checkable off CUDA)") + f": {'PASS' if not syncs else 'FAIL'}")
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("check", choices=["correctness", "nosync"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=None, help="default: 50 (correctness), 3 (nosync)")
    p.add_argument("--json", default=None, metavar="PATH")
    args, overrides = p.parse_known_args(argv)
    args.steps = args.steps or (50 if args.check == "correctness" else 3)
    result = (correctness if args.check == "correctness" else nosync)(args, overrides)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["pass"] else 1)

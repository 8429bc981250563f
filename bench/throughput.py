"""Training throughput of any config: images/s, FLOPs, achieved FLOP/s, MFU and peak memory.

    python bench/throughput.py [key=value ...] [--steps N] [--warmup N] [--chunk K] [--device cpu|cuda]
                               [--threads N] [--real-data] [--json PATH]

`key=value` are the trainer's overrides (e.g. `dataloader.batch_size=32 optim.compile=true`). The
model, precision (CPU falls back to fp32, as in training), `optim.compile` and the `TrainStep` are
built exactly as `train()` builds them. Images are synthetic uint8 batches of the dataset's shape
held in host memory (pinned on CUDA), as the loader hands them over; `--real-data` reads a few
batches of `data.dataset_name` from `data.dataset_path` instead. Disk reads are not timed either way
(loader workers overlap them with training).

Timed, each as the median over repeats after warm-up (CUDA synchronised around every repeat):
  step   the whole training step: host uint8 batch -> device -> crop/flip -> masks -> forward
         (teacher + student + predictor) -> backward -> AdamW -> EMA. One repeat = `--chunk`
         consecutive steps (default 1) divided by the chunk, so on a GPU the host can run ahead.
  data   the data path alone: host uint8 batch -> augmented float batch on the device.
  masks  mask generation alone, including the copy of the index tensors to the device.
FLOPs per step are counted with torch.utils.flop_counter.FlopCounterMode on a copy of the model
with each timed step's exact masks: teacher forward + student/predictor forward and backward
(matmuls, convolutions and attention, forced to its math form so that it is counted; optimiser and
element-wise work not counted). Padding slots of a padded context cost attention only (the other
layers run on the packed real tokens), and the count says so. MFU = achieved FLOP/s / the matmul
rate measured on this device in the same run (fp32 2048^3 on CPU, bf16 8192^3 on CUDA; median of 10,
measured before and after the step timing, the higher one kept). The last line printed is one JSON
object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from simple_ijepa.config import resolve_precision, validate  # noqa: E402
from simple_ijepa.models import build_model  # noqa: E402
from simple_ijepa.training.step import TrainStep, compile_net, effective_precision  # noqa: E402
from simple_ijepa.training.trainer import make_config  # noqa: E402

# uint8 image shape [C, H, W] of each dataset as the loader returns it ("folder" is resized to model.image_size).
DATA_SHAPES = {"stl10": (3, 96, 96), "digits": (1, 8, 8), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
HEADLINE_IMAGES = 100 * 100_000  # README's headline run: 100 epochs over STL-10's 100k unlabeled images


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Any other argument is a key=value config override.")
    p.add_argument("--steps", type=int, default=10, help="timed repeats of the training step (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--chunk", type=int, default=1, help="consecutive steps per timed repeat (default 1)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--real-data", action="store_true", help="time batches of data.dataset_name, not synthetic")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the JSON result to PATH")
    args, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if "=" not in o or o.startswith("-")]
    if bad:
        p.error(f"unrecognised arguments {bad}: config overrides are key=value")
    return args, overrides


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_repeats(fn, repeats: int, device: torch.device) -> list[float]:
    """Seconds per call of fn(i) for i in range(repeats), synchronised around each call."""
    times = []
    for i in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn(i)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def matmul_peak(device: torch.device, repeats: int = 10) -> tuple[float, str]:
    """Median FLOP/s of a square matrix product: fp32 2048 on CPU, bf16 8192 on CUDA."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    times = time_repeats(lambda i: a @ b, repeats, device)
    return 2 * n ** 3 / statistics.median(times), f"{str(dtype).replace('torch.', '')} {n}x{n}x{n} matmul"


def host_batches(cfg, batch_size: int, count: int, device: torch.device, real: bool) -> list[torch.Tensor]:
    """`count` uint8 [B, C, H, W] batches in host memory (pinned when training on CUDA)."""
    g = torch.Generator().manual_seed(cfg.seed)
    if real:
        from simple_ijepa.data import build_dataset

        ds = build_dataset(cfg.data.dataset_name, cfg.data.dataset_path, "unlabeled",
                           image_size=cfg.model.image_size, min_crop_scale=cfg.data.crop_scale[0], seed=cfg.seed)
        batches = [ds.__getitems__(torch.randint(0, len(ds), (batch_size,), generator=g).tolist())[0]
                   for _ in range(count)]
    else:
        shape = DATA_SHAPES.get(cfg.data.dataset_name, (3, cfg.model.image_size, cfg.model.image_size))
        batches = [torch.randint(0, 256, (batch_size, *shape), dtype=torch.uint8, generator=g) for _ in range(count)]
    return [b.pin_memory() for b in batches] if device.type == "cuda" else batches


class FlopCounter:
    """FLOPs of one training step (teacher forward + forward + backward) for the step's inputs,
    counted with FlopCounterMode on a fresh copy of the model on `device`, with attention forced to
    its math form (so that its matmuls are counted; fused kernels have no FLOP formula). Cached per
    input shapes and number of real context tokens: with padded context the per-token layers run
    on the real tokens only (PackedTokens), so the count falls by the padded share."""

    def __init__(self, cfg, device: torch.device | str = "cpu"):
        self.model = build_model(cfg).to(device)
        self.cache: dict[tuple, int] = {}

    def __call__(self, inputs: tuple) -> int:
        """inputs: the step's (images, context_idx, target_idx, context_valid or None, context_tokens)
        or (images,)."""
        valid = inputs[3] if len(inputs) > 1 else None
        key = tuple(None if x is None else tuple(x.shape) for x in inputs[:4]) + (
            None if valid is None else int(valid.sum()),)
        if key not in self.cache:
            images = inputs[0].float()
            with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                loss, _ = self.model(images, *inputs[1:])
                loss.backward()
            self.model.zero_grad(set_to_none=True)
            self.cache[key] = counter.get_total_flops()
        return self.cache[key]


def peak_memory_bytes(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss (whole process)"


def run(argv: list[str] | None = None) -> dict:
    """Benchmark the config given by argv; print a report and return the figures."""
    args, overrides = parse_args(argv)
    cfg = make_config(overrides)
    validate(cfg)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
        torch.cuda.set_device(device)
    precision = effective_precision(resolve_precision(cfg.optim), device)
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SystemExit("bf16 is not supported on this GPU; use optim.precision=fp16 or fp32.")
    B, chunk = cfg.dataloader.batch_size, max(1, args.chunk)
    total_steps = cfg.optim.max_steps or 1_000_000  # only the LR / EMA schedules read it

    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    net = compile_net(model) if cfg.optim.compile else model
    train_step = TrainStep(cfg, model, device, precision, total_steps, 0, net)
    batches = host_batches(cfg, B, 4, device, args.real_data)
    step_inputs: list[tuple] = []  # every timed step's inputs, for counting FLOPs after the timing
    tokens: list[tuple[float, float, float]] = []  # per image: context slots, real context tokens, target tokens

    def train_steps(first: int, n: int) -> None:
        for s in range(first, first + n):
            inputs = train_step.inputs(batches[s % len(batches)], s)
            train_step(inputs, s)
            step_inputs.append(inputs)
            if len(inputs) > 1:
                _, ctx, tgt, valid, _ = inputs
                real = ctx.shape[1] if valid is None else float(valid.sum()) / B
                tokens.append((ctx.shape[1], real, tgt.shape[1] * tgt.shape[2]))

    t0 = time.perf_counter()
    train_steps(0, args.warmup)
    sync(device)
    warmup_s = time.perf_counter() - t0
    peak_before, peak_what = matmul_peak(device)
    load_before = os.getloadavg()[0]
    step_inputs.clear()
    tokens.clear()

    step_times = [t / chunk for t in time_repeats(lambda i: train_steps(args.warmup + i * chunk, chunk),
                                                  args.steps, device)]
    memory, memory_what = peak_memory_bytes(device)  # of training, before the matmul probe allocates
    counter = FlopCounter(cfg, device)
    step_flops = [counter(inputs) for inputs in step_inputs]
    flops_per_repeat = [sum(step_flops[i * chunk:(i + 1) * chunk]) / chunk for i in range(args.steps)]
    repeats = max(args.steps, 20)
    data_times = time_repeats(lambda i: train_step.augment(batches[i % len(batches)], i), repeats, device)
    mask_times = (time_repeats(lambda i: train_step.masks(B, i), repeats, device)
                  if train_step.mask_gen is not None else [float("nan")])
    peak = max(peak_before, matmul_peak(device)[0])  # the better of before and after: a conservative MFU
    load_after = os.getloadavg()[0]

    step_s = statistics.median(step_times)
    achieved = statistics.median(f / t for f, t in zip(flops_per_repeat, step_times))
    rate = B / step_s
    r = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "precision": precision,
        "compile": bool(cfg.optim.compile), "variant": cfg.variant, "batch_size": B,
        "data": cfg.data.dataset_name if args.real_data else f"synthetic uint8 {cfg.data.dataset_name}-shaped",
        "overrides": overrides, "steps": args.steps, "chunk": chunk, "warmup": args.warmup,
        "warmup_s": warmup_s,
        "step_s": step_s, "step_images_per_s": rate,
        "data_s": statistics.median(data_times), "data_images_per_s": B / statistics.median(data_times),
        "masks_s": statistics.median(mask_times), "masks_images_per_s": B / statistics.median(mask_times),
        "flops_per_image": statistics.mean(flops_per_repeat) / B, "flops_include_teacher_forward": True,
        "patches_per_image": (cfg.model.image_size // cfg.model.patch_size) ** 2,
        "context_slots_per_image": statistics.mean(t[0] for t in tokens) if tokens else None,
        "context_tokens_per_image": statistics.mean(t[1] for t in tokens) if tokens else None,
        "target_tokens_per_image": statistics.mean(t[2] for t in tokens) if tokens else None,
        "achieved_flops_per_s": achieved, "peak_flops_per_s": peak, "peak_measured_with": peak_what,
        "mfu": achieved / peak, "peak_memory_bytes": memory, "peak_memory_from": memory_what,
        "load_average_1min": [load_before, load_after],
        "headline_run_images": HEADLINE_IMAGES, "headline_run_hours": HEADLINE_IMAGES / rate / 3600,
    }
    report(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    return r


def si(x: float, unit: str) -> str:
    """3 significant digits with an SI prefix: si(1.9e10, 'FLOP') == '19.0 GFLOP'."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def report(r: dict) -> None:
    """Human-readable lines, then the whole result as one line of JSON."""
    print(f"device {r['device']} ({r['threads']} threads), torch {r['torch']}, {r['precision']}, "
          f"compile={r['compile']}, {r['variant']}, batch {r['batch_size']}, {r['data']}")
    print(f"warm-up: {r['warmup']} steps in {r['warmup_s']:.1f} s; timed: median of {r['steps']} repeats "
          f"x {r['chunk']} step(s)")
    for key, what in (("step", "whole step (data + masks + fwd/bwd/AdamW/EMA)"), ("data", "data path alone"),
                      ("masks", "mask generation alone")):
        print(f"  {what:48s} {r[key + '_s'] * 1e3:10.2f} ms  {r[key + '_images_per_s']:12.1f} images/s")
    if r["context_slots_per_image"] is not None:
        n = r["patches_per_image"]
        print(f"task per image: {r['context_tokens_per_image']:.1f} context tokens "
              f"({100 * r['context_tokens_per_image'] / n:.0f}% of {n} patches) in {r['context_slots_per_image']:.1f} "
              f"slots ({100 * (1 - r['context_tokens_per_image'] / r['context_slots_per_image']):.0f}% padding), "
              f"{r['target_tokens_per_image']:.1f} target tokens")
    print(f"FLOPs per image (fwd+bwd, teacher forward included): {si(r['flops_per_image'], 'FLOP')}")
    print(f"achieved {si(r['achieved_flops_per_s'], 'FLOP/s')}; measured peak {si(r['peak_flops_per_s'], 'FLOP/s')} "
          f"({r['peak_measured_with']}); MFU {100 * r['mfu']:.1f}%")
    print(f"peak memory {r['peak_memory_bytes'] / 2 ** 30:.2f} GiB ({r['peak_memory_from']}); host load average "
          f"{r['load_average_1min'][0]:.1f} before / {r['load_average_1min'][1]:.1f} after timing "
          f"(other processes on the same cores slow every figure)")
    print(f"README headline run (100 epochs x 100k images = 10M images) at this rate on one device: "
          f"{r['headline_run_hours']:.1f} h")
    print(json.dumps(r))


if __name__ == "__main__":
    run()

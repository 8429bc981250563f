"""Where a training step's GPU time goes: the top kernels of a few profiled steps, grouped by kernel
family, and the attention call alone with each kind of key-padding mask.

    python bench/gpu_profile.py [key=value ...] [--device cuda] [--steps 3] [--warmup 3] [--top 25]
                                [--no-sdpa] [--json PATH]

Builds the model, precision and `optim.compile` exactly as the trainer does (bf16 unless
`optim.precision` says otherwise; the CPU falls back to fp32), runs `--warmup` untimed steps (a
compiled step compiles here; inductor's on-disk cache makes a second process with the same config
compile faster), times `--steps` steps without the profiler (synchronised: wall ms per step), then
profiles `--steps` more. Prints torch.profiler's table (self device time, top `--top` entries) and
the device time per step by kernel family (matmul, attention, triton fused pointwise / reduction,
aten elementwise, layer norm, optimiser, copies, ...; on the CPU the aten ops' self CPU time by the
same families), and how busy the device was (kernel time / wall time per step: well under 1 means
the step waits on the host, e.g. kernel launches). Then, on CUDA and unless `--no-sdpa`,
forward+backward timings of one `scaled_dot_product_attention` call at the predictor's and the
context encoder's shapes with: no mask, our additive bias [B, 1, 1, K], the same bias expanded to
[B, H, Q, K], and a boolean mask. `--json` writes the families, the top entries and the timings.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from simple_ijepa.config import resolve_precision, validate  # noqa: E402
from simple_ijepa.models import build_model  # noqa: E402
from simple_ijepa.training.step import TrainStep, compile_net, effective_precision  # noqa: E402
from simple_ijepa.training.trainer import make_config  # noqa: E402

# Kernel (CUDA) or aten op (CPU) name -> family: the first pattern that matches (case-insensitive).
FAMILIES = [
    ("attention", r"flash|fmha|sdpa|attention|softmax"),
    ("matmul", r"gemm|nvjet|cutlass|xmma|cublas|triton_tem|aten::(mm|addmm|bmm|matmul|linear|baddbmm)$"),
    ("optimiser + EMA", r"multi_tensor|fused_adam|adamw|foreach|lerp"),
    ("layer norm", r"layer_?norm|gammabeta|aten::native_layer_norm"),
    ("triton fused reduction", r"triton_(red|per)_"),
    ("triton fused pointwise", r"triton_poi_"),
    ("other triton", r"triton"),
    ("reduction (aten)", r"reduce_kernel|aten::(sum|mean|amax|max|norm|var|std)"),
    ("copy / memset", r"memcpy|memset|copy|aten::(copy_|to|_to_copy|contiguous|clone)"),
    ("index / gather / scatter", r"index|gather|scatter|nonzero|grid_sampler|aten::(take|masked)"),
    ("elementwise (aten)", r"elementwise|aten::"),
]
_FAMILY_RE = [(name, re.compile(p, re.IGNORECASE)) for name, p in FAMILIES]


def family(name: str) -> str:
    for fam, pattern in _FAMILY_RE:
        if pattern.search(name):
            return fam
    return "other"


def time_ms(fn, device, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / repeats


def attention_masks(device, B: int, H: int, Q: int, K: int, Dh: int = 64) -> dict[str, float]:
    """Forward + backward of one SDPA call, [B, H, Q|K, Dh] bf16, with each mask form: ms per call."""
    q = torch.randn(B, H, Q, Dh, device=device, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, H, K, Dh, device=device, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, H, K, Dh, device=device, dtype=torch.bfloat16, requires_grad=True)
    valid = torch.rand(B, K, device=device) < 0.9
    valid[:, 0] = True
    bias = torch.zeros(B, K, device=device, dtype=torch.bfloat16).masked_fill(~valid, float("-inf"))[:, None, None]
    masks = {"none": None, "bias [B,1,1,K]": bias, "bias expanded [B,H,Q,K]": bias.expand(B, H, Q, K).contiguous(),
             "bool [B,1,1,K]": valid[:, None, None, :]}
    result = {}
    for name, m in masks.items():
        def run():
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
            out.sum().backward()
        result[name] = time_ms(run, device)
        print(f"  SDPA fwd+bwd B={B} H={H} Q={Q} K={K}: {name:26s} {result[name]:8.3f} ms")
    return result


def kernel_rows(prof, on_cuda: bool) -> list[dict]:
    """The profile's entries that hold the time: CUDA kernels (self device time) on a GPU, else the
    aten ops (self CPU time); name, total ms and calls."""
    rows = []
    for e in prof.key_averages():
        if on_cuda:
            if e.device_type != torch.autograd.DeviceType.CUDA:
                continue
            us = getattr(e, "self_device_time_total", None)
            us = e.self_cuda_time_total if us is None else us
        else:
            if not e.key.startswith("aten::"):
                continue
            us = e.self_cpu_time_total
        if us > 0:
            rows.append({"name": e.key, "ms": us / 1000.0, "calls": e.count})
    return sorted(rows, key=lambda r: -r["ms"])


def by_family(rows: list[dict], steps: int, wall_ms: float) -> list[dict]:
    """Rows summed per family: ms and calls per step, share of the device time, the top 3 names."""
    total = sum(r["ms"] for r in rows) or 1e-9
    fams: dict[str, dict] = {}
    for r in rows:
        f = fams.setdefault(family(r["name"]), {"ms": 0.0, "calls": 0, "top": []})
        f["ms"] += r["ms"]
        f["calls"] += r["calls"]
        if len(f["top"]) < 3:
            f["top"].append(r["name"][:100])
    out = [{"family": name, "ms_per_step": f["ms"] / steps, "share_of_device_time": f["ms"] / total,
            "share_of_wall": f["ms"] / steps / wall_ms if wall_ms else None, "calls_per_step": f["calls"] / steps,
            "top": f["top"]} for name, f in fams.items()]
    return sorted(out, key=lambda f: -f["ms_per_step"])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=3, help="steps timed, then as many profiled")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--no-sdpa", action="store_true", help="leave out the SDPA mask timings")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the result as JSON to PATH")
    args, overrides = p.parse_known_args(argv)
    cfg = make_config(["optim.precision=bf16"] + overrides)
    validate(cfg)
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
        torch.cuda.set_device(device)
    on_cuda = device.type == "cuda"

    def sync():
        if on_cuda:
            torch.cuda.synchronize(device)

    precision = effective_precision(resolve_precision(cfg.optim), device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    net = compile_net(model) if cfg.optim.compile else model
    step = TrainStep(cfg, model, device, precision, 1000, 0, net)
    g = torch.Generator().manual_seed(0)
    S = cfg.model.image_size
    batch = torch.randint(0, 256, (cfg.dataloader.batch_size, 3, S, S), dtype=torch.uint8, generator=g)
    if on_cuda:
        batch = batch.pin_memory()
    t0 = time.perf_counter()
    for s in range(args.warmup):
        inputs = step.inputs(batch, s)
        step(inputs, s)
    sync()
    warmup_s = time.perf_counter() - t0
    shapes = [tuple(x.shape) for x in inputs if isinstance(x, torch.Tensor)]
    s0 = args.warmup
    t0 = time.perf_counter()
    for s in range(s0, s0 + args.steps):
        step(step.inputs(batch, s), s)
    sync()
    wall_ms = (time.perf_counter() - t0) * 1000 / args.steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with profile(activities=activities) as prof:
        for s in range(s0 + args.steps, s0 + 2 * args.steps):
            step(step.inputs(batch, s), s)
        sync()
    key = "self_cuda_time_total" if on_cuda else "self_cpu_time_total"
    print(f"{cfg.variant}, {precision}, compile={bool(cfg.optim.compile)}, batch {cfg.dataloader.batch_size}, "
          f"warm-up {args.warmup} steps in {warmup_s:.1f} s, last warm-up input shapes {shapes}")
    print(prof.key_averages().table(sort_by=key, row_limit=args.top, max_name_column_width=60))
    rows = kernel_rows(prof, on_cuda)
    fams = by_family(rows, args.steps, wall_ms)
    busy_ms = sum(r["ms"] for r in rows) / args.steps
    what = "device (kernel) time" if on_cuda else "aten ops' self CPU time"
    print(f"wall {wall_ms:.2f} ms per step (unprofiled, mean of {args.steps}); {what} "
          f"{busy_ms:.2f} ms per step ({100 * busy_ms / wall_ms:.0f}% of the wall)")
    print(f"{'family':26s} {'ms/step':>9s} {'share':>7s} {'calls/step':>11s}  top entry")
    for f in fams:
        print(f"{f['family']:26s} {f['ms_per_step']:9.3f} {100 * f['share_of_device_time']:6.1f}% "
              f"{f['calls_per_step']:11.1f}  {f['top'][0][:60]}")
    result = {
        "device": torch.cuda.get_device_name(device) if on_cuda else "cpu", "torch": torch.__version__,
        "overrides": overrides, "variant": cfg.variant, "precision": precision, "compile": bool(cfg.optim.compile),
        "batch_size": cfg.dataloader.batch_size, "warmup_steps": args.warmup, "warmup_s": warmup_s,
        "steps": args.steps, "wall_ms_per_step": wall_ms, "busy_ms_per_step": busy_ms,
        "busy_fraction": busy_ms / wall_ms, "time_is": what, "families": fams,
        "top": [{**r, "ms_per_step": r["ms"] / args.steps, "calls_per_step": r["calls"] / args.steps,
                 "family": family(r["name"])} for r in rows[:args.top]],
    }
    if on_cuda and not args.no_sdpa:
        B, H = cfg.dataloader.batch_size, cfg.model.heads
        N = (S // cfg.model.patch_size) ** 2
        result["sdpa_ms"] = {
            "predictor": attention_masks(device, B * cfg.model.num_targets, cfg.model.predictor_heads, N // 3, N // 3),
            "encoder": attention_masks(device, B, H, N // 4, N // 4)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()

"""Where a training step's GPU time goes: the top kernels of a few profiled steps, and the attention
call alone with each kind of key-padding mask.

    python bench/gpu_profile.py [key=value ...] [--device cuda] [--steps 3] [--top 25]

Prints torch.profiler's table (self device time, top `--top` ops) for `--steps` training steps of
the given config after 3 warm-up steps, then forward+backward timings of one
`scaled_dot_product_attention` call at the predictor's and the context encoder's shapes with: no
mask, our additive bias [B, 1, 1, K], the same bias expanded to [B, H, Q, K], and a boolean mask.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from simple_ijepa.config import validate  # noqa: E402
from simple_ijepa.models import build_model  # noqa: E402
from simple_ijepa.training.step import TrainStep, effective_precision  # noqa: E402
from simple_ijepa.training.trainer import make_config  # noqa: E402


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


def attention_masks(device, B: int, H: int, Q: int, K: int, Dh: int = 64) -> None:
    """Forward + backward of one SDPA call, [B, H, Q|K, Dh] bf16, with each mask form."""
    q = torch.randn(B, H, Q, Dh, device=device, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, H, K, Dh, device=device, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, H, K, Dh, device=device, dtype=torch.bfloat16, requires_grad=True)
    valid = torch.rand(B, K, device=device) < 0.9
    valid[:, 0] = True
    bias = torch.zeros(B, K, device=device, dtype=torch.bfloat16).masked_fill(~valid, float("-inf"))[:, None, None]
    masks = {"none": None, "bias [B,1,1,K]": bias, "bias expanded [B,H,Q,K]": bias.expand(B, H, Q, K).contiguous(),
             "bool [B,1,1,K]": valid[:, None, None, :]}
    for name, m in masks.items():
        def run():
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
            out.sum().backward()
        print(f"  SDPA fwd+bwd B={B} H={H} Q={Q} K={K}: {name:26s} {time_ms(run, device):8.3f} ms")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    args, overrides = p.parse_known_args(argv)
    cfg = make_config(["optim.precision=bf16"] + overrides)
    validate(cfg)
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    step = TrainStep(cfg, model, device, effective_precision("bf16", device), 1000)
    g = torch.Generator().manual_seed(0)
    S = cfg.model.image_size
    batch = torch.randint(0, 256, (cfg.dataloader.batch_size, 3, S, S), dtype=torch.uint8, generator=g)
    shapes = []
    for s in range(3):
        inputs = step.inputs(batch, s)
        step(inputs, s)
    shapes = [tuple(x.shape) for x in inputs]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for s in range(3, 3 + args.steps):
            step(step.inputs(batch, s), s)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{cfg.variant}, batch {cfg.dataloader.batch_size}, last warm-up input shapes {shapes}")
    print(prof.key_averages().table(sort_by=key, row_limit=args.top, max_name_column_width=60))
    if device.type == "cuda":
        B, H = cfg.dataloader.batch_size, cfg.model.heads
        N = (S // cfg.model.patch_size) ** 2
        attention_masks(device, B * cfg.model.num_targets, cfg.model.predictor_heads, N // 3, N // 3)
        attention_masks(device, B, H, N // 4, N // 4)


if __name__ == "__main__":
    main()

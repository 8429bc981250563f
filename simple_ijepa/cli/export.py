"""Export a trained encoder as a timm VisionTransformer (the library: simple_ijepa/export.py).

    python -m simple_ijepa.export --ckpt_path models/encoder_ddp.pth --timm encoder_timm.safetensors
"""
from __future__ import annotations

import argparse

from ..checkpoints import load_encoder
from ..errors import run_command
from ..export import save_timm, timm_load_snippet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simple_ijepa.export",
                                description="Export a trained encoder as a timm VisionTransformer.")
    p.add_argument("--ckpt_path", required=True,
                   help="encoder file (encoder_*.pth / .safetensors) or training checkpoint (its EMA teacher)")
    p.add_argument("--timm", required=True, metavar="OUT.safetensors",
                   help="where to write the timm state dict (its timm kwargs go in the file's metadata)")
    args = p.parse_args(argv)
    if not args.timm.endswith(".safetensors"):
        p.error(f"--timm {args.timm!r}: the file is written as safetensors; give it a .safetensors name.")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the command; returns the timm kwargs written into the file."""
    args = parse_args(argv)
    encoder = load_encoder(args.ckpt_path)
    kwargs = save_timm(encoder, args.timm)
    print(f"Wrote {args.timm}: timm VisionTransformer({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")
    print("Load it in timm (images: [B, 3, S, S], normalised with ImageNet mean/std):\n")
    print(timm_load_snippet(args.timm))
    return kwargs


def cli() -> None:
    """`ijepa-export` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

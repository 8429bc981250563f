"""Fine-tune a saved encoder on a labelled dataset and report top-1 on its test split.

    python -m simple_ijepa.finetune --ckpt_path models/encoder_ddp.pth --dataset_name fashion_mnist --epochs 10
    python -m simple_ijepa.finetune ... --linear          # a linear head on the frozen encoder
    python -m simple_ijepa.finetune ... --from-scratch    # the same recipe from random init

`--ckpt_path` takes what `evaluate` takes (an encoder file or a training checkpoint's teacher;
`--student` for the student); with --from-scratch it only gives the architecture. Writes
OUT_DIR/classifier.safetensors (weights; the encoder shape, classes, recipe and results in its
metadata). The last line printed is `top1=0.xxxx` on the test split.
"""
from __future__ import annotations

import argparse
import json
import logging
import os

import torch

from ..checkpoints import load_encoder
from ..errors import run_command
from ..evaluation.finetune import FinetuneConfig, finetune, save_classifier
from ..models.vit import VisionTransformer
from .evaluate import add_source_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simple_ijepa.finetune", description=__doc__.split("\n\n")[0])
    add_source_args(p)
    d = FinetuneConfig()
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch_size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of the head (AdamW, cosine)")
    p.add_argument("--weight_decay", type=float, default=d.weight_decay)
    p.add_argument("--layer_decay", type=float, default=d.layer_decay, help="layer-wise LR decay per block")
    p.add_argument("--linear", action="store_true", help="train a linear head on the frozen encoder")
    p.add_argument("--from-scratch", dest="from_scratch", action="store_true",
                   help="start from random init (the checkpoint gives the architecture only)")
    p.add_argument("--crop_scale", type=float, nargs=2, default=list(d.crop_scale), metavar=("LOW", "HIGH"),
                   help="area range of the training crops")
    p.add_argument("--no_hflip", action="store_true", help="no horizontal flips (e.g. digits)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max_train_samples", type=int, default=None,
                   help="fine-tune on a fixed subset of this many training images (default: all)")
    p.add_argument("--max_test_samples", type=int, default=None, help="score on a fixed test subset (default: all)")
    p.add_argument("--out_dir", default="./finetune")
    args = p.parse_args(argv)
    for key in ("epochs", "batch_size", "max_train_samples", "max_test_samples"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key} must be >= 1")
    if args.lr <= 0 or not 0 < args.layer_decay <= 1 or args.weight_decay < 0:
        p.error("--lr must be > 0, --layer_decay in (0, 1], --weight_decay >= 0")
    if not 0 < args.crop_scale[0] <= args.crop_scale[1] <= 1:
        p.error("--crop_scale needs 0 < LOW <= HIGH <= 1")
    return args


def main(argv: list[str] | None = None) -> float:
    """Run the command; returns the final top-1."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    encoder = load_encoder(args.ckpt_path, teacher=not args.student)
    if args.from_scratch:
        torch.manual_seed(args.seed)
        encoder = VisionTransformer(encoder.config)
    cfg = FinetuneConfig(args.epochs, args.batch_size, args.lr, args.weight_decay, args.layer_decay, args.linear,
                         tuple(args.crop_scale), not args.no_hflip, args.seed, args.max_train_samples,
                         args.max_test_samples)
    model, history = finetune(encoder, args.dataset_name, args.dataset_path, cfg, args.device, args.download)
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "classifier.safetensors")
    save_classifier(model, path, cfg, {"top1_per_epoch": history, "ckpt_path": args.ckpt_path,
                                       "from_scratch": args.from_scratch, "dataset": args.dataset_name})
    mode = "linear head" if args.linear else "full fine-tuning" + (" from scratch" if args.from_scratch else "")
    print(f"{args.dataset_name}, {mode}, {args.epochs} epochs: top-1 per epoch {json.dumps(history)}; wrote {path}")
    print(f"top1={history[-1]:.4f}")
    return history[-1]


def cli() -> None:
    """`ijepa-finetune` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

"""Fine-tune a saved encoder on a labelled dataset and report top-1 on its test split.

    python -m simple_ijepa.finetune --ckpt_path models/encoder_ddp.pth --dataset_name fashion_mnist --epochs 10
    python -m simple_ijepa.finetune ... --linear          # a linear head on the frozen encoder
    python -m simple_ijepa.finetune ... --from_scratch    # the same recipe from random init

`--ckpt_path` takes what `evaluate` takes (an encoder file or a training checkpoint's teacher;
`--student` for the student); with --from_scratch it only gives the architecture. Writes
OUT_DIR/classifier.safetensors (weights; the encoder shape, classes, recipe and results in its
metadata). The last line printed is `top1=0.xxxx` on the test split; `--output FILE.json` writes
the same figures as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os

import torch

from ..checkpoints import load_encoder
from ..errors import run_command
from ..evaluation.finetune import FinetuneConfig, finetune, save_classifier
from ..models.vit import VisionTransformer
from . import checks
from .evaluate import add_source_args, dataset_defaults


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = checks.parser("python -m simple_ijepa.finetune", __doc__.split("\n\n")[0])
    add_source_args(p)
    d = FinetuneConfig()
    p.add_argument("--epochs", type=checks.positive_int, default=d.epochs, help="passes over the training images")
    p.add_argument("--batch_size", type=checks.positive_int, default=d.batch_size, help="images per step")
    p.add_argument("--lr", type=checks.positive_float, default=d.lr,
                   help="peak learning rate of the head (AdamW, cosine)")
    p.add_argument("--weight_decay", type=float, default=d.weight_decay, help="AdamW weight decay of the matrices")
    p.add_argument("--layer_decay", type=float, default=d.layer_decay, help="layer-wise LR decay per block")
    p.add_argument("--linear", action="store_true", help="train a linear head on the frozen encoder")
    p.add_argument("--from_scratch", dest="from_scratch", action="store_true",
                   help="start from random init (the checkpoint gives the architecture only)")
    p.add_argument("--crop_scale", type=float, nargs=2, default=list(d.crop_scale), metavar=("LOW", "HIGH"),
                   help="area range of the training crops")
    p.add_argument("--no_hflip", action="store_true", help="no horizontal flips (e.g. digits)")
    p.add_argument("--seed", type=checks.seed, default=d.seed, help="head init, image order and crops")
    p.add_argument("--max_train_samples", type=checks.positive_int, default=None,
                   help="fine-tune on a fixed subset of this many training images (default: all)")
    p.add_argument("--max_test_samples", type=checks.positive_int, default=None,
                   help="score on a fixed test subset (default: all)")
    p.add_argument("--out_dir", default="./finetune", help="where classifier.safetensors goes")
    checks.add_output(p)
    args = p.parse_args(argv)
    if not 0 < args.layer_decay <= 1:
        p.error(f"argument --layer_decay: {args.layer_decay} is not in (0, 1]")
    if not 0 <= args.weight_decay < float("inf"):
        p.error(f"argument --weight_decay: {args.weight_decay} is not a finite number >= 0")
    if not 0 < args.crop_scale[0] <= args.crop_scale[1] <= 1:
        p.error(f"argument --crop_scale: {args.crop_scale} needs 0 < LOW <= HIGH <= 1")
    return args


def main(argv: list[str] | None = None) -> float:
    """Run the command; returns the final top-1."""
    args = parse_args(argv)
    checks.output_dir(args.out_dir, "--out_dir", inputs=[args.ckpt_path])
    checks.json_output(args.output, inputs=[args.ckpt_path])
    checks.student_source(args.ckpt_path, args.student)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dataset_defaults(args)
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
    checks.write_json(args.output, {
        "ckpt_path": args.ckpt_path, "student": args.student, "dataset_name": args.dataset_name,
        "dataset_path": args.dataset_path, "mode": mode, "recipe": dataclasses.asdict(cfg),
        "top1_per_epoch": history, "top1": history[-1], "classifier": path})
    return history[-1]


def cli() -> None:
    """`ijepa-finetune` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

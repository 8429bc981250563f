"""Gate experiments on a trained Gated I-JEPA checkpoint (the experiments: analysis/gate_analysis.py).

    python -m simple_ijepa.gate_experiments --ckpt_path ./models/training_model_gated_ddp.pth \\
        --dataset_path ./data --split train --num_batches 50 --out_dir ./gate_analysis

The model is rebuilt from the configuration saved in the checkpoint; the dataset defaults to the
one it was trained on. Writes the eight files of the original README into --out_dir and prints a summary
(with `--output FILE.json`, also as JSON).
"""
from __future__ import annotations

import argparse
import os

from ..data import build_dataset
from ..data.datasets import DATASETS, SPLITS
from ..errors import run_command
from . import checks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = checks.parser("python -m simple_ijepa.gate_experiments", __doc__.split("\n")[0])
    p.add_argument("--ckpt_path", required=True, help="training checkpoint of a gated run")
    p.add_argument("--dataset_path", default=None,
                   help="dataset root (default: the checkpoint's data.dataset_path for its dataset, else ./data)")
    p.add_argument("--dataset_name", default=None, choices=tuple(DATASETS),
                   help="default: the checkpoint's data.dataset_name")
    p.add_argument("--split", default="train", choices=SPLITS, help="which split's images are analysed")
    p.add_argument("--batch_size", type=checks.positive_int, default=256, help="images per forward pass")
    p.add_argument("--num_workers", type=checks.non_negative_int, default=min(4, os.cpu_count() or 1),
                   help="DataLoader workers (0 = load in this process)")
    p.add_argument("--num_batches", type=checks.positive_int, default=50,
                   help="batches analysed (seeded random images)")
    p.add_argument("--out_dir", default="./gate_analysis", help="where the eight output files go")
    p.add_argument("--device", type=checks.device, default=checks.default_device(),
                   help="cpu, cuda, cuda:N or mps (the default: the first GPU, else cpu)")
    p.add_argument("--seed", type=checks.seed, default=0, help="image order, noise and random gates")
    checks.add_output(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    checks.output_dir(args.out_dir, "--out_dir", inputs=[args.ckpt_path])
    checks.json_output(args.output, inputs=[args.ckpt_path])
    from ..analysis.gate_analysis import format_summary, load_gated_model, run_gate_experiments

    model, cfg = load_gated_model(args.ckpt_path, args.device)
    name = args.dataset_name or cfg.data.dataset_name
    path = args.dataset_path or (cfg.data.dataset_path if name == cfg.data.dataset_name else "./data")
    dataset = build_dataset(name, path, args.split, image_size=cfg.model.image_size)
    summary = run_gate_experiments(model, cfg, dataset, args.out_dir, args.batch_size, args.num_batches,
                                   args.num_workers, args.seed)
    gate = "final tokens" if model.gate_layer_index is None else \
        f"block {model.gate_layer_index}, {model.gate_location}"
    print(f"{args.ckpt_path} ({name}/{args.split}):")
    print(format_summary(summary, gate))
    checks.write_json(args.output, {"ckpt_path": args.ckpt_path, "dataset_name": name, "dataset_path": path,
                                    "split": args.split, "gate": gate, "summary": summary})
    return summary


def cli() -> None:
    """`ijepa-gates` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

"""Probe a saved encoder against the same architecture at random initialisation.

    python -m simple_ijepa.evaluate --ckpt_path models/encoder_ddp.pth --dataset_name stl10 --dataset_path ./data

`--ckpt_path` takes an encoder file (encoder_*.pth / .safetensors) or a training checkpoint (its
EMA teacher; `--student` for the student). A Gated I-JEPA training checkpoint
(training_model_gated_ddp.pth) is probed four ways: the student with its learned gates ("gated",
deterministic gates, gate-weighted mean), the student with every gate open ("all_open"), the EMA
teacher, and random init. Then the same probes on raw pixels (the images as the encoder sees them,
flattened and standardised): has pretraining beaten the pixels? Prints linear-probe and k-NN top-1
accuracy of each.
"""
from __future__ import annotations

import argparse
import logging
import os

from ..checkpoints import training_data
from ..data.datasets import DATASETS
from ..errors import ConfigError, run_command
from ..evaluation import LinearProbe
from ..evaluation.reference import (
    load_checkpoint,
    probe_gated_with_random_init,
    probe_with_random_init,
    raw_pixels,
)
from . import checks


def add_source_args(p: argparse.ArgumentParser) -> None:
    """The arguments of what to load and where (`load_checkpoint`, `build_dataset`), shared with
    `visualize` and `finetune`: --ckpt_path, --dataset_name, --dataset_path, --student, --download, --device.
    Call `dataset_defaults` on the parsed arguments."""
    p.add_argument("--ckpt_path", required=True, help="encoder file or training checkpoint")
    p.add_argument("--dataset_name", default=None, choices=tuple(DATASETS),
                   help="default: the dataset the encoder was trained on (recorded in its file), else stl10")
    p.add_argument("--dataset_path", default=None,
                   help="default: the training run's data.dataset_path for that dataset, else ./data")
    p.add_argument("--student", action="store_true", help="from a training checkpoint, take the student")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset")
    p.add_argument("--device", type=checks.device, default=checks.default_device(),
                   help="cpu, cuda, cuda:N or mps (the default: the first GPU, else cpu)")


def dataset_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill --dataset_name / --dataset_path left out from what the encoder file records of its training
    data (`checkpoints.training_data`); without a record, stl10 in ./data (the seed README's)."""
    trained_on = training_data(args.ckpt_path) if os.path.isfile(args.ckpt_path) else None
    if args.dataset_name is None:
        args.dataset_name = trained_on["dataset_name"] if trained_on else "stl10"
        if trained_on:
            logging.getLogger("simple_ijepa").info(
                f"--dataset_name {args.dataset_name}: the dataset the encoder was trained on")
    if args.dataset_path is None:
        same = trained_on and trained_on["dataset_name"] == args.dataset_name and trained_on["dataset_path"]
        args.dataset_path = trained_on["dataset_path"] if same else "./data"
    return args


def parse_args(argv=None) -> argparse.Namespace:
    p = checks.parser("python -m simple_ijepa.evaluate", __doc__.split("\n\n")[0])
    add_source_args(p)
    p.add_argument("--image_size", type=checks.positive_int, default=None, help="default: the encoder's own")
    p.add_argument("--classifier", default="calibrated", choices=("calibrated", "logistic", "torch"),
                   help="linear probe: logistic regression in 3-fold sigmoid calibration (the original README's), "
                        "plain logistic regression, or full-batch L-BFGS in torch (docs/evaluation.md)")
    p.add_argument("--max_train_samples", type=checks.int_at_least(2), default=None,
                   help="default: all (a folder: 10,000)")
    p.add_argument("--max_test_samples", type=checks.int_at_least(2), default=None,
                   help="default: all (a folder: 10,000)")
    p.add_argument("--num_workers", type=checks.non_negative_int, default=min(4, os.cpu_count() or 1),
                   help="processes that decode a folder's images (default: up to 4, at most the CPU count)")
    p.add_argument("--batch_size", type=checks.positive_int, default=256, help="images per forward pass")
    p.add_argument("--knn_k", type=checks.positive_int, default=20, help="neighbours in the weighted k-NN vote")
    p.add_argument("--seed", type=checks.seed, default=0, help="seed of the random-init reference")
    p.add_argument("--n_last_blocks", type=checks.positive_int, default=1,
                   help="probe the last k blocks' tokens concatenated (the paper reports the best of 1 and 4)")
    p.add_argument("--no_raw_pixels", action="store_true",
                   help="leave out the raw-pixels row (at 96 px it fits a probe on 27,648 features per image)")
    checks.add_output(p)
    return p.parse_args(argv)


def main(argv=None) -> dict[str, dict[str, float]]:
    """Run the command; returns {"pretrained": {...}, "random init": {...}, "raw pixels": {...}} of
    probe_acc / knn_acc ({"gated", "all_open", "EMA teacher", "random init", "raw pixels"} for a gated
    training checkpoint; no "raw pixels" with --no_raw_pixels)."""
    args = parse_args(argv)
    checks.json_output(args.output, inputs=[args.ckpt_path])
    checks.student_source(args.ckpt_path, args.student)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dataset_defaults(args)
    gated, encoder = load_checkpoint(args.ckpt_path, args.student, args.device)
    vit = (gated.encoder if gated is not None else encoder).config
    size = args.image_size or vit.image_size
    if not 1 <= args.n_last_blocks <= vit.depth:
        raise ConfigError(f"--n_last_blocks {args.n_last_blocks}: must be in [1, {vit.depth}] (the encoder's depth).")
    if gated is not None and args.n_last_blocks != 1:
        raise ConfigError("--n_last_blocks applies to I-JEPA encoders; a gated checkpoint's gated features pool "
                         "its last block. Add --student to probe its student encoder on several blocks.")
    if size != vit.image_size:
        raise ConfigError(f"--image_size {size} does not match the encoder's {vit.image_size} "
                         "(its positions are fixed to that grid); leave --image_size out.")
    evaluator = LinearProbe(size, args.dataset_path, args.dataset_name, args.classifier, args.knn_k,
                          args.batch_size, args.max_train_samples, args.max_test_samples, args.device,
                          args.download, args.num_workers)
    if gated is not None:
        results = probe_gated_with_random_init(gated, evaluator, args.seed, args.device)
    else:
        results = probe_with_random_init(encoder, evaluator, args.seed, args.device, args.n_last_blocks)
    if not args.no_raw_pixels:
        results["raw pixels"] = evaluator.evaluate(raw_pixels, name="raw pixels")
    n_train = min(len(evaluator.train_set), evaluator.max_train_samples or len(evaluator.train_set))
    n_test = min(len(evaluator.test_set), evaluator.max_test_samples or len(evaluator.test_set))
    print(f"\n{args.dataset_name}: {n_train} train / {n_test} test images, "
          f"{args.classifier} linear probe, {args.knn_k}-NN"
          + (f", the last {args.n_last_blocks} blocks' tokens concatenated" if args.n_last_blocks > 1 else ""))
    print(f"{'encoder':<24}{'linear probe':>14}{'k-NN':>10}")
    for name, r in results.items():
        label = f"random init (seed {args.seed})" if name == "random init" else name
        print(f"{label:<24}{r['probe_acc']:>14.4f}{r['knn_acc']:>10.4f}")
    checks.write_json(args.output, {
        "ckpt_path": args.ckpt_path, "student": args.student, "dataset_name": args.dataset_name,
        "dataset_path": args.dataset_path, "train_images": n_train, "test_images": n_test,
        "classifier": args.classifier, "knn_k": args.knn_k, "n_last_blocks": args.n_last_blocks,
        "random_init_seed": args.seed, "results": results})
    return results


def cli() -> None:
    """`ijepa-evaluate` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

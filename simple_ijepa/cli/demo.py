"""The quick demo: pretrain I-JEPA on scikit-learn's digits (embedded, no download) on a CPU, then
compare a linear probe and k-NN of the pretrained encoder with the same encoder at random init.

    python -m simple_ijepa.demo                      # about 9 minutes on a 2-core CPU
    python -m simple_ijepa.demo optim.max_steps=100  # any TrainConfig override

The demo is the `experiment=cpu_small` preset as it is (presets.py; docs/experiments/) on the 8x8
digits upsampled to its 28 px: a 7x7 grid of patches, a 192-wide encoder, a 4-block predictor that
computes the context once for all target blocks, a constant learning rate after the warm-up, an EMA
momentum of 0.998, crops of 60-100% and no flips (digits are not mirror-symmetric), 1,000 steps.
Over seeds 0-4 its teacher beat random init by +7.6 to +9.8 points linear and +20.0 to +29.5 20-NN
(bench/results/demo_seeds.jsonl). The demo before it (the preset's earlier 2-block predictor and
EMA 0.99, 300 steps, 3 minutes) gained only +1.9 to +3.4 linear. It prints the linear probe and
k-NN of the EMA teacher and of the student next to the same encoder at random init.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..checkpoints import load_encoder
from ..config import make_config
from ..errors import run_command
from ..evaluation import LinearProbe
from ..evaluation.probe import linear_probe_accuracy
from ..evaluation.reference import probe_with_random_init
from ..training.trainer import train

DEMO_OVERRIDES = [
    "experiment=cpu_small", "data.dataset_name=digits", "eval.enabled=false", "eval.classifier=calibrated",
    "logging.save_model_dir=./runs/demo", "logging.overwrite=true",
]


def compare_with_random_init(checkpoint_path: str, cfg, seed: int = 0) -> dict[str, dict[str, float]]:
    """Probe + k-NN accuracy of the saved EMA teacher and student (from the training checkpoint),
    the same architecture at random init (seeded as the run), and raw pixels."""
    evaluator = LinearProbe(image_size=cfg.model.image_size, dataset_path=cfg.data.dataset_path,
                          dataset_name=cfg.data.dataset_name, classifier=cfg.eval.classifier, knn_k=cfg.eval.knn_k)
    results = probe_with_random_init(load_encoder(checkpoint_path, teacher=True), evaluator, seed)
    results = {"EMA teacher": results["pretrained"],
               "student": evaluator.evaluate(load_encoder(checkpoint_path, teacher=False), name="student"),
               "random init": results["random init"]}
    pixels = [evaluator.train_set.images.reshape(len(evaluator.train_set), -1).astype(np.float32),
              evaluator.test_set.images.reshape(len(evaluator.test_set), -1).astype(np.float32)]
    results["raw pixels"] = {"probe_acc": linear_probe_accuracy(pixels[0], evaluator.train_set.labels, pixels[1],
                                                                evaluator.test_set.labels, cfg.eval.classifier),
                             "knn_acc": float("nan")}
    return results


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return {}
    overrides = DEMO_OVERRIDES + argv
    cfg = make_config(overrides)
    t0 = time.perf_counter()
    out = train(cfg)
    seconds = time.perf_counter() - t0
    results = compare_with_random_init(out["train_checkpoint"], cfg, cfg.seed)
    print(f"\nI-JEPA on {cfg.data.dataset_name}: {out['step']} steps of {cfg.dataloader.batch_size} images "
          f"in {seconds:.0f} s; loss {out['metrics'].get('loss', float('nan')):.4f}; run in {out['save_dir']}")
    base = results["random init"]
    print(f"{'encoder':<16}{'linear probe':>14}{'20-NN':>10}{'gain over random init':>26}")
    for name, r in results.items():
        knn = "" if np.isnan(r["knn_acc"]) else f"{r['knn_acc']:.3f}"
        gain = (f"{100 * (r['probe_acc'] - base['probe_acc']):+.1f} / {100 * (r['knn_acc'] - base['knn_acc']):+.1f} pts"
                if name in ("EMA teacher", "student") else "")
        print(f"{name:<16}{r['probe_acc']:>14.3f}{knn:>10}{gain:>26}")
    return results


def cli() -> None:
    """`ijepa-demo` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

"""Shared by the Fashion-MNIST benchmarks: their common command-line options and mean +- std."""
from __future__ import annotations

import argparse
import statistics


def seeded_bench_parser(description: str, classifier: str) -> argparse.ArgumentParser:
    """Overrides, --steps, --seeds, --data, --train_samples, --classifier, --out_dir, --name, --json."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("overrides", nargs="*", help="TrainConfig key=value overrides, applied after the preset")
    p.add_argument("--steps", type=int, default=500,
                   help="pretraining steps per seed (500: the ablations', at batch 96; cpu_small runs 3,000 of 32)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data", default="./data", help="data root (the system copy is found on its own)")
    p.add_argument("--train_samples", type=int, default=10000, help="probe's train subset (of 60k)")
    p.add_argument("--classifier", default=classifier, choices=("calibrated", "logistic", "torch"))
    p.add_argument("--out_dir", default=None, help="keep runs here (default: a temporary folder)")
    p.add_argument("--name", default=None, help="row name in the --json summary")
    p.add_argument("--json", default=None, help="append the summary as one JSON line to this file")
    return p


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

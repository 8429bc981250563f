"""Benchmark (not a test): the torch linear probe against scikit-learn's, accuracy and time.

    python bench/probe_speed.py                      # Fashion-MNIST, 10k/10k and 50k/10k, 192-d features
    python bench/probe_speed.py --dim 784 --sizes 10000

Features: Fashion-MNIST's pixels through a fixed random projection to --dim dimensions (seed 0),
a stand-in of an encoder's features with the same width as `experiment=cpu_small`'s (192). For each
training size, fits eval.classifier=torch, logistic and calibrated on the first N training images
and scores the 10k test images; prints accuracy and fit time of each (one process, this machine's
threads: scikit-learn single-threaded as in the probe, torch with its default threads).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simple_ijepa.data import build_dataset  # noqa: E402
from simple_ijepa.evaluation.probe import linear_probe_accuracy  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--classifiers", nargs="+", default=["torch", "logistic", "calibrated"])
    p.add_argument("--data", default="./data")
    p.add_argument("--json", default=None, help="append the results as one JSON line to this file")
    args = p.parse_args()
    train, test = build_dataset("fashion_mnist", args.data, "train"), build_dataset("fashion_mnist", args.data, "test")
    proj = np.random.RandomState(0).randn(784, args.dim).astype(np.float32) / 28.0
    xtr = train.images.reshape(len(train.images), -1).astype(np.float32) @ proj
    xte = test.images.reshape(len(test.images), -1).astype(np.float32) @ proj
    rows = []
    print(f"Fashion-MNIST pixels -> {args.dim}-d random projection; test on {len(xte)} images; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'train':>8} {'classifier':<12}{'accuracy':>10}{'fit + score':>14}")
    for n in args.sizes:
        for clf in args.classifiers:
            t0 = time.perf_counter()
            acc = linear_probe_accuracy(xtr[:n], train.labels[:n], xte, test.labels, clf)
            seconds = time.perf_counter() - t0
            rows.append({"train": n, "classifier": clf, "accuracy": acc, "seconds": seconds})
            print(f"{n:>8} {clf:<12}{acc:>10.4f}{seconds:>13.1f}s", flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"dim": args.dim, "rows": rows}) + "\n")


if __name__ == "__main__":
    main()

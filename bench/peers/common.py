"""What every peer adapter shares: the images, the training clock, the probe features it writes.

This file imports nothing from `simple_ijepa`: the original implementation's package has the same
name, so each adapter runs in its own process (bench/peers/run.py starts them) and hands back only
features. Scoring them is the runner's job, with our probe code, the same for every implementation.

An adapter is a script `bench/peers/<name>.py` whose `train(images, clock, seed)` is a generator:
  images   uint8 [60000, 28, 28], Fashion-MNIST's training images (no labels)
  clock    TrainClock: call `clock.start()` / `clock.stop()` around training work, `clock.due()` after each step
  yields   (steps, images_seen, feature_fn) each time `clock.due()` said a mark was reached, where
           feature_fn(uint8 [B, 28, 28]) -> float [B, N, D]: the encoder that the implementation hands
           to users (the EMA target encoder), its final tokens, preprocessed as its own pipeline does.
`main(train)` does the rest: arguments, threads, seeds, and at each mark the mean-pooled features of
the probe images (5,000 fixed training images, the 10,000 test images) into OUT/mark_<s>.npz.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import struct
import time

import numpy as np
import torch

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist", "./data/fashion-mnist")
PROBE_TRAIN_SAMPLES = 5000  # fixed seeded subset of the 60k, the same one our LinearProbe takes


def read_idx(path: str) -> np.ndarray:
    """An IDX file (gzipped or not) -> uint8 array [N, ...]."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(root: str | None = None) -> dict[str, np.ndarray]:
    """{"train_x" [60000, 28, 28], "train_y", "test_x" [10000, 28, 28], "test_y"}, uint8."""
    for d in ([root] if root else []) + list(FASHION_MNIST_DIRS):
        if d and os.path.isfile(os.path.join(d, "t10k-images-idx3-ubyte.gz")):
            names = {"train_x": "train-images-idx3-ubyte.gz", "train_y": "train-labels-idx1-ubyte.gz",
                     "test_x": "t10k-images-idx3-ubyte.gz", "test_y": "t10k-labels-idx1-ubyte.gz"}
            return {k: read_idx(os.path.join(d, v)) for k, v in names.items()}
    raise FileNotFoundError(f"Fashion-MNIST not found in {[root, *FASHION_MNIST_DIRS]}: "
                            "apt-get install dataset-fashion-mnist, or pass --data")


def probe_train_indices(n: int = 60000) -> np.ndarray:
    """The probe's training subset: simple_ijepa.evaluation.features.subset_indices(n, 5000, seed=0)."""
    return np.sort(np.random.RandomState(0).choice(n, PROBE_TRAIN_SAMPLES, replace=False))


class TrainClock:
    """Wall-clock seconds spent training, paused between start() and stop(); marks in seconds."""

    def __init__(self, marks_s: list[float]):
        self.marks = sorted(marks_s)
        self.elapsed, self._t0, self.reached = 0.0, None, None

    @property
    def budget(self) -> float:
        return self.marks[-1]

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self._t0 is not None:
            self.elapsed += time.perf_counter() - self._t0
            self._t0 = None

    def now(self) -> float:
        return self.elapsed + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def due(self) -> bool:
        """True once the next mark's training time is reached (then that mark is consumed)."""
        if self.marks and self.now() >= self.marks[0]:
            self.reached = self.marks.pop(0)
            return True
        return False

    def finished(self) -> bool:
        return not self.marks

    def horizon(self, steps_done: int) -> int:
        """The steps that fit in the whole budget at the speed so far (for schedules set in steps)."""
        return max(steps_done + 1, int(round(steps_done * self.budget / max(self.now(), 1e-9))))


@torch.no_grad()
def pooled_features(feature_fn, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 [N, D]: feature_fn's tokens averaged over the tokens."""
    out = []
    for i in range(0, len(images), batch_size):
        tokens = feature_fn(images[i:i + batch_size])
        out.append((tokens.mean(1) if tokens.ndim == 3 else tokens).float().cpu().numpy())
    return np.concatenate(out)


def main(train, description: str) -> None:
    """The adapter's command line: --seed, --marks (seconds), --out, --data, --threads."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--marks", type=float, nargs="+", required=True, help="training seconds at which to probe")
    p.add_argument("--out", required=True, help="folder for mark_<seconds>.npz and marks.jsonl")
    p.add_argument("--data", default=None, help="folder with Fashion-MNIST's IDX files")
    p.add_argument("--threads", type=int, default=2)
    args, extra = p.parse_known_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    data = load_fashion_mnist(args.data)
    probe_x = data["train_x"][probe_train_indices(len(data["train_x"]))]
    clock = TrainClock(args.marks)
    for steps, images_seen, feature_fn in train(data["train_x"], clock, args.seed, *extra):
        mark = clock.reached
        t0 = time.perf_counter()
        np.savez(os.path.join(args.out, f"mark_{mark:g}.npz"), train_x=pooled_features(feature_fn, probe_x),
                 test_x=pooled_features(feature_fn, data["test_x"]))
        row = {"mark_s": mark, "train_s": clock.elapsed, "steps": steps, "images_seen": images_seen,
               "images_per_s": images_seen / max(clock.elapsed, 1e-9), "feature_s": time.perf_counter() - t0}
        with open(os.path.join(args.out, "marks.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        if clock.finished():
            return

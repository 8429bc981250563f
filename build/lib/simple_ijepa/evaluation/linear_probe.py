"""`LinearProbe`: linear probe + k-NN on frozen features of a labelled train/test split.

Any dataset of `build_dataset` with labelled "train" and "test" splits goes through it. `STL10Eval`
is the same class under the name the original Gated I-JEPA README gives its STL-10 probe.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ..data.datasets import UNREADABLE, ImageFolderDataset, build_dataset
from ..utils.distributed import broadcast_object
from .features import FeatureFn, eval_mode, extract_features, is_sharded, module_device
from .knn import knn_accuracy
from .probe import CLASSIFIERS, linear_probe_accuracy

log = logging.getLogger(__name__)
# A folder may hold a million files: decoding all of them at every probe would take hours. With
# max_*_samples unset, a folder's probe reads a fixed seeded subset of this many images per split.
FOLDER_PROBE_SAMPLES = 10_000


@dataclass
class ProbeFeatures:
    """Mean-pooled features: train_x [n, D], train_y [n], test_x [m, D], test_y [m]."""
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def on_rank0(fn: Callable[[], object], rank: int, world_size: int):
    """Run `fn()` on rank 0 only and give its result to every rank (one broadcast when sharded).

    If `fn` raises on rank 0, the other ranks raise too instead of waiting for a result.
    """
    if not is_sharded(world_size):
        return fn()
    if rank == 0:
        try:
            result = fn()
        except Exception as e:
            broadcast_object((None, f"{type(e).__name__}: {e}"))
            raise
        return broadcast_object((result, None))[0]
    result, error = broadcast_object((None, None))
    if error is not None:
        raise RuntimeError(f"evaluation failed on rank 0: {error}")
    return result


def _cap(max_samples: int | None, folder: bool, n: int, split: str) -> int | None:
    """max_samples as given; unset for an image folder, FOLDER_PROBE_SAMPLES (logged when it cuts)."""
    if max_samples is not None or not folder:
        return max_samples
    if n > FOLDER_PROBE_SAMPLES:
        log.info(f"folder probe: a fixed {FOLDER_PROBE_SAMPLES:,} of the {n:,} {split} images "
                 f"(the default for folders; eval.max_{split}_samples sets it).")
    return FOLDER_PROBE_SAMPLES


class LinearProbe:
    """Probe a frozen encoder on the labelled `train` split (fit) and `test` split (score).

    STL-10: 5,000 train and 8,000 test images. `max_*_samples` take fixed seeded subsets (None: all,
    but FOLDER_PROBE_SAMPLES for an image folder). Linear probe: standardised features, `classifier`
    "calibrated" (CalibratedClassifierCV around LogisticRegression, the original README's choice) or
    "logistic". k-NN: see `knn_accuracy` (DINO weighting). `num_workers`: DataLoader processes that
    decode an image folder's files (the other datasets are arrays, read in this process).
    """

    def __init__(self, image_size: int = 96, dataset_path: str = "./data", dataset_name: str = "stl10",
                 classifier: str = "calibrated", knn_k: int = 20, batch_size: int = 256,
                 max_train_samples: int | None = None, max_test_samples: int | None = None,
                 device: torch.device | str | None = None, download: bool = False, num_workers: int = 0):
        if classifier not in CLASSIFIERS:
            raise ValueError(f"classifier {classifier!r} is not one of {CLASSIFIERS}")
        self.image_size, self.dataset_name = image_size, dataset_name
        self.classifier, self.knn_k, self.batch_size = classifier, knn_k, batch_size
        self.device = None if device is None else torch.device(device)
        self.train_set = build_dataset(dataset_name, dataset_path, "train", download, image_size)
        self.test_set = build_dataset(dataset_name, dataset_path, "test", download, image_size)
        folder = isinstance(self.train_set, ImageFolderDataset)
        self.num_workers = num_workers if folder else 0
        self.max_train_samples = _cap(max_train_samples, folder, len(self.train_set), "train")
        self.max_test_samples = _cap(max_test_samples, folder, len(self.test_set), "test")

    def extract(self, feature_fn: FeatureFn, rank: int = 0, world_size: int = 1) -> ProbeFeatures | None:
        """Features of both splits; when sharded, every rank calls this and only rank 0 gets them."""
        device = self.device or module_device(feature_fn)
        kw = dict(image_size=self.image_size, device=device, batch_size=self.batch_size, rank=rank,
                  world_size=world_size, num_workers=self.num_workers)
        train = extract_features(feature_fn, self.train_set, max_samples=self.max_train_samples, **kw)
        test = extract_features(feature_fn, self.test_set, max_samples=self.max_test_samples, **kw)
        return None if train[0] is None else ProbeFeatures(*train, *test)

    def score(self, f: ProbeFeatures) -> dict[str, float]:
        """{"probe_acc", "knn_acc"}: accuracies in [0, 1] on the test features (images that could
        not be read, label UNREADABLE, are left out)."""
        tr, te = f.train_y != UNREADABLE, f.test_y != UNREADABLE
        if not (tr.all() and te.all()):
            f = ProbeFeatures(f.train_x[tr], f.train_y[tr], f.test_x[te], f.test_y[te])
        device = self.device if self.classifier == "torch" else None  # the torch probe and bank on the device
        return {"probe_acc": linear_probe_accuracy(f.train_x, f.train_y, f.test_x, f.test_y, self.classifier,
                                                   device=device),
                "knn_acc": knn_accuracy(f.train_x, f.train_y, f.test_x, f.test_y, self.knn_k, device=device)}

    def evaluate(self, model_or_feature_fn: nn.Module | FeatureFn, rank: int = 0, world_size: int = 1,
                 name: str = "encoder") -> dict[str, float]:
        """Probe an encoder (called as module(images), in eval mode, its mode restored after) or any
        feature function images [B, 3, S, S] -> [B, N, D] or [B, D].

        Returns {"probe_acc": float, "knn_acc": float}. With world_size > 1 in a process group every
        rank must call this: features are extracted in shards, the classifiers fitted on rank 0, and
        every rank returns the same dict.
        """
        t0 = time.perf_counter()
        fn = model_or_feature_fn
        with eval_mode(fn) if isinstance(fn, nn.Module) else contextlib.nullcontext():
            feats = self.extract(fn, rank, world_size)
        result = on_rank0(lambda: self.score(feats), rank, world_size)
        if rank == 0:
            log.info(f"{self.dataset_name} probe ({name}, {len(feats.train_y)} train / {len(feats.test_y)} test): "
                     f"linear {result['probe_acc']:.4f}, {self.knn_k}-NN {result['knn_acc']:.4f} "
                     f"({time.perf_counter() - t0:.1f} s)")
        return result


STL10Eval = LinearProbe  # the original README's name

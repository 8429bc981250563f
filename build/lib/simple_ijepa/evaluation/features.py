"""Frozen features for probing: a labelled dataset in, mean-pooled float32 features out.

With several processes each rank extracts one contiguous shard and rank 0 gathers them in order.
Images are read in `num_workers` DataLoader processes (an image folder decodes its files there);
rank 0 shows a progress bar on a terminal.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader

from ..data.augment import eval_transform
from ..data.datasets import collate_batch
from ..utils.progress import progress as progress_bar

FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # images [B, 3, S, S] -> [B, N, D] or [B, D]


def is_sharded(world_size: int) -> bool:
    """True when extraction is split over ranks: world_size > 1 inside a process group."""
    return world_size > 1 and dist.is_available() and dist.is_initialized()


def subset_indices(n: int, max_samples: int | None, seed: int = 0) -> np.ndarray:
    """All of 0..n-1, or a fixed seeded subset of `max_samples` of them, sorted (same on every rank)."""
    if max_samples is None or max_samples >= n:
        return np.arange(n)
    return np.sort(np.random.RandomState(seed).choice(n, max_samples, replace=False))


def pool(out: torch.Tensor) -> torch.Tensor:
    """Tokens [B, N, D] -> mean over tokens [B, D]; [B, D] passes through."""
    if out.ndim == 3:
        return out.mean(dim=1)
    if out.ndim == 2:
        return out
    raise ValueError(f"a feature function must return [B, N, D] or [B, D], got shape {tuple(out.shape)}")


class LastBlocks(nn.Module):
    """The paper's second linear-probe input (I-JEPA's protocol as quoted in ijepa#47; DINO's `n_last_blocks`):
    the tokens of an encoder's last k blocks, each through the encoder's final LayerNorm,
    concatenated along the channels. images [B, 3, S, S] -> [B, N, k * D]; mean-pooled by the probe."""

    def __init__(self, encoder: nn.Module, k: int):
        super().__init__()
        depth = len(encoder.blocks)
        if not 1 <= k <= depth:
            raise ValueError(f"n_last_blocks must be in [1, {depth}] (the encoder's depth), got {k}")
        self.encoder, self.k = encoder, k

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        outs = self.encoder.last_blocks(images, self.k)  # the last one is already normed
        return torch.cat([self.encoder.norm(x) for x in outs[:-1]] + outs[-1:], dim=-1)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Put every submodule in eval mode; restore each one's own previous mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


def module_device(fn, default: torch.device | str = "cpu") -> torch.device:
    """The device of a module's first parameter, else `default` (plain callables)."""
    if isinstance(fn, nn.Module):
        p = next(fn.parameters(), None)
        if p is not None:
            return p.device
    return torch.device(default)


def _batches(dataset, indices: np.ndarray, batch_size: int, num_workers: int):
    """(uint8 images [b, C, H, W], labels [b]) of dataset[indices] in order, `batch_size` at a time,
    read in `num_workers` DataLoader processes (0 = in this one)."""
    chunks = [indices[start:start + batch_size].tolist() for start in range(0, len(indices), batch_size)]
    if num_workers == 0:
        return map(dataset.__getitems__, chunks)
    return DataLoader(dataset, batch_sampler=chunks, collate_fn=collate_batch, num_workers=num_workers)


@torch.no_grad()
def _extract(feature_fn: FeatureFn, dataset, indices: np.ndarray, image_size: int, device, batch_size: int,
             num_workers: int = 0, progress: bool = False):
    """Features float32 [len(indices), D] (D = 0 if empty) and labels int64 [len(indices)]."""
    feats, labels = [], []
    bar = progress_bar(len(indices), "probe features", enabled=progress and sys.stderr.isatty(), unit="img",
                       leave=False)  # (a probe takes seconds to minutes: no plain lines in a log file)
    for images, y in _batches(dataset, indices, batch_size, num_workers):
        x = eval_transform(images.to(device, non_blocking=True), image_size)
        feats.append(pool(feature_fn(x)).float().cpu().numpy())
        labels.append(y.numpy().astype(np.int64))
        bar.update(len(y))
    bar.close()
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(feats), np.concatenate(labels)


def extract_features(feature_fn: FeatureFn, dataset, image_size: int, device, batch_size: int = 256,
                     rank: int = 0, world_size: int = 1, max_samples: int | None = None, seed: int = 0,
                     num_workers: int = 0):
    """Mean-pooled features of `dataset` (or of a seeded subset of `max_samples` images).

    feature_fn: normalised images [B, 3, S, S] on `device` -> tokens [B, N, D] or features [B, D].
    Returns (features float32 [n, D], labels int64 [n]) in dataset order. When sharded (world_size > 1
    in a process group) every rank must call this; rank 0 gets the full arrays, the others (None, None).
    num_workers: DataLoader processes that read the images (0 = this process).
    """
    indices = subset_indices(len(dataset), max_samples, seed)
    kw = dict(image_size=image_size, device=device, batch_size=batch_size, num_workers=num_workers,
              progress=rank == 0)
    if not is_sharded(world_size):
        return _extract(feature_fn, dataset, indices, **kw)
    mine = np.array_split(indices, world_size)[rank]
    part = _extract(feature_fn, dataset, mine, **kw)
    parts = [None] * world_size if rank == 0 else None
    dist.gather_object(part, parts, dst=0)
    if rank != 0:
        return None, None
    parts = [p for p in parts if len(p[1])]  # a rank with an empty shard has no width
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

"""Masking strategies: which patches a sample sees (its context) and which it predicts (its targets).

Every strategy is built from plain values, checks its own fit to the patch grid in `__init__`
(ValueError), and is called as

    strategy(batch_size, rng: random.Random, generator: torch.Generator)
        -> (context_idx [B, Kc] long, target_idx [B, T, Kt] long, context_valid [B, Kc] bool or None)

with grid positions in raster order; `context_valid` marks padding when samples keep different
numbers of context patches, and is None when every sample keeps the same number (a context budget,
random masks): then nothing is padded and the model runs without an attention mask. Sizes come
from `rng`, positions from `generator`: the same seeds give the same masks. `mask.kind` picks one from `MASKS`.
"""
from __future__ import annotations

from .multiblock import MultiBlockMaskGenerator, block_size, pad_context, smallest_target_area
from .random_patches import RandomMaskGenerator

MASKS = {"multiblock": MultiBlockMaskGenerator, "random": RandomMaskGenerator}


def build_masks(kind: str, grid: int, num_targets: int, mask_cfg):
    """The strategy `kind` for a grid x grid patch grid, from the `mask.*` section."""
    if kind not in MASKS:
        raise ValueError(f"mask.kind={kind!r} is not one of {tuple(MASKS)}")
    return MASKS[kind].from_config(grid, num_targets, mask_cfg)


__all__ = ["MASKS", "MultiBlockMaskGenerator", "RandomMaskGenerator", "block_size", "build_masks", "pad_context",
           "smallest_target_area"]

"""Multi-block masking, the paper's strategy (Assran et al. 2023, Sec. 3 "Context" / "Targets"), vectorised.

For a batch on a g x g patch grid (N = g*g):
- T target blocks: one (h, w) drawn per batch from scale ~ U(target_scale) and aspect ratio
  ~ U(target_aspect_ratio) (drawn independently, unlike the official code's shared draw), and a
  top-left corner per sample and block, uniform over all g-h+1 rows and g-w+1 columns (the last
  row and column are reachable).
- One context block: side round(sqrt(scale) * g) with scale ~ U(context_scale), aspect 1, a corner
  per sample; every target patch is removed from it.
- A sample whose targets leave fewer than `min_context` patches uncovered gets its targets redrawn
  (only possible on small grids with large blocks; `validate` rejects configs that can never fit).
- With a context budget (`mask.context_budget`, a share of the N patches) every sample keeps exactly
  K = round(share * N) context patches: a uniform random subset of its context block minus its
  targets, topped up from the other non-target patches when that set holds fewer than K. Every
  sample of every batch then has the same context length (static shapes, no padding), and the
  task does not depend on the batch size. The official code's effective context is ~25% of the
  patches (its batch-minimum cut, below); without a budget ours is ~46% at the paper's scales.
- Without a budget (null) every sample keeps ALL of its context patches. Counts differ between
  samples, so the context is padded to the batch's largest count Kc: `context_valid` [B, Kc] marks
  the real tokens, and the encoder and predictor take it as a key-padding mask (padded slots repeat a real index of the
  same sample and are never attended to). The official collator instead cuts every sample to the
  batch's smallest count, which at 96 px drops ~28% of the context at batch 32 and ~40% at batch
  1024. Its indices come from `torch.nonzero` in raster order and the cut keeps a prefix
  (`cm[:min_keep_enc]`), so what is dropped is the bottom rows of each context block: a positional
  bias (the lower part of a block is seen less often), not a random subsample. A sample left with fewer than
  `min_context` patches takes its context from everything outside its targets.

Block sizes come from a host `random.Random`, positions from a torch `Generator`: both seeded by
the caller, so the same seeds give the same masks. Masks are built on the CPU (a few vectorised
ops, about a millisecond for a batch of 256) and moved to the device with the images.
"""
from __future__ import annotations

import math
import random

import torch


def block_size(scale: float, aspect_ratio: float, grid: int) -> tuple[int, int]:
    """Height and width (in patches) of a block covering `scale` of a grid x grid image."""
    area = scale * grid * grid
    h = int(round(math.sqrt(area * aspect_ratio)))
    w = int(round(math.sqrt(area / aspect_ratio)))
    return min(max(h, 1), grid), min(max(w, 1), grid)


def smallest_target_area(target_scale, target_aspect_ratio, grid: int) -> int:
    """The fewest patches one target block can cover (scanning the ranges: rounding is not monotone)."""
    steps = [i / 50 for i in range(51)]
    (s0, s1), (a0, a1) = target_scale, target_aspect_ratio
    return min(h * w for h, w in (block_size(s0 + (s1 - s0) * i, a0 + (a1 - a0) * j, grid)
                                  for i in steps for j in steps))


def budget_count(context_budget: float | None, grid: int) -> int | None:
    """The fixed context length K = round(share * N) of a `mask.context_budget` share (None: no budget)."""
    return None if context_budget is None else int(round(context_budget * grid * grid))


def context_with_budget(in_context: torch.Tensor, in_target: torch.Tensor, k: int,
                        generator: torch.Generator) -> torch.Tensor:
    """Exactly k context patches per sample: bool [B, N] context block minus targets, bool [B, N]
    targets -> context_idx [B, k] (sorted). A uniform random subset of the context block; when it
    holds fewer than k, the rest is drawn from the patches outside both (never from a target).
    The caller guarantees at least k non-target patches per sample."""
    # Ranks: context block in [3, 4), other non-target patches in [1, 2), targets in [0, 1).
    score = torch.rand(in_context.shape, generator=generator) + 2.0 * in_context + 1.0 * ~in_target
    return score.topk(k, dim=1).indices.sort(dim=1).values


class MultiBlockMaskGenerator:
    def __init__(self, grid: int, num_targets: int = 4, target_scale=(0.15, 0.2),
                 target_aspect_ratio=(0.75, 1.5), context_scale=(0.85, 1.0), min_context: int = 4,
                 context_budget: float | None = None):
        """Raises ValueError when the targets can never leave `min_context` patches (or, with a
        budget, K = round(context_budget * N)) on the grid."""
        self.grid = grid
        self.num_targets = num_targets
        self.target_scale = tuple(target_scale)
        self.target_aspect_ratio = tuple(target_aspect_ratio)
        self.context_scale = tuple(context_scale)
        self.min_context = min_context
        self.budget = budget_count(context_budget, grid)
        n = grid * grid
        if self.budget is not None and not 1 <= self.budget < n:
            raise ValueError(f"context_budget={context_budget} gives {self.budget} of the {n} patches; "
                             f"it must keep between 1 and {n - 1}")
        self.floor = max(min_context, self.budget or 0)  # non-target patches every sample needs
        least = smallest_target_area(target_scale, target_aspect_ratio, grid)
        if num_targets * least > n - self.floor:
            need = (f"context_budget={context_budget} ({self.budget} patches)" if self.floor > min_context
                    else f"min_context={min_context}")
            raise ValueError(f"{num_targets} targets of at least {least} patches leave fewer than "
                             f"{need} of the {n} patches for the context")

    @classmethod
    def from_config(cls, grid: int, num_targets: int, m) -> "MultiBlockMaskGenerator":
        """From the `mask.*` section."""
        return cls(grid, int(num_targets), tuple(m.target_scale), tuple(m.target_aspect_ratio),
                   tuple(m.context_scale), int(m.min_context), m.context_budget)

    def sample_sizes(self, rng: random.Random) -> tuple[int, int, int]:
        """Draw the batch's target (h, w) and context side c."""
        s = rng.uniform(*self.target_scale)
        h, w = block_size(s, rng.uniform(*self.target_aspect_ratio), self.grid)
        c = min(self.grid, max(1, int(round(math.sqrt(rng.uniform(*self.context_scale)) * self.grid))))
        return h, w, c

    def __call__(self, batch_size: int, rng: random.Random, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Return (context_idx [B, Kc], target_idx [B, T, Kt], context_valid [B, Kc] bool or None).

        Indices are sorted long tensors. With a budget, Kc = K for every batch and context_valid is
        None (nothing padded). Without one, Kc = the batch's largest context count; in row b the first
        count_b entries are sample b's context patches in raster order and the rest are padding
        (copies of its first patch) with context_valid False. context_valid is returned even when
        nothing is padded, so that a compiled model always sees the same inputs (one graph).
        """
        g, T, B = self.grid, self.num_targets, batch_size
        h, w, c = self.sample_sizes(rng)
        ar = torch.arange(g)

        def corners(height: int, width: int, shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
            top = torch.randint(0, g - height + 1, shape, generator=generator)
            left = torch.randint(0, g - width + 1, shape, generator=generator)
            return top, left

        def blocks(top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
            """Corners [b, T] -> row-major indices of h x w blocks [b, T, h*w] (sorted within a block)."""
            rows = top[..., None] + ar[:h]  # [b, T, h]
            cols = left[..., None] + ar[:w]  # [b, T, w]
            return (rows[..., :, None] * g + cols[..., None, :]).reshape(*top.shape, h * w)

        def covered(idx: torch.Tensor) -> torch.Tensor:
            """Target indices [b, T, K] -> bool [b, N]: patches inside any target."""
            return torch.zeros(idx.shape[0], g * g, dtype=torch.bool).scatter_(1, idx.flatten(1), True)

        target_idx = blocks(*corners(h, w, (B, T)))
        in_target = covered(target_idx)
        # Rarely (small grids, big blocks) the targets cover almost everything: redraw those samples.
        for _ in range(100):
            short = (~in_target).sum(1) < self.floor
            if not short.any():
                break
            redrawn = blocks(*corners(h, w, (int(short.sum()), T)))
            target_idx[short], in_target[short] = redrawn, covered(redrawn)
        else:
            raise RuntimeError(f"{T} targets of {h}x{w} patches keep covering the {g}x{g} grid; lower "
                               "model.num_targets or mask.target_scale.")

        # Context block minus targets: [B, N] bool.
        ctop, cleft = corners(c, c, (B, 1))
        in_rows = (ar >= ctop) & (ar < ctop + c)  # [B, g]
        in_cols = (ar >= cleft) & (ar < cleft + c)
        in_context = (in_rows[:, :, None] & in_cols[:, None, :]).reshape(B, g * g) & ~in_target
        if self.budget is not None:  # the same Kc = K at every step: static shapes, nothing padded
            return context_with_budget(in_context, in_target, self.budget, generator), target_idx, None

        short = in_context.sum(1, keepdim=True) < self.min_context
        in_context = torch.where(short, ~in_target, in_context)
        context_idx, context_valid = pad_context(in_context)
        return context_idx, target_idx, context_valid


def pad_context(in_context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bool [B, N] -> (context_idx [B, Kc], context_valid [B, Kc] bool), Kc = the largest count.

    A stable sort puts each row's kept patches first, in raster order; the padding slots then
    repeat the row's first patch (any real index works: padded keys are masked out).
    """
    counts = in_context.sum(1)  # [B]
    kc = int(counts.max())
    order = torch.sort((~in_context).to(torch.uint8), dim=1, stable=True).indices[:, :kc]  # [B, Kc]
    valid = torch.arange(kc) < counts[:, None]  # [B, Kc]
    context_idx = torch.where(valid, order, order[:, :1])
    return context_idx, valid

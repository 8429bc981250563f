"""Random masking, the paper's ablation (Assran et al. 2023, Table 6: 17.6 vs 54.2 for multi-block).

Each of the T targets is Kt patches drawn at random over the whole grid (not a block), with Kt the
area a target block of scale ~ U(target_scale) would cover (one draw per batch, as multi-block);
the T targets are disjoint. The context is a random share ~ U(context_scale) of the patches no
target took, at least `min_context`; with `mask.context_budget` it is exactly K = round(share * N).
Every sample of a batch has the same counts, so nothing is padded (`context_valid` is None).
"""
from __future__ import annotations

import random

import torch

from .multiblock import budget_count


class RandomMaskGenerator:
    def __init__(self, grid: int, num_targets: int = 4, target_scale=(0.15, 0.2), context_scale=(0.85, 1.0),
                 min_context: int = 4, context_budget: float | None = None):
        """Raises ValueError when T targets of the largest size cannot leave `min_context` patches
        (or, with a budget, K = round(context_budget * N))."""
        self.grid, self.num_targets = grid, num_targets
        self.target_scale, self.context_scale = tuple(target_scale), tuple(context_scale)
        self.min_context = min_context
        self.budget = budget_count(context_budget, grid)
        n = grid * grid
        if self.budget is not None and not 1 <= self.budget < n:
            raise ValueError(f"context_budget={context_budget} gives {self.budget} of the {n} patches; "
                             f"it must keep between 1 and {n - 1}")
        floor = max(min_context, self.budget or 0)
        most = self.target_count(self.target_scale[1])
        if num_targets * most > n - floor:
            need = f"{self.budget} budget" if floor > min_context else f"min_context={min_context}"
            raise ValueError(f"{num_targets} random targets of up to {most} patches leave fewer than "
                             f"the {need} patches of the {n} for the context")

    @classmethod
    def from_config(cls, grid: int, num_targets: int, m) -> "RandomMaskGenerator":
        """From the `mask.*` section (target_aspect_ratio has no meaning here)."""
        return cls(grid, int(num_targets), tuple(m.target_scale), tuple(m.context_scale), int(m.min_context),
                   m.context_budget)

    def target_count(self, scale: float) -> int:
        return max(1, int(round(scale * self.grid * self.grid)))

    def __call__(self, batch_size: int, rng: random.Random, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, None]:
        """Return (context_idx [B, Kc], target_idx [B, T, Kt], None): each set of indices sorted
        (raster order), nothing padded."""
        n, T, B = self.grid * self.grid, self.num_targets, batch_size
        kt = self.target_count(rng.uniform(*self.target_scale))
        left = n - T * kt
        kc = min(left, max(self.min_context, int(round(rng.uniform(*self.context_scale) * left))))
        if self.budget is not None:
            kc = self.budget
        order = torch.rand(B, n, generator=generator).argsort(dim=1)  # a random permutation per sample
        target_idx = order[:, :T * kt].view(B, T, kt).sort(dim=2).values
        context_idx = order[:, T * kt:T * kt + kc].sort(dim=1).values
        return context_idx, target_idx, None

"""Collapse monitors for the teacher's features (logged at every log step, warned about once).

A JEPA can lower its loss by making the teacher's features predictable instead of informative.
Three cheap, label-free signals on one batch of layer-normed teacher tokens h [B, N, D]:
- `pooled_std`: std across the batch of the mean-pooled feature, averaged over channels. All
  images mapping to the same vector drives it to 0.
- `token_std`: std across the N positions within one image, averaged over channels and images.
  Near 0 = every token of an image is the same vector (nothing spatial left to predict).
- `rankme`: effective rank of the pooled features [B, D] (RankMe, Garrido et al. 2023):
  exp(entropy of the normalised singular values), in [1, min(B, D)]. It tracks downstream
  accuracy without labels and falls first in a dimensional collapse. We centre the features
  over the batch first: pooled layer-normed tokens share a large mean vector, which would
  otherwise take most of the spectrum and pin the rank near 2 whatever the features encode.
"""
from __future__ import annotations

import torch

# Warning thresholds, as fractions of the same monitor on the run's teacher at initialisation (the
# reference; measured on the first batch before any update and kept in the checkpoint). Measured on
# Fashion-MNIST, experiment=cpu_small, 500 steps (docs/experiments/collapse.md): at init pooled_std
# 0.12, token_std 0.47, rankme 7.9; after lr 1e-3 (probe 5 points below random init) rankme 3.7
# (0.47x) and token_std 0.17 (0.36x); after lr 3e-4 (probe +3 points) rankme 8.1 (1.03x).
THRESHOLDS = {"pooled_std": 0.1, "token_std": 0.2, "rankme": 0.5}
LIKELY_CAUSES = ("a learning rate too high for the batch (optim.learning_rate; 3e-4 at batch 96 learns, 1e-3 "
                 "collapses) or too short a warm-up (optim.warmup_fraction), a teacher that moves too fast "
                 "(raise ema.gamma), target blocks too small for the grid (mask.target_scale); or enable the "
                 "anti-collapse regulariser (model.sigreg_weight=0.05)")


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """RankMe of embeddings z [B, D]: exp(-sum_k p_k log p_k), p_k = s_k / sum(s) + eps (Garrido et al. 2023)."""
    s = torch.linalg.svdvals(z.float())
    p = s / s.sum().clamp_min(eps) + eps
    return torch.exp(-(p * p.log()).sum())


@torch.no_grad()
def collapse_stats(tokens: torch.Tensor) -> dict[str, float]:
    """tokens [B, N, D] (teacher, layer-normed) -> {"pooled_std", "token_std", "rankme"} as floats; a
    monitor that one image (B = 1: pooled_std, rankme) or one token (token_std) cannot define is left
    out rather than logged as NaN (which is not JSON, and compares as nothing)."""
    h = tokens.float()
    pooled = h.mean(1)  # [B, D]
    stats = {}
    if h.shape[0] > 1:
        stats["pooled_std"] = float(pooled.std(0).mean())
    if h.shape[1] > 1:
        stats["token_std"] = float(h.std(1).mean())
    if h.shape[0] > 1:
        stats["rankme"] = float(effective_rank(pooled - pooled.mean(0)))
    return stats


def collapse_warning(stats: dict[str, float], reference: dict[str, float]) -> str | None:
    """A warning naming every monitor below THRESHOLDS[k] * reference[k] and the likely causes, or None."""
    low = [f"{k}={stats[k]:.4g} < {frac:g} x {reference[k]:.4g} at init" for k, frac in THRESHOLDS.items()
           if k in stats and k in reference and stats[k] < frac * reference[k]]
    if not low:
        return None
    return (f"Teacher features look collapsed ({', '.join(low)}): they lose what tells images apart, so the probe "
            f"will be poor. Likely causes: {LIKELY_CAUSES}.")


def monitor_collapse(teacher_features, images: torch.Tensor, metrics: dict, reference: dict,
                     warned: bool) -> str | None:
    """Add the teacher's monitors on this batch to `metrics` (teacher_pooled_std, teacher_token_std,
    teacher_rankme); return the one-time warning when one falls below its threshold relative to
    `reference` (the same monitors at init) and none was given yet (`warned`), else None."""
    stats = collapse_stats(teacher_features(images))
    metrics.update({f"teacher_{k}": v for k, v in stats.items()})
    return None if warned else collapse_warning(stats, reference)

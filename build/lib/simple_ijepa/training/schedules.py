"""Per-step schedules, computed from the step number alone so that a resumed run continues them."""
from __future__ import annotations

import math


def learning_rate(step: int, total_steps: int, base_lr: float, min_lr: float, warmup_steps: int,
                  decay_steps: int | None = None) -> float:
    """Linear warm-up from 0 to base_lr over `warmup_steps`, then cosine down to min_lr at `total_steps`.

    With `decay_steps` the cosine spans only the last `decay_steps` steps and the rate holds base_lr
    between the warm-up and them: warm-up, stable, decay (Hagele et al. 2024, "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations"). `step` counts optimiser steps
    already taken (0 for the first update).
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_start = warmup_steps if decay_steps is None else max(warmup_steps, total_steps - decay_steps)
    progress = min(1.0, max(0, step - decay_start) / max(1, total_steps - decay_start))
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def cosine_ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """start at step 0 -> end at `total_steps` (and after) along half a cosine."""
    progress = min(1.0, step / max(1, total_steps))
    return end + (start - end) * (math.cos(math.pi * progress) + 1.0) / 2.0


def ema_momentum(step: int, total_steps: int, gamma: float, gamma_end: float = 1.0) -> float:
    """BYOL-style cosine ramp from `gamma` at step 0 to `gamma_end` (exactly 1.0 by default) at `total_steps`.

    m(k) = gamma_end - (gamma_end - gamma) * (cos(pi * k / K) + 1) / 2   (Grill et al. 2020, Sec. 3.2)
    """
    if gamma_end == 1.0:  # the original form, bit for bit
        progress = min(1.0, step / max(1, total_steps))
        return 1.0 - (1.0 - gamma) * (math.cos(math.pi * progress) + 1.0) / 2.0
    return cosine_ramp(step, total_steps, gamma, gamma_end)


def weight_decay(step: int, total_steps: int, start: float, end: float | None) -> float:
    """AdamW's weight decay at `step`: `start` throughout when `end` is None, else a cosine from
    `start` to `end` (the official I-JEPA `CosineWDSchedule`, 0.04 -> 0.4)."""
    return start if end is None else cosine_ramp(step, total_steps, start, end)


def teacher_update(step: int, total_steps: int, ema_cfg) -> tuple[str, float]:
    """What the teacher does after optimiser step `step` (1-based): ("copy" | "ema" | "skip", momentum).

    Up to `update_gamma_after_step` the teacher is a hard copy of the student; after that it takes an
    EMA update every `update_gamma_every_n_steps` steps. An update every n steps uses momentum m^n,
    so the teacher's time constant (in steps) does not depend on n.
    """
    if step <= ema_cfg.update_gamma_after_step:
        return "copy", 0.0
    n = ema_cfg.update_gamma_every_n_steps
    if (step - ema_cfg.update_gamma_after_step) % n:
        return "skip", 0.0
    return "ema", ema_momentum(step, total_steps, ema_cfg.gamma, ema_cfg.gamma_end) ** n

"""SIGReg (Balestriero & LeCun 2025, "LeJEPA", arXiv 2511.08544, Sec. 4 and Algorithm 1):
an optional anti-collapse regulariser that pushes embeddings toward an isotropic Gaussian.

Cramer-Wold: a distribution is N(0, I) iff every 1-D projection is N(0, 1). SIGReg projects the
embeddings z [B, D] on M random unit directions a_m and compares each projection's empirical
characteristic function phi_m(t) = mean_b exp(i t a_m.z_b) with the Gaussian's exp(-t^2/2)
(Epps-Pulley statistic), weighted by exp(-t^2/2) and integrated over t in [-5, 5]:

    SIGReg(z) = mean_m  B * integral |phi_m(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt

Real arithmetic only: |phi - g|^2 = (mean cos(t x) - g)^2 + (mean sin(t x))^2. The directions are
redrawn at every call from the given generator (the model's, which the training step seeds from
(seed, rank, step)): the same step always uses the same ones, and a resumed run replays them.
"""
from __future__ import annotations

import torch


def sigreg(z: torch.Tensor, num_slices: int = 256, knots: int = 17,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """z [B, D] -> scalar loss (0 for an exactly Gaussian ECF); B = this process's batch.
    generator: where the directions come from (None = the global RNG)."""
    B, D = z.shape
    z = z.float()
    a = torch.randn(D, num_slices, device=z.device, generator=generator)
    a = a / a.norm(dim=0, keepdim=True)  # unit directions [D, M]
    t = torch.linspace(-5.0, 5.0, knots, device=z.device)  # [T]
    gauss = torch.exp(-0.5 * t * t)  # the N(0, 1) characteristic function, also the weight
    xt = (z @ a).unsqueeze(-1) * t  # [B, M, T]
    err = (xt.cos().mean(0) - gauss) ** 2 + xt.sin().mean(0) ** 2  # [M, T]
    return torch.trapezoid(err * gauss, t, dim=-1).mean() * B

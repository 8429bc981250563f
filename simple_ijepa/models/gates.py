"""Hard-concrete token gates (Louizos, Welling & Kingma 2018, "Learning Sparse Neural Networks
through L0 Regularization", Sec. 4; official code AMLab-Amsterdam/L0_regularization).

A gate z in [0, 1] per token, with exact zeros and ones. With log_alpha the gate's location,
beta the temperature and (gamma, zeta) the stretch interval (gamma < 0 < 1 < zeta):

  training:  u ~ U(eps, 1 - eps)
             s = sigmoid((log u - log(1 - u) + log_alpha) / beta)      binary Concrete sample
             z = clamp(s * (zeta - gamma) + gamma, 0, 1)                stretch, then clamp
  eval:      z = clamp(sigmoid(log_alpha) * (zeta - gamma) + gamma, 0, 1)   (deterministic)
  P(z > 0) = sigmoid(log_alpha - beta * log(-gamma / zeta))            (closed form, Eq. 12)

Shapes: B = batch, N = tokens, D = width.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .layers import init_weights


class HardConcreteGate(nn.Module):
    """Parameter-free: maps log_alpha [B, N] to gates z [B, N] (sampled in training, fixed in eval)."""

    def __init__(self, beta: float = 2.0 / 3.0, gamma: float = -0.1, zeta: float = 1.1, eps: float = 1e-6):
        super().__init__()
        if not (beta > 0 and gamma < 0 and zeta > 1):
            raise ValueError(f"hard-concrete needs beta > 0 and gamma < 0 < 1 < zeta, got {beta}, {gamma}, {zeta}")
        self.beta, self.gamma, self.zeta, self.eps = beta, gamma, zeta, eps

    def _stretch(self, s: torch.Tensor) -> torch.Tensor:
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def sample(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """A stochastic gate per element of log_alpha (the reparameterised training sample)."""
        u = torch.rand_like(log_alpha).clamp(self.eps, 1.0 - self.eps)
        return self._stretch(torch.sigmoid((u.log() - (-u).log1p() + log_alpha) / self.beta))

    def deterministic(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """The test-time gate: exactly 0 for log_alpha <= log(-gamma/zeta), exactly 1 for
        log_alpha >= log((1-gamma)/(zeta-1)) (-+log 11 = -+2.40 with the defaults), in (0, 1) between."""
        return self._stretch(torch.sigmoid(log_alpha))

    def forward(self, log_alpha: torch.Tensor) -> torch.Tensor:
        return self.sample(log_alpha) if self.training else self.deterministic(log_alpha)

    def prob_open(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """P(z > 0) of the training distribution, differentiable in log_alpha (same shape)."""
        return torch.sigmoid(log_alpha - self.beta * math.log(-self.gamma / self.zeta))


class GateHead(nn.Module):
    """Per-token gate location: LayerNorm(D) + Linear(D, 1). tokens [B, N, D] -> log_alpha [B, N] (fp32).

    The bias starts at 0 (Louizos et al.'s drop-rate 0.5 init): P(open) = sigmoid(beta*log 11)
    = 0.83 with the default beta and stretch, so training starts with most tokens open.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.linear = nn.Linear(dim, 1)
        init_weights(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(tokens)).squeeze(-1).float()


def gate_penalty(open_prob: torch.Tensor, exp_alpha: float) -> torch.Tensor:
    """mean_b(exp(exp_alpha * f_b) - 1) with f_b = mean_i P(open)[b, i]. open_prob: [B, N] -> scalar.

    Zero when every gate is surely closed; grows exponentially with the open fraction, so a sample
    that keeps many tokens open is pushed harder than one that keeps few.
    """
    return torch.expm1(exp_alpha * open_prob.mean(dim=1)).mean()

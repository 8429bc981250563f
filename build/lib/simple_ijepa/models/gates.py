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

    def sample(self, log_alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A stochastic gate per element of log_alpha (the reparameterised training sample); the
        noise comes from `generator` (None = the global RNG)."""
        u = torch.rand(log_alpha.shape, generator=generator, device=log_alpha.device, dtype=log_alpha.dtype)
        u = u.clamp(self.eps, 1.0 - self.eps)
        return self._stretch(torch.sigmoid((u.log() - (-u).log1p() + log_alpha) / self.beta))

    def deterministic(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """The test-time gate: exactly 0 for log_alpha <= log(-gamma/zeta), exactly 1 for
        log_alpha >= log((1-gamma)/(zeta-1)) (-+log 11 = -+2.40 with the defaults), in (0, 1) between."""
        return self._stretch(torch.sigmoid(log_alpha))

    def forward(self, log_alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample(log_alpha, generator) if self.training else self.deterministic(log_alpha)

    def prob_open(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """P(z > 0) of the training distribution, differentiable in log_alpha (same shape)."""
        return torch.sigmoid(log_alpha - self.beta * math.log(-self.gamma / self.zeta))


class GateHead(nn.Module):
    """Per-token gate location: LayerNorm(D) + Linear(D, 1). tokens [B, N, D] -> log_alpha [B, N] (fp32).

    With `context=True` (the "attn" location) it reads two [B, N, D] inputs, each layer-normed:
    what the token gathered (the attention output) and the token itself (the stream before the
    attention residual): Linear(2D, 1) over the concatenation. Early in training attention is
    nearly uniform, so the attention output is the same vector for every token (mean pairwise
    cosine 1.000 at init; token-centred share of its variance 0.0000 after 300 steps at block 1 of
    cpu_small on Fashion-MNIST): a gate that read it alone could only open or close a whole image.

    The bias starts at 0 (Louizos et al.'s drop-rate 0.5 init): P(open) = sigmoid(beta*log 11)
    = 0.83 with the default beta and stretch, so training starts with most tokens open.
    """

    def __init__(self, dim: int, context: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.context_norm = nn.LayerNorm(dim, eps=1e-6) if context else None
        self.linear = nn.Linear(2 * dim if context else dim, 1)
        init_weights(self)

    def forward(self, tokens: torch.Tensor, token_itself: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(tokens)
        if self.context_norm is not None:
            h = torch.cat([h, self.context_norm(token_itself)], dim=-1)
        return self.linear(h).squeeze(-1).float()


def gate_penalty(open_prob: torch.Tensor, exp_alpha: float, target: float | None = None) -> torch.Tensor:
    """The exponential open-fraction penalty. open_prob: [B, N] P(open) per token -> scalar.

    With f_b = mean_i P(open)[b, i] (image b's expected open fraction), f = mean_b f_b (the batch's)
    and a = exp_alpha:
      target None:  mean_b(exp(a f_b) - 1)                     (the original penalty's form, per image)
      target t:     (exp(a d) - 1 - a d) / a^2,  d = f - t     (a hold on the batch's open fraction)

    The original Gated I-JEPA penalty (its README: mean_b(exp(a * open_fraction_b) - 1)) computes
    open_fraction_b from sigmoid(log_alpha); here f_b is the hard-concrete P(z > 0) =
    sigmoid(log_alpha - beta log(-gamma/zeta)) = sigmoid(log_alpha + 1.599) at the defaults, so at
    log_alpha = 0 and a = 4 the original gives exp(4 * 0.5) - 1 = 6.39 and this 26.9: the same shape,
    not the same value. Either way it is smallest with every gate shut, and at weight 1 it outweighs
    the prediction loss, so all gates close. The centred form is that penalty minus its
    tangent at t, divided by its curvature there, a^2 exp(a t):
    (exp(a f) - exp(a t) - a exp(a t) (f - t)) / (a^2 exp(a t)). It is zero with slope zero at
    f = t, ~ d^2 / 2 near it, and exponentially steeper above t than below. Subtracting the
    tangent is adding a Lagrange term mu (f - t) at the multiplier mu = -a exp(a t) that holds f
    at t (Louizos et al. 2018 control the expected L0; CoFi learns mu by ascent), in closed form:
    no dual variable to step, store or synchronise. Dividing by the curvature makes lambda_gates
    the stiffness of that hold in units of the prediction loss; unnormalised, it was lambda * 118 at
    a = 4, t = 0.5, and the hold's gradient drowned the prediction loss's within-image signal.

    It holds the BATCH's fraction, not each image's: every token gets the same push, so both which
    tokens and how many of an image's tokens stay open are left to the prediction loss. Holding each
    image at t made every image, real or noise, open the same share (real - noise 0.01 +- 0.04 over
    3 seeds); the batch hold let easy images close more (docs/gated.md).
    """
    if target is None:
        return torch.expm1(exp_alpha * open_prob.mean(dim=1)).mean()
    d = exp_alpha * (open_prob.mean() - target)
    return (torch.expm1(d) - d) / exp_alpha ** 2

"""Gated I-JEPA: the student sees the whole image, a hard-concrete gate per token decides which
tokens pass, and a predictor regresses the EMA teacher's features of ALL tokens from what passed.
A penalty on the expected open fraction makes the gates sparse (a = gate_exp_alpha,
t = gate_target_open):

  loss = regression(pred, LN(teacher))  +  lambda_gates * (exp(a d) - 1 - a d) / a^2
  d    = f - t,   f = mean_b,i P(z_bi > 0)     the batch's expected open fraction (see gates.py)

With t = null the penalty has the original Gated I-JEPA form mean_b(exp(a f_b) - 1), on the
hard-concrete P(open) rather than the original's sigmoid(log_alpha); it shuts every gate at
lambda_gates = 1 (see gates.gate_penalty). The regression is the
baseline's (mean over all elements, model.loss), so both variants' losses are on the same scale.
The gate head learns at model.gate_lr_scale times the learning rate (optimizer_groups). A closed
token is replaced by a learned mask token plus its position:

  mix(x) = z * x + (1 - z) * (mask_token + pos)        z: [B, N], x: [B, N, D]

Where the gate sits (model.gate_layer_index, model.gate_location); x is the residual stream:
  null         on the encoder's final (normed) tokens h: the gate reads h, the predictor gets mix(h).
  k, location  inside or after block k, as one function per location in gate_locations.py
               (post: after the block; skip: after the attention residual; attn: reads attn(x)).

After an in-block gate the later blocks take closed tokens out of attention: the logits get
+log z_j for key j (the masked softmax of DynamicViT, Rao et al. 2021; a token always sees
itself). A token with z = 0 is then invisible to every other token and the open tokens' features
do not depend on the closed ones, which makes `encode_pruned` (drop closed tokens after block k)
exact. Closed positions are still computed in this masked path: they attend to the open tokens,
like predictor queries, and the predictor reads them.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from .config import GateConfig, ModelConfig
from .gate_locations import GATE_LOCATIONS, GATE_READS
from .gates import GateHead, HardConcreteGate, gate_penalty
from .ijepa import JEPA, regression_loss
from .layers import gather_tokens
from .predictor import Predictor
from .vit import VisionTransformer


class GatedTokens(NamedTuple):
    tokens: torch.Tensor  # [B, N, D] predictor input: the gated student tokens after the final norm
    features: torch.Tensor  # [B, N, D] encoder output for probing (null gating: h before mixing)
    log_alpha: torch.Tensor  # [B, N] fp32 gate locations
    z: torch.Tensor  # [B, N] gates used (sampled in training, deterministic in eval)
    gate_input: torch.Tensor  # [B, N, D] what the gate head read


class PrunedTokens(NamedTuple):
    tokens: torch.Tensor  # [B, K, D] encoder output of the kept tokens, K = the batch's largest open count
    z: torch.Tensor  # [B, K] their gates; 0 marks padding (a closed token kept to fill the batch)
    index: torch.Tensor  # [B, K] their grid positions, ascending
    open_counts: torch.Tensor  # [B] tokens with z > 0 per image


def key_gate_bias(z: torch.Tensor) -> torch.Tensor:
    """Attention logit bias [B, 1, N, N] from gates z [B, N]: log z_j for key j != query i
    (-inf for closed keys), 0 on the diagonal so that every token still sees itself."""
    is_open = z > 0
    log_z = torch.where(is_open, torch.where(is_open, z, 1.0).log(), float("-inf"))  # no 1/0 in backward
    eye = torch.eye(z.shape[1], dtype=torch.bool, device=z.device)
    return torch.where(eye, 0.0, log_z[:, None, None, :])


def new_mask_token(dim: int) -> nn.Parameter:
    """The learned fill [1, 1, D] of a closed token (truncated normal 0.02, as the predictor's)."""
    token = nn.Parameter(torch.zeros(1, 1, dim))
    nn.init.trunc_normal_(token, std=0.02)
    return token


class GatedIJEPA(JEPA):
    has_gates = True
    file_suffix = "_gated"
    # Where the gate sits changes what every weight after it means: a resume must keep it.
    resume_fixed_keys = ("gate_layer_index", "gate_location")

    def __init__(self, encoder: VisionTransformer, gate_head: GateHead, predictor: Predictor, gate: GateConfig,
                 loss: str = "mse", mask_token: nn.Parameter | None = None, target_layers: int = 1,
                 target_center: bool = False):
        """predictor: built with_mask_token=False (it reads every position, see Predictor.forward_all);
        gate_head: GateHead(D, context=True) for the "attn" location, else GateHead(D)."""
        super().__init__(encoder, target_layers, target_center)
        depth = encoder.config.depth
        if gate.layer_index is not None and not 0 <= gate.layer_index < depth:
            raise ValueError(f"gate_layer_index {gate.layer_index} is outside blocks 0..{depth - 1}")
        self.gate_cfg, self.loss_kind = gate, loss
        self.gate_layer_index, self.gate_location = gate.layer_index, gate.location
        self.gate_head = gate_head
        self.gate = HardConcreteGate(gate.beta, gate.gamma, gate.zeta)
        self.mask_token = mask_token if mask_token is not None else new_mask_token(encoder.config.dim)
        self.predictor = predictor

    @classmethod
    def from_config(cls, model_cfg) -> "GatedIJEPA":
        """From the flat `model.*` section (or a ModelConfig). Parts are built in the order
        encoder, gate head, mask token, predictor (the order their initial weights are drawn in)."""
        c = ModelConfig.from_flat(model_cfg)
        encoder = VisionTransformer(c.encoder)
        reads = 1 if c.gate.layer_index is None else GATE_READS[c.gate.location]
        gate_head = GateHead(c.encoder.dim, context=reads == 2)
        mask_token = new_mask_token(c.encoder.dim)
        predictor = Predictor.from_config(c.encoder, c.predictor, with_mask_token=False)
        return cls(encoder, gate_head, predictor, c.gate, c.loss, mask_token, c.target_layers, c.target_center)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """The baseline's groups for everything but the gate head, which gets its own group at
        model.gate_lr_scale times the learning rate (no weight decay; see docs/gated.md)."""
        head = {id(p) for p in self.gate_head.parameters()}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in head]}
                  for g in super().optimizer_groups(weight_decay)]
        return groups + [{"params": list(self.gate_head.parameters()), "weight_decay": 0.0,
                          "lr_scale": self.gate_cfg.lr_scale}]

    # --- the gated student ---------------------------------------------------------------------
    def _gates(self, gate_input: torch.Tensor, z: torch.Tensor | None,
               token_itself: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        log_alpha = self.gate_head(gate_input, token_itself)
        return log_alpha, (self.gate(log_alpha, self.generator) if z is None else z)

    def _mix(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """z * x + (1 - z) * (mask_token + pos). x: [B, N, D], z: [B, N] -> [B, N, D]."""
        fill = self.mask_token + self.encoder.pos_embed  # [1, N, D]
        z = z.unsqueeze(-1)
        return z * x + (1.0 - z) * fill

    def _through_gated_block(self, images: torch.Tensor, z: torch.Tensor | None):
        """Embed, blocks 0..k with the gate inside block k -> (stream [B, N, D], log_alpha, z, gate_input)."""
        enc, k = self.encoder, self.gate_layer_index
        x = enc.embed(images)
        for block in enc.blocks[:k]:
            x = block(x)
        location = GATE_LOCATIONS[self.gate_location]
        return location(enc.blocks[k], x, lambda read, itself=None: self._gates(read, z, itself), self._mix)

    def _after_gate(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Blocks k+1.. with closed keys removed from attention, then the final norm. x: [B, K, D], z: [B, K]."""
        later = self.encoder.blocks[self.gate_layer_index + 1:]
        bias = key_gate_bias(z) if len(later) else None
        for block in later:
            x = block(x, bias)
        return self.encoder.norm(x)

    def encode(self, images: torch.Tensor, z: torch.Tensor | None = None) -> GatedTokens:
        """The gated student on images [B, 3, S, S]. Gates are sampled in training mode and
        deterministic in eval mode; pass z [B, N] to impose gates instead (ablations; all-open = ones)."""
        if self.gate_layer_index is None:
            h = self.encoder(images)
            log_alpha, z = self._gates(h, z)
            return GatedTokens(self._mix(h, z), h, log_alpha, z, h)
        x, log_alpha, z, gate_input = self._through_gated_block(images, z)
        out = self._after_gate(x, z)
        return GatedTokens(out, out, log_alpha, z, gate_input)

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predictions of the teacher's layer-normed features at every position: [B, N, D] -> [B, N, D]."""
        return self.predictor.forward_all(tokens)

    # --- training --------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor):
        """images: [B, 3, S, S] -> (loss, stats); stats' 0-d tensors are logged by the trainer."""
        g = self.gate_cfg
        target = self.teacher_features(images, over_ranks=True)  # [B, N, D]
        out = self.encode(images)
        pred = self.predict(out.tokens)
        loss_pred = regression_loss(pred.float(), target.float(), self.loss_kind)
        open_prob = self.gate.prob_open(out.log_alpha)  # [B, N]
        penalty = gate_penalty(open_prob, g.exp_alpha, g.target_open)
        loss = loss_pred + g.lambda_gates * penalty
        stats = {
            "loss_pred": loss_pred.detach(),
            "gate_penalty": penalty.detach(),
            "open_frac": open_prob.detach().mean(),  # expected share of open gates, P(z > 0)
            "open_frac_hard": (out.z.detach() > 0).float().mean(),  # share open in this step's gates
            "gate_mean": out.z.detach().mean(),
        }
        return loss, stats

    # --- inference -------------------------------------------------------------------------------
    def pooled_features(self, images: torch.Tensor, all_open: bool = False) -> torch.Tensor:
        """Image features [B, D] from the student encoder (not the predictor; see probe_feature_fns).

        gated:    sum_i z_i h_i / sum_i z_i over the encoder output h: closed tokens (z = 0) count
                  for nothing, which is exactly the mean over `encode_pruned`'s tokens when gates
                  are 0 or 1. An image with every gate closed gets the zero vector.
        all_open: the plain student encoder (every z = 1), mean over all tokens.
        """
        if all_open:
            return self.encoder(images).mean(dim=1)
        out = self.encode(images)
        w = out.z.unsqueeze(-1)
        return (w * out.features).sum(dim=1) / w.sum(dim=1).clamp_min(1e-6)

    def probe_feature_fns(self) -> dict[str, nn.Module]:
        """{"gated", "all_open"}: normalised images [B, 3, S, S] -> features [B, D] for the linear probe.

        The features are the ENCODER's, pooled as `pooled_features` says, not the predictor's:
        I-JEPA evaluates its encoder (the predictor is a training head), the baseline is probed the
        same way, and "gated" is then exactly what a pruned encoder computes at inference, so its
        accuracy goes with the FLOPs that `encode_pruned` saves. Call with the model in eval mode
        (deterministic gates). Each is a module holding this model, so its device can be read off.
        """
        return {"gated": PooledFeatures(self, all_open=False), "all_open": PooledFeatures(self, all_open=True)}

    @torch.no_grad()
    def encode_pruned(self, images: torch.Tensor) -> PrunedTokens:
        """Encode with closed tokens physically dropped after the gate (use eval mode: fixed gates).

        The batch keeps K = its largest open count per image, highest gates first; images with
        fewer open tokens are padded with closed ones (z = 0), which the key bias hides, so every
        open token's output equals the masked path's `encode(images).features` at that position
        (up to float rounding). Blocks k+1.. run on K tokens instead of N; with null gating nothing
        is saved in the encoder (the gate comes after it) and the result is a gather of h.
        """
        if self.gate_layer_index is None:
            h = self.encoder(images)
            _, z = self._gates(h, None)
            index, kept_z = self._keep(z)
            return PrunedTokens(gather_tokens(h, index), kept_z, index, (z > 0).sum(dim=1))
        x, _, z, _ = self._through_gated_block(images, None)
        index, kept_z = self._keep(z)
        tokens = self._after_gate(gather_tokens(x, index), kept_z)
        return PrunedTokens(tokens, kept_z, index, (z > 0).sum(dim=1))

    @staticmethod
    def _keep(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions [B, K] of the K highest gates per image (ascending), K = max open count (>= 1)."""
        k = max(int((z > 0).sum(dim=1).max()), 1)
        index = z.topk(k, dim=1).indices.sort(dim=1).values
        return index, z.gather(1, index)


class PooledFeatures(nn.Module):
    """images [B, 3, S, S] -> `model.pooled_features(images, all_open)` [B, D], without gradients."""

    def __init__(self, model: GatedIJEPA, all_open: bool):
        super().__init__()
        self.model, self.all_open = model, all_open

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.pooled_features(images, self.all_open)


__all__ = ["GatedIJEPA", "GatedTokens", "PooledFeatures", "PrunedTokens", "key_gate_bias", "new_mask_token"]

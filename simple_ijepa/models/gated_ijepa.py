"""Gated I-JEPA: the student sees the whole image, a hard-concrete gate per token decides which
tokens pass, and a predictor regresses the EMA teacher's features of ALL tokens from what passed.
A penalty on the expected open fraction makes the gates sparse (a = gate_exp_alpha,
t = gate_target_open):

  loss = regression(pred, LN(teacher))  +  lambda_gates * (exp(a d) - 1 - a d) / a^2
  d    = f - t,   f = mean_b,i P(z_bi > 0)     the batch's expected open fraction (see gates.py)

With t = null the penalty is the seed's mean_b(exp(a f_b) - 1), which shuts every gate at the
README's weight (see gates.gate_penalty and the README's Gated section). The regression is the
baseline's (mean over all elements, model.loss), so both variants' losses are on the same scale.
The gate head learns at model.gate_lr_scale times the learning rate (optimizer_groups). A closed
token is replaced by a learned mask token plus its position:

  mix(x) = z * x + (1 - z) * (mask_token + pos)        z: [B, N], x: [B, N, D]

Where the gate sits (model.gate_layer_index, model.gate_location); x is the residual stream:
  null         on the encoder's final (normed) tokens h: the gate reads h, the predictor gets mix(h).
  k, "post"    after block k: the gate reads block k's output; later blocks get mix(x).
  k, "skip"    inside block k after the attention residual s = x + attn(x): the gate reads s;
               block k's MLP and the later blocks get mix(s).
  k, "attn"    as "skip", but the gate reads the attention output attn(x) (what the token
               gathered from the others) next to x itself (see GateHead: attn(x) alone is the same
               for every token while attention is uniform). The residual is gated with it, so a
               closed token really loses its content; gating attn(x) alone would let x pass through.

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

from .gates import GateHead, HardConcreteGate, gate_penalty
from .ijepa import JEPA, regression_loss
from .layers import gather_tokens
from .predictor import Predictor


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


class GatedIJEPA(JEPA):
    def __init__(self, model_cfg):
        super().__init__(model_cfg)
        m = model_cfg
        self.gate_layer_index, self.gate_location = m.gate_layer_index, m.gate_location
        if self.gate_layer_index is not None and not 0 <= self.gate_layer_index < m.depth:
            raise ValueError(f"gate_layer_index {self.gate_layer_index} is outside blocks 0..{m.depth - 1}")
        reads_attention = self.gate_layer_index is not None and m.gate_location == "attn"
        self.gate_head = GateHead(m.hidden_dim, context=reads_attention)
        self.gate = HardConcreteGate(m.gate_beta, m.gate_gamma, m.gate_zeta)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, m.hidden_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.predictor = Predictor(grid=m.image_size // m.patch_size, embed_dim=m.hidden_dim, dim=m.predictor_dim,
                                   depth=m.predictor_depth, heads=m.predictor_heads, head_dim=m.head_dim,
                                   mlp_ratio=m.mlp_ratio, with_mask_token=False)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """The baseline's groups for everything but the gate head, which gets its own group at
        model.gate_lr_scale times the learning rate (no weight decay; see the README's Gated section)."""
        head = {id(p) for p in self.gate_head.parameters()}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in head]}
                  for g in super().optimizer_groups(weight_decay)]
        return groups + [{"params": list(self.gate_head.parameters()), "weight_decay": 0.0,
                          "lr_scale": self.model_cfg.gate_lr_scale}]

    # --- the gated student ---------------------------------------------------------------------
    def _gates(self, gate_input: torch.Tensor, z: torch.Tensor | None,
               token_itself: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        log_alpha = self.gate_head(gate_input, token_itself)
        return log_alpha, (self.gate(log_alpha) if z is None else z)

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
        block = enc.blocks[k]
        if self.gate_location == "post":
            x = block(x)
            gate_input = x
            log_alpha, z = self._gates(gate_input, z)
            return self._mix(x, z), log_alpha, z, gate_input
        a = block.attn(block.norm1(x))
        if self.gate_location == "attn":
            gate_input = a
            log_alpha, z = self._gates(a, z, token_itself=x)
        else:
            gate_input = x + a
            log_alpha, z = self._gates(gate_input, z)
        x = self._mix(x + a, z)
        return x + block.mlp(block.norm2(x)), log_alpha, z, gate_input

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
        m = self.model_cfg
        target = self.teacher_features(images)  # [B, N, D]
        out = self.encode(images)
        pred = self.predict(out.tokens)
        loss_pred = regression_loss(pred.float(), target.float(), m.loss)
        open_prob = self.gate.prob_open(out.log_alpha)  # [B, N]
        penalty = gate_penalty(open_prob, m.gate_exp_alpha, m.gate_target_open)
        loss = loss_pred + m.lambda_gates * penalty
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
        return {"gated": ProbeFeatures(self, all_open=False), "all_open": ProbeFeatures(self, all_open=True)}

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


class ProbeFeatures(nn.Module):
    """images [B, 3, S, S] -> `model.pooled_features(images, all_open)` [B, D], without gradients."""

    def __init__(self, model: GatedIJEPA, all_open: bool):
        super().__init__()
        self.model, self.all_open = model, all_open

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.pooled_features(images, self.all_open)


__all__ = ["GatedIJEPA", "GatedTokens", "PrunedTokens", "ProbeFeatures", "key_gate_bias"]

"""I-JEPA (Assran et al. 2023): predict the EMA teacher's features of masked target blocks
from a context block, in representation space.

`JEPA` holds what both variants share: student encoder, EMA teacher, optimiser groups.
`IJEPA` is the baseline: multi-block masks, a predictor, and the loss on target tokens only.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.distributed import global_batch_mean
from .config import ModelConfig
from .layers import gather_tokens
from .predictor import Predictor
from .sigreg import sigreg
from .vit import VisionTransformer


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean over every element (so the loss scale does not depend on the width)."""
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    return F.mse_loss(pred, target)


def masked_mean(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over tokens of x [B, K, D], counting only valid [B, K] ones (all when None) -> [B, D]."""
    if valid is None:
        return x.mean(1)
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1)


class JEPA(nn.Module):
    """Student `encoder` + EMA `target_encoder` (a frozen copy, never given to the optimiser).

    What the training loop, the probes and the tools need to know about a variant, each subclass
    says here instead of the loop branching on `variant`:
      needs_masks        the step builds `mask.kind` masks and passes them to forward
      has_gates          Gated I-JEPA's gate tools apply (debug outputs, gate experiments)
      file_suffix        checkpoint names: training_model{suffix}_ddp.pth, encoder{suffix}_ddp.pth
      resume_fixed_keys  `model.*` keys besides ARCH_KEYS that a resumed run must keep
    and `probe_feature_fns()` (what the periodic probe scores), `reseed()` (its own random draws).
    """
    needs_masks = False
    has_gates = False
    file_suffix = ""
    resume_fixed_keys: tuple[str, ...] = ()

    def __init__(self, encoder: VisionTransformer, target_layers: int = 1, target_center: bool = False):
        """target_layers / target_center: how the regression target is formed (teacher_features)."""
        super().__init__()
        self.encoder = encoder
        self.target_layers, self.target_center = int(target_layers), bool(target_center)
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.generator: torch.Generator | None = None  # None: the global RNG (until reseed)

    def reseed(self, seed: int) -> None:
        """Seed the model's own generator (gate noise, SIGReg directions) on the model's device: the
        same seed gives the same draws, so a step replays exactly on resume."""
        device = self.encoder.pos_embed.device
        if device.type == "meta":  # shape-only runs draw nothing real
            return
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    @torch.no_grad()
    def teacher_features(self, images: torch.Tensor, over_ranks: bool = False) -> torch.Tensor:
        """The regression target: layer-normed (no affine) teacher tokens on the full image,
        [B, C, H, W] -> [B, N, D] (Assran et al. 2023).

        target_layers = k > 1: data2vec 2.0's target (Baevski et al. 2023, `instance_norm_target_layer`
        then `layer_norm_targets`): each of the last k blocks' outputs instance-normed (per channel, over
        the tokens), their mean, then layer-normed. target_center: minus each position's mean over the
        batch, so that a predictor that knows only the target positions predicts nothing (at init the
        layer-normed tokens vary more across positions than across images). over_ranks: that mean is
        over the global batch of every rank (the training forward, which every rank runs); False for
        a look at one rank's images (collapse monitors, analysis).
        """
        if self.target_layers == 1:
            h = self.target_encoder(images)
        else:
            outs = self.target_encoder.last_blocks(images, self.target_layers)
            h = torch.stack([F.instance_norm(o.transpose(1, 2)).transpose(1, 2) for o in outs]).mean(0)
        h = F.layer_norm(h, (h.shape[-1],))
        if self.target_center:
            h = h - (global_batch_mean(h) if over_ranks else h.mean(0, keepdim=True))
        return h

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student: one lerp pass over all tensors."""
        torch._foreach_lerp_(list(self.target_encoder.parameters()), list(self.encoder.parameters()),
                             1.0 - momentum)

    @torch.no_grad()
    def copy_teacher(self) -> None:
        torch._foreach_copy_(list(self.target_encoder.parameters()), list(self.encoder.parameters()))

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on matrices only; no decay on biases, norms, tokens, positions."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if p.ndim < 2 or name.endswith("token"):
                no_decay.append(p)
            else:
                decay.append(p)
        return [{"params": decay, "weight_decay": weight_decay, "decay": True},
                {"params": no_decay, "weight_decay": 0.0}]

    def probe_feature_fns(self) -> dict[str, nn.Module]:
        """name -> module mapping normalised images [B, 3, S, S] to tokens [B, N, D] or features
        [B, D], for the periodic linear / k-NN probes (called in eval mode)."""
        return {"teacher": self.target_encoder, "student": self.encoder}


class IJEPA(JEPA):
    needs_masks = True
    resume_fixed_keys = ("global_weight",)  # on or off decides whether the pooled head exists

    def __init__(self, encoder: VisionTransformer, predictor: Predictor, loss: str = "mse",
                 sigreg_weight: float = 0.0, sigreg_slices: int = 256, target_layers: int = 1,
                 target_center: bool = False, global_weight: float = 0.0, shared_context: bool = False):
        """shared_context: the predictor runs the context once for all target blocks (Predictor.forward)."""
        super().__init__(encoder, target_layers, target_center)
        self.predictor, self.shared_context = predictor, bool(shared_context)
        self.loss_kind, self.sigreg_weight, self.sigreg_slices = loss, float(sigreg_weight), int(sigreg_slices)
        self.global_weight = float(global_weight)
        # The pooled target's head: mean-pooled context tokens [B, D] -> the predicted pooled target [B, D],
        # an MLP as wide as the predictor (BYOL's predictor; Grill et al. 2020). Only when the term is on.
        self.global_head = None
        if self.global_weight > 0:
            dim, width = encoder.config.dim, predictor.proj_in.out_features
            self.global_head = nn.Sequential(nn.Linear(dim, width), nn.GELU(), nn.Linear(width, dim))

    @classmethod
    def from_config(cls, model_cfg) -> "IJEPA":
        """From the flat `model.*` section (or a ModelConfig)."""
        c = ModelConfig.from_flat(model_cfg)
        encoder = VisionTransformer(c.encoder)
        return cls(encoder, Predictor.from_config(c.encoder, c.predictor), c.loss, c.sigreg_weight, c.sigreg_slices,
                   c.target_layers, c.target_center, c.global_weight, c.predictor_shared_context)

    def forward(self, images: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                context_valid: torch.Tensor | None = None, context_tokens: int | None = None):
        """images: [B, C, H, W]; context_idx: [B, Kc]; target_idx: [B, T, Kt]; context_valid: optional
        bool [B, Kc] (False = padding, see simple_ijepa/masks); context_tokens: optional, its number of
        True, counted on the host (packing the padded context then needs no host-device sync) -> (loss, stats).

        loss = regression(predictor(encoder(context)), LN(teacher(image))[targets])
               + model.global_weight * regression(head(mean(encoder(context))), LN(mean(LN(teacher(image)))))
               + model.sigreg_weight * SIGReg(mean-pooled student context tokens)   (each if its weight > 0)

        The pooled target (beyond the paper) asks the context to predict a summary of the whole image,
        which only an image-level, position-free code can do: the token targets alone can be lowered
        from the target positions (docs/experiments/learning.md).
        """
        B, T, Kt = target_idx.shape
        h = self.teacher_features(images, over_ranks=True)  # [B, N, D]
        targets = gather_tokens(h, target_idx.reshape(B, T * Kt)).view(B, T, Kt, -1)
        z = self.encoder(images, keep_idx=context_idx, keep_valid=context_valid,
                         keep_count=context_tokens)  # [B, Kc, D]
        pred = self.predictor(z, context_idx, target_idx, context_valid, self.shared_context,
                              context_tokens)  # [B, T, Kt, D]
        loss_pred = regression_loss(pred.float(), targets.float(), self.loss_kind)
        stats = {"loss_pred": loss_pred.detach()}
        loss = loss_pred
        if self.global_head is None and self.sigreg_weight == 0:
            return loss, stats
        context_mean = masked_mean(z, context_valid)  # [B, D]
        if self.global_head is not None:
            pooled = h.mean(1)
            pooled_target = F.layer_norm(pooled, pooled.shape[-1:])  # [B, D]
            loss_global = regression_loss(self.global_head(context_mean).float(), pooled_target.float(),
                                          self.loss_kind)
            stats["loss_global"] = loss_global.detach()
            loss = loss + self.global_weight * loss_global
        if self.sigreg_weight > 0:
            reg = sigreg(context_mean, self.sigreg_slices, generator=self.generator)
            stats["sigreg"] = reg.detach()
            loss = loss + self.sigreg_weight * reg
        return loss, stats

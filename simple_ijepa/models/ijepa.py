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

from .layers import gather_tokens
from .predictor import Predictor
from .sigreg import sigreg
from .vit import VisionTransformer, ViTConfig


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
    """Student `encoder` + EMA `target_encoder` (a frozen copy, never given to the optimiser)."""

    def __init__(self, model_cfg):
        super().__init__()
        self.model_cfg = model_cfg
        self.encoder = VisionTransformer(ViTConfig.from_model_config(model_cfg))
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)

    @torch.no_grad()
    def teacher_features(self, images: torch.Tensor) -> torch.Tensor:
        """Layer-normed (no affine) teacher tokens on the full image: [B, C, H, W] -> [B, N, D]."""
        h = self.target_encoder(images)
        return F.layer_norm(h, (h.shape[-1],))

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
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]


class IJEPA(JEPA):
    def __init__(self, model_cfg):
        super().__init__(model_cfg)
        m = model_cfg
        # Plain values: forward reads no DictConfig (a torch.compile graph break).
        self.loss_kind = str(m.loss)
        self.sigreg_weight, self.sigreg_slices = float(m.sigreg_weight), int(m.sigreg_slices)
        self.predictor = Predictor(grid=m.image_size // m.patch_size, embed_dim=m.hidden_dim, dim=m.predictor_dim,
                                   depth=m.predictor_depth, heads=m.predictor_heads, head_dim=m.head_dim,
                                   mlp_ratio=m.mlp_ratio)

    def forward(self, images: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                context_valid: torch.Tensor | None = None):
        """images: [B, C, H, W]; context_idx: [B, Kc]; target_idx: [B, T, Kt]; context_valid: optional
        bool [B, Kc] (False = padding, see masking.py) -> (loss, stats).

        loss = regression(predictor(encoder(context)), LN(teacher(image))[targets])
               + model.sigreg_weight * SIGReg(mean-pooled student context tokens)   (if the weight > 0)
        """
        B, T, Kt = target_idx.shape
        h = self.teacher_features(images)  # [B, N, D]
        targets = gather_tokens(h, target_idx.reshape(B, T * Kt)).view(B, T, Kt, -1)
        z = self.encoder(images, keep_idx=context_idx, keep_valid=context_valid)  # [B, Kc, D]
        pred = self.predictor(z, context_idx, target_idx, context_valid)  # [B, T, Kt, D]
        loss_pred = regression_loss(pred.float(), targets.float(), self.loss_kind)
        stats = {"loss_pred": loss_pred.detach()}
        if self.sigreg_weight == 0:
            return loss_pred, stats
        reg = sigreg(masked_mean(z, context_valid), self.sigreg_slices)
        stats["sigreg"] = reg.detach()
        return loss_pred + self.sigreg_weight * reg, stats

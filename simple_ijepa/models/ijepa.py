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
from .vit import VisionTransformer, ViTConfig


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean over every element (so the loss scale does not depend on the width)."""
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    return F.mse_loss(pred, target)


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
        self.loss_kind = str(m.loss)  # a plain str: forward reads no DictConfig (a torch.compile graph break)
        self.predictor = Predictor(grid=m.image_size // m.patch_size, embed_dim=m.hidden_dim, dim=m.predictor_dim,
                                   depth=m.predictor_depth, heads=m.predictor_heads, head_dim=m.head_dim,
                                   mlp_ratio=m.mlp_ratio)

    def forward(self, images: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor):
        """images: [B, C, H, W]; context_idx: [B, Kc]; target_idx: [B, T, Kt] -> (loss, stats)."""
        B, T, Kt = target_idx.shape
        h = self.teacher_features(images)  # [B, N, D]
        targets = gather_tokens(h, target_idx.reshape(B, T * Kt)).view(B, T, Kt, -1)
        z = self.encoder(images, keep_idx=context_idx)  # [B, Kc, D]
        pred = self.predictor(z, context_idx, target_idx)  # [B, T, Kt, D]
        loss = regression_loss(pred.float(), targets.float(), self.loss_kind)
        stats = {
            "loss_pred": loss.detach(),
            # Collapse monitor: spread of the teacher's mean-pooled features across the batch.
            "target_std": h.mean(1).float().std(0).mean(),
        }
        return loss, stats

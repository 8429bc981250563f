"""The encoder: a plain ViT without CLS token (I-JEPA / lucidrains "simple ViT" style).

Patches -> linear embedding -> + fixed 2-D sin-cos positions (added once) -> pre-norm blocks
-> final LayerNorm. With `keep_idx` only the kept tokens go through the blocks (I-JEPA context);
`keep_valid` marks padding when samples keep different numbers of tokens.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import (
    Block,
    PackedTokens,
    gather_tokens,
    init_weights,
    key_padding_bias,
    rescale_residual_branches,
    sincos_pos_embed_2d,
)


@dataclass
class ViTConfig:
    """The encoder's shape (built from the `model.*` keys by models/config.py)."""
    image_size: int
    patch_size: int
    dim: int
    depth: int
    heads: int
    head_dim: int
    mlp_ratio: float
    in_chans: int = 3
    pos_order: str = "row_col"  # layers.POS_ORDERS; "col_row" = the official I-JEPA checkpoints' positions

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid ** 2


class VisionTransformer(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        c = config
        self.patch_embed = nn.Conv2d(c.in_chans, c.dim, kernel_size=c.patch_size, stride=c.patch_size)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(c.grid, c.dim, c.pos_order), persistent=False)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.head_dim, c.mlp_ratio) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_weights(self)
        w = self.patch_embed.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=0.02)
        nn.init.zeros_(self.patch_embed.bias)
        rescale_residual_branches(self.blocks)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """images: [B, C, H, W] -> patch tokens with positions [B, N, D].

        The patch convolution (kernel = stride = patch) computed as one matrix product on the
        row-major patches: the tokens come out contiguous as [B, N, D], with no transpose copy of
        the (much wider) output in the forward or the backward. Same weights, same result.
        """
        B, C, H, W = images.shape
        p = self.config.patch_size
        patches = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5).reshape(B, -1, C * p * p)
        weight = self.patch_embed.weight
        x = F.linear(patches, weight.reshape(weight.shape[0], -1), self.patch_embed.bias)
        return x + self.pos_embed.to(x.dtype)

    def forward(self, images: torch.Tensor, keep_idx: torch.Tensor | None = None,
                keep_valid: torch.Tensor | None = None, keep_count: int | None = None) -> torch.Tensor:
        """images: [B, C, H, W]; keep_idx: optional [B, K] token indices; keep_valid: optional bool
        [B, K], False = a padding slot; keep_count: optional, the number of True in keep_valid (no
        host-device sync when given) -> tokens [B, K or N, D].

        With keep_valid the real tokens go through the blocks packed ([T, D], models/layers.py
        PackedTokens): padding costs attention only, and its output slots are zeros. Under
        torch.compile the padded layout runs instead (packing has a data-dependent size, which
        would break the graph): padding slots are computed and masked out of attention."""
        x = self.embed(images)
        if keep_idx is not None:
            x = gather_tokens(x, keep_idx)
        if keep_valid is None or torch.compiler.is_compiling():
            bias = key_padding_bias(keep_valid)
            for block in self.blocks:
                x = block(x, bias)
            return self.norm(x)
        packed = PackedTokens.from_valid(keep_valid, count=keep_count)
        x = packed.pack(x)
        for block in self.blocks:
            x = block(x, packed=packed)
        return packed.unpack(self.norm(x))

    def last_blocks(self, images: torch.Tensor, k: int) -> list[torch.Tensor]:
        """The outputs of the last k blocks on the full image, each [B, N, D]; the last one is the
        encoder's output (after the final LayerNorm), the others are raw residual streams."""
        x = self.embed(images)
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= len(self.blocks) - k:
                outs.append(x)
        outs[-1] = self.norm(outs[-1])
        return outs

    def export(self) -> dict:
        """A self-describing encoder checkpoint: {"vit_config": ..., "state_dict": ...}."""
        return {"vit_config": asdict(self.config), "state_dict": self.state_dict()}

"""The I-JEPA predictor: a narrow ViT that predicts target-block features from context tokens.

Context tokens are projected to the predictor width and get the predictor's own sin-cos positions;
each target position becomes a learned mask token plus its position. All T target blocks run in
ONE call, in one of two layouts; in both, blocks never see each other:
- per block (the official code's): T rows per sample, each the context + one block's mask tokens,
  all attending to each other; the context is computed T times.
- shared context (`model.predictor_shared_context`, beyond the paper): one row per sample, the
  context + all T blocks' mask tokens; the context attends to the context only, each block's mask
  tokens to the context and their own block. The context is computed once: Kc + T*Kt tokens
  instead of T*(Kc + Kt). With one predictor block the two layouts give the same predictions.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .layers import Block, PackedTokens, init_weights, key_padding_bias, rescale_residual_branches, sincos_pos_embed_2d


def shared_context_bias(Kc: int, T: int, Kt: int, device=None) -> torch.Tensor:
    """The shared-context layout's attention: Kc context tokens, then T blocks of Kt mask tokens.
    A context token attends to the context; a mask token to the context and its own block.
    -> additive bias [1, 1, L, L] (0 allowed, -inf not), L = Kc + T*Kt."""
    group = torch.cat([torch.full((Kc,), -1, device=device), torch.arange(T, device=device).repeat_interleave(Kt)])
    allowed = (group[None, :] == -1) | (group[None, :] == group[:, None])  # [query, key]
    return torch.zeros(allowed.shape, device=device).masked_fill_(~allowed, float("-inf"))[None, None]


class Predictor(nn.Module):
    def __init__(self, grid: int, embed_dim: int, dim: int, depth: int, heads: int, head_dim: int,
                 mlp_ratio: float, with_mask_token: bool = True, pos_order: str = "row_col"):
        """with_mask_token=False: no mask token (for `forward_all` users, so that every parameter
        receives a gradient under DDP). pos_order: the encoder's (ViTConfig.pos_order)."""
        super().__init__()
        self.proj_in = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim)) if with_mask_token else None
        self.register_buffer("pos_embed", sincos_pos_embed_2d(grid, dim, pos_order), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads, head_dim, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj_out = nn.Linear(dim, embed_dim)
        init_weights(self)
        rescale_residual_branches(self.blocks)
        if self.mask_token is not None:
            nn.init.trunc_normal_(self.mask_token, std=0.02)

    @classmethod
    def from_config(cls, encoder, predictor, with_mask_token: bool = True) -> "Predictor":
        """From a ViTConfig (the grid, width and position order it reads and predicts) and a PredictorConfig."""
        p = predictor
        return cls(encoder.grid, encoder.dim, p.dim, p.depth, p.heads, p.head_dim, p.mlp_ratio, with_mask_token,
                   encoder.pos_order)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                context_valid: torch.Tensor | None = None, shared_context: bool = False,
                context_tokens: int | None = None) -> torch.Tensor:
        """Predict target features.

        context:        [B, Kc, D_enc] encoder output on the context tokens
        context_idx:    [B, Kc] grid positions of the context tokens
        target_idx:     [B, T, Kt] grid positions of T target blocks of Kt tokens each
        context_valid:  optional bool [B, Kc]; False = padding, never attended to
        shared_context: the layout (module docstring): False = per block, True = shared context
        context_tokens: optional, the number of True in context_valid (packing then needs no sync)
        returns:        [B, T, Kt, D_enc]
        """
        B, T, Kt = target_idx.shape
        Kc = context_idx.shape[1]
        pos = self.pos_embed.to(context.dtype)
        ctx = self.proj_in(context) + pos[context_idx]  # [B, Kc, d]
        queries = self.mask_token.to(ctx.dtype) + pos[target_idx]  # [B, T, Kt, d]
        if shared_context:  # row b = context of sample b + the mask tokens of all its blocks
            x = torch.cat([ctx, queries.view(B, T * Kt, -1)], dim=1)  # [B, Kc + T*Kt, d]
            valid = None if context_valid is None else torch.cat([context_valid, context_valid.new_ones(B, T * Kt)], 1)
            bias = shared_context_bias(Kc, T, Kt, x.device)  # [1, 1, L, L]
            if valid is not None:
                bias = bias + key_padding_bias(valid)  # [B, 1, L, L]
            rows_out, real = T * Kt, None if context_tokens is None else context_tokens + B * T * Kt
        else:  # row b*T + t = context of sample b + mask tokens of its block t (one copy: cat reads
            # the context through a broadcast view)
            x = torch.cat([ctx.unsqueeze(1).expand(-1, T, -1, -1), queries], dim=2).view(B * T, Kc + Kt, -1)
            valid = None
            if context_valid is not None:  # keys: the row's context (padding masked) + its mask tokens
                valid = torch.cat([context_valid, context_valid.new_ones(B, Kt)], dim=1).repeat_interleave(T, dim=0)
            bias = key_padding_bias(valid)  # [B*T, 1, 1, Kc + Kt] or None
            rows_out, real = Kt, None if context_tokens is None else T * (context_tokens + B * Kt)
        # Only the mask tokens' outputs are read, so the last block computes just those rows (the
        # context there gives keys and values only): the same result for fewer FLOPs.
        *blocks, last = self.blocks
        if valid is None or torch.compiler.is_compiling():  # (packing would break a compiled graph)
            for block in blocks:
                x = block(x, bias)
            x = last.forward_last(x, rows_out, bias)
        else:  # padded context: the rows' real tokens go through the blocks packed (PackedTokens)
            packed = PackedTokens.from_valid(valid, bias, count=real)
            x = packed.pack(x)
            for block in blocks:
                x = block(x, packed=packed)
            x = last.forward_last(x, rows_out, packed=packed)
        out = self.proj_out(self.norm(x))  # [B*T, Kt, D_enc] or [B, T*Kt, D_enc]
        return out.view(B, T, Kt, -1)

    def forward_all(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predict every position from a full grid of tokens (Gated I-JEPA).

        tokens:  [B, N, D_enc], one per grid position in raster order (closed ones already replaced)
        returns: [B, N, D_enc]
        """
        x = self.proj_in(tokens)
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.proj_out(self.norm(x))

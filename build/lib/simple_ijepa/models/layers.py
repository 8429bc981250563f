"""Transformer building blocks shared by the encoder and the predictor.

Shapes: B = batch, N = tokens, D = width, H = heads, Dh = head width, T = real tokens of a padded
batch (`PackedTokens`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# Which half of the channels of a 2-D sin-cos position encodes what: "row_col" (ours: the row, then
# the column) or "col_row" (the official I-JEPA's: facebookresearch/ijepa src/models/vision_transformer.py,
# `get_2d_sincos_pos_embed` builds `np.meshgrid(grid_w, grid_h)`, "here w goes first", and encodes grid[0],
# the column index, into the first half).
POS_ORDERS = ("row_col", "col_row")


def sincos_pos_embed_2d(grid: int, dim: int, order: str = "row_col") -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (MAE / I-JEPA), row-major over a grid x grid image.

    Returns [grid*grid, dim]: with order "row_col" the first dim/2 channels encode the row, the last
    dim/2 the column; "col_row" swaps the halves (the official I-JEPA layout, see POS_ORDERS). Each
    half is [sin(pos * omega), cos(pos * omega)], omega_i = 1 / 10000^(i / (dim/4)), as the official
    `get_1d_sincos_pos_embed_from_grid`.
    """
    assert dim % 4 == 0, "sin-cos 2-D positions need dim divisible by 4"
    if order not in POS_ORDERS:
        raise ValueError(f"position order {order!r} is not one of {POS_ORDERS}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    coords = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:  # [N] -> [N, dim/2]
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    first, second = (rows, cols) if order == "row_col" else (cols, rows)
    return torch.cat([encode(first), encode(second)], dim=1).float()


def is_sincos_table(table: torch.Tensor, grid: int, dim: int, order: str) -> bool:
    """Whether `table` ([N, dim] or [1, N, dim], e.g. a foreign checkpoint's pos_embed) is
    `sincos_pos_embed_2d(grid, dim, order)` (to 1e-5)."""
    ours = sincos_pos_embed_2d(grid, dim, order)
    return tuple(table.shape[-2:]) == tuple(ours.shape) and torch.allclose(table.reshape(ours.shape).float(), ours,
                                                                          atol=1e-5)


class _SelectRows(torch.autograd.Function):
    """x[index] for unique row indices, [n, C] -> [T, C], with a backward that copies the gradient
    rows back (index_copy) instead of accumulating them: `index_select`'s own backward (index_add)
    took 10x longer on the CPU here (44 ms against 3.7 ms for the predictor's [6720, 128]; torch 2.14)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = x.shape[0]
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.rows, grad.shape[1]).index_copy_(0, index, grad), None


@dataclass
class PackedTokens:
    """The real tokens of a padded batch [B, K, C], packed as [T, C] (T = number of real tokens), so
    that per-token layers (LayerNorm, QKV, projection, MLP) compute nothing for padding slots; only
    attention unpacks to [B, K, C] and masks the padding keys.

    index: [T] long, the real slots of the flattened [B*K]; bias: [B, 1, 1, K] key-padding logits."""
    index: torch.Tensor
    batch: int
    length: int
    bias: torch.Tensor  # (or a per-query [B, 1, K, K] bias that also masks the padding keys)

    @classmethod
    def from_valid(cls, valid: torch.Tensor, bias: torch.Tensor | None = None,
                   count: int | None = None) -> "PackedTokens":
        """valid: bool [B, K], True = a real token (every row needs at least one); bias: the
        attention bias to use instead of the key-padding one ([B, 1, K, K] or [B, 1, 1, K]);
        count: the number of True in valid, when the host knows it (the masks are built there):
        then no host-device synchronisation (`nonzero` alone has to wait for the device to learn T)."""
        bias = key_padding_bias(valid) if bias is None else bias
        flat = valid.flatten()
        index = flat.nonzero() if count is None else torch.nonzero_static(flat, size=count)
        return cls(index.squeeze(1), valid.shape[0], valid.shape[1], bias)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[B, K, C] -> [T, C]."""
        return _SelectRows.apply(x.reshape(self.batch * self.length, -1), self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """[T, C] -> [B, K, C], zeros in the padding slots."""
        out = x.new_zeros(self.batch * self.length, x.shape[-1]).index_copy(0, self.index, x)
        return out.view(self.batch, self.length, -1)


class Attention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention` (flash kernels on GPU)."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None,
                packed: PackedTokens | None = None) -> torch.Tensor:
        """x: [B, N, D] -> [B, N, D]; attn_bias: optional additive logits bias [B, 1, N, N]
        (-inf removes a key; Gated I-JEPA uses it for closed tokens). With `packed`, x is [T, D]
        (real tokens only) and so is the output: the QKV and output projections run on real tokens,
        attention on the padded [B, K] layout with packed.bias masking the padding keys."""
        qkv = self.qkv(x)
        if packed is not None:
            qkv, attn_bias = packed.unpack(qkv), packed.bias
        B, N, _ = qkv.shape
        # q, k, v split along dim 2 (not by a permute): the backward then stacks their gradients
        # straight into the qkv output's layout, one copy instead of two.
        q, k, v = (t.transpose(1, 2) for t in qkv.view(B, N, 3, self.heads, self.head_dim).unbind(2))
        if attn_bias is not None:
            attn_bias = attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # [B, H, N, Dh]
        out = out.transpose(1, 2).reshape(B, N, self.heads * self.head_dim)
        return self.proj(out if packed is None else packed.pack(out))

    def forward_last(self, x: torch.Tensor, n: int, attn_bias: torch.Tensor | None = None,
                     packed: PackedTokens | None = None) -> torch.Tensor:
        """`forward(x)[:, -n:]` without computing the other rows: the last n tokens of each row
        query every key; the other tokens only give keys and values (no query, no output
        projection). x: [B, N, D], or [T, D] with `packed` (the last n slots of every row must
        be real tokens) -> [B, n, D]."""
        inner = self.heads * self.head_dim
        w, b = self.qkv.weight, self.qkv.bias  # rows: q, then k, then v (the view in forward)
        kv = F.linear(x, w[inner:], b[inner:])  # [B, N, 2 * inner] (or packed [T, 2 * inner])
        if packed is not None:
            kv, attn_bias, x = packed.unpack(kv), packed.bias, packed.unpack(x)
        B, N, _ = kv.shape
        if attn_bias is not None and attn_bias.shape[-2] != 1:  # a per-query bias: the returned rows'
            attn_bias = attn_bias[..., N - n:, :]
        q = F.linear(x[:, N - n:], w[:inner], b[:inner]).view(B, n, self.heads, self.head_dim).transpose(1, 2)
        k, v = (t.transpose(1, 2) for t in kv.view(B, N, 2, self.heads, self.head_dim).unbind(2))
        if attn_bias is not None:
            attn_bias = attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # [B, H, n, Dh]
        return self.proj(out.transpose(1, 2).reshape(B, n, inner))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None,
                packed: PackedTokens | None = None) -> torch.Tensor:
        """x: [B, N, D], or [T, D] real tokens with `packed` (see PackedTokens)."""
        x = x + self.attn(self.norm1(x), attn_bias, packed)
        return x + self.mlp(self.norm2(x))

    def forward_last(self, x: torch.Tensor, n: int, attn_bias: torch.Tensor | None = None,
                     packed: PackedTokens | None = None) -> torch.Tensor:
        """`forward(x)[:, -n:]`, computing only those rows past the keys and values (the last
        block of the predictor, whose context outputs nobody reads). -> [B, n, D]."""
        x_last = (x if packed is None else packed.unpack(x))[:, -n:]
        x_last = x_last + self.attn.forward_last(self.norm1(x), n, attn_bias, packed)
        return x_last + self.mlp(self.norm2(x_last))


def init_weights(module: nn.Module) -> None:
    """ViT init (timm / I-JEPA): truncated normal 0.02 for linears, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rescale_residual_branches(blocks: nn.ModuleList) -> None:
    """I-JEPA's `fix_init_weight`: divide each residual output projection by sqrt(2 * layer)."""
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_((2.0 * layer) ** 0.5)
            block.mlp.fc2.weight.div_((2.0 * layer) ** 0.5)


def key_padding_bias(valid: torch.Tensor | None) -> torch.Tensor | None:
    """bool [B, K] (True = a real token) -> additive attention bias [B, 1, 1, K]: 0 for real keys,
    -inf for padding. Padded queries still get an output (ignored by the caller). None -> None."""
    if valid is None:
        return None
    return torch.zeros(valid.shape, dtype=torch.float32, device=valid.device).masked_fill_(
        ~valid, float("-inf"))[:, None, None, :]


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Select tokens per sample. x: [B, N, D], idx: [B, K] (long) -> [B, K, D]."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

"""Analytic forward FLOPs of the ViT encoder, with or without tokens dropped after a gate.

Counted: every matmul and the patch-embedding convolution, 2 FLOPs per multiply-add (the
convention of `torch.utils.flop_counter.FlopCounterMode`, which tests/test_gated.py checks this
against). Not counted: norms, softmax, GELU, residual adds (a few percent at most). The count is
analytic because FlopCounterMode does not see the CPU's fused attention kernel and because it
gives the cost for any number of kept tokens without running the model.
"""
from __future__ import annotations

from ..models.gate_locations import GATE_READS
from ..models.vit import ViTConfig


def block_flops(cfg: ViTConfig, n: int) -> int:
    """One pre-norm block on n tokens: qkv, Q K^T and A V, output projection, MLP."""
    inner, hidden = cfg.heads * cfg.head_dim, int(cfg.dim * cfg.mlp_ratio)
    return 2 * n * cfg.dim * 3 * inner + 4 * n * n * inner + 2 * n * inner * cfg.dim + 4 * n * cfg.dim * hidden


def encoder_flops(cfg: ViTConfig, gate_layer_index: int | None = None, kept: int | None = None,
                  gate_location: str = "post") -> int:
    """One image through the encoder. With `kept` tokens after a gate in block `gate_layer_index`,
    blocks gate_layer_index+1.. run on `kept` tokens instead of all N, and the gate head (a linear
    from the GATE_READS[gate_location] D-wide inputs its location gives it to 1, on all N tokens)
    is added."""
    n = cfg.num_patches
    total = 2 * n * cfg.in_chans * cfg.patch_size ** 2 * cfg.dim  # patch embedding
    for i in range(cfg.depth):
        pruned = kept is not None and gate_layer_index is not None and i > gate_layer_index
        total += block_flops(cfg, kept if pruned else n)
    if kept is not None:
        reads = 1 if gate_layer_index is None else GATE_READS[gate_location]
        total += 2 * n * cfg.dim * reads  # gate head
    return total

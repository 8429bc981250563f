"""Where a gate sits inside encoder block k (`model.gate_location`): one small function each.

Each location runs block k on the stream x [B, N, D] with the gate inside it:

    location(block, x, gate, mix) -> (stream after block k [B, N, D], log_alpha [B, N], z [B, N], gate_input)

where `gate(read, token_itself=None) -> (log_alpha, z)` decides from what the location gives it to
read, and `mix(x, z) = z * x + (1 - z) * fill` replaces closed tokens. `GATE_READS` says how many
D-wide inputs each location's gate head reads (the head's width; the FLOP counter counts it).
A new location is one function here, one entry in each table, and one test.
"""
from __future__ import annotations

import torch


def post(block, x: torch.Tensor, gate, mix):
    """After block k: the gate reads the block's output, later blocks get mix(output)."""
    x = block(x)
    log_alpha, z = gate(x)
    return mix(x, z), log_alpha, z, x


def skip(block, x: torch.Tensor, gate, mix):
    """Inside block k after the attention residual s = x + attn(x): the gate reads s; the MLP of
    block k and the later blocks get mix(s)."""
    s = x + block.attn(block.norm1(x))
    log_alpha, z = gate(s)
    s = mix(s, z)
    return s + block.mlp(block.norm2(s)), log_alpha, z, s


def attn(block, x: torch.Tensor, gate, mix):
    """As `skip`, but the gate reads the attention output attn(x) (what the token gathered from the
    others) next to x itself (see GateHead). The residual is gated with it, so a closed token really
    loses its content; gating attn(x) alone would let x pass through."""
    a = block.attn(block.norm1(x))
    log_alpha, z = gate(a, x)
    s = mix(x + a, z)
    return s + block.mlp(block.norm2(s)), log_alpha, z, a


GATE_LOCATIONS = {"post": post, "skip": skip, "attn": attn}
GATE_READS = {"post": 1, "skip": 1, "attn": 2}

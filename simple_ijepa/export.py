"""Encoder export: `encoder_*.pth` (+ `.safetensors`), `load_encoder(path)`, and a timm model.

    from simple_ijepa import load_encoder
    encoder = load_encoder("models/encoder_ddp.pth")   # a ready VisionTransformer in eval mode
    tokens = encoder(images)                            # [B, N, D]; mean-pool for a global feature

    from simple_ijepa.export import to_timm
    model = to_timm(encoder)                            # timm's VisionTransformer, same weights
    tokens = model.forward_features(images)             # [B, N, D], equal to encoder(images)

    python -m simple_ijepa.export --ckpt_path models/encoder_ddp.pth --timm encoder_timm.safetensors
"""
from __future__ import annotations

import json

import torch

from .checkpoints import load_encoder, save_encoder, save_safetensors  # noqa: F401  (exported from here too)
from .errors import ConfigError
from .models.vit import VisionTransformer, ViTConfig

TIMM_FORMAT = "simple-ijepa/timm-v1"


# --- timm ----------------------------------------------------------------------------------------
def timm_kwargs(config: ViTConfig) -> dict:
    """Keyword arguments of timm's `VisionTransformer` that rebuild an encoder of this configuration.

    No class token, patch tokens only (`no_embed_class`), the final LayerNorm on the tokens
    (`fc_norm=False`: not after pooling), average pooling and no head, so `forward_features` gives
    our tokens [B, N, D] and `forward` their mean [B, D]. timm's default norm (LayerNorm, eps 1e-6)
    and activation (exact GELU) are ours. Raises ConfigError when timm cannot hold the encoder.
    """
    c = config
    if c.heads * c.head_dim != c.dim:
        fix = (f"model.head_dim={c.dim // c.heads}" if c.dim % c.heads == 0
               else f"model.heads={c.dim // c.head_dim} model.head_dim={c.head_dim}" if c.dim % c.head_dim == 0
               else "heads that divide hidden_dim")
        raise ConfigError(
            f"This encoder cannot be exported to timm: its attention is heads x head_dim = {c.heads} x "
            f"{c.head_dim} = {c.heads * c.head_dim} wide, but its hidden_dim is {c.dim}, and timm's "
            "VisionTransformer needs heads * head_dim == hidden_dim. Train with model.head_dim = "
            f"hidden_dim / heads (here for example {fix}) to get an exportable encoder.")
    return dict(img_size=c.image_size, patch_size=c.patch_size, in_chans=c.in_chans, embed_dim=c.dim,
                depth=c.depth, num_heads=c.heads, mlp_ratio=c.mlp_ratio, qkv_bias=True, class_token=False,
                no_embed_class=True, global_pool="avg", fc_norm=False, num_classes=0)


def timm_state_dict(encoder: VisionTransformer) -> dict[str, torch.Tensor]:
    """Our state dict under timm's names: the patch conv moves to `patch_embed.proj`, the fixed
    sin-cos positions [N, D] become the `pos_embed` parameter [1, N, D]. Every other name (blocks
    with norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2; the final norm) and the qkv layout
    (output rows ordered [3, heads, head_dim], split the same way) are already timm's."""
    state = {(f"patch_embed.proj.{k[len('patch_embed.'):]}" if k.startswith("patch_embed.") else k): v
             for k, v in encoder.state_dict().items()}
    state["pos_embed"] = encoder.pos_embed.unsqueeze(0)
    return state


def to_timm(encoder: VisionTransformer):
    """timm's `VisionTransformer` with the encoder's weights, in eval mode on the encoder's device,
    whose `forward_features(images)` tokens [B, N, D] equal `encoder(images)`.

    Needs `heads * head_dim == hidden_dim` (ConfigError otherwise, before timm is imported) and
    timm (`pip install 'simple-ijepa[timm]'`).
    """
    kwargs = timm_kwargs(encoder.config)
    try:
        from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer
    except ImportError:
        raise ImportError("to_timm needs timm: pip install 'simple-ijepa[timm]' (or pip install timm).") from None
    weight = encoder.patch_embed.weight
    model = TimmVisionTransformer(**kwargs).to(device=weight.device, dtype=weight.dtype)
    model.load_state_dict(timm_state_dict(encoder))
    return model.eval()


def save_timm(encoder: VisionTransformer, path: str) -> dict:
    """Write `to_timm(encoder)`'s state dict to `path` (.safetensors) with its timm kwargs as JSON
    in the metadata ("timm_kwargs"); returns the kwargs."""
    model = to_timm(encoder)
    kwargs = timm_kwargs(encoder.config)
    save_safetensors(model.state_dict(), path, {"format": TIMM_FORMAT, "timm_kwargs": json.dumps(kwargs)})
    return kwargs


def timm_load_snippet(path: str) -> str:
    """Python that rebuilds the timm model written by `save_timm` at `path` (`images`: [B, 3, S, S],
    normalised as in training)."""
    return "\n".join([
        "import json",
        "from safetensors import safe_open",
        "from safetensors.torch import load_file",
        "from timm.models.vision_transformer import VisionTransformer",
        f"with safe_open({path!r}, framework='pt') as f:",
        "    kwargs = json.loads(f.metadata()['timm_kwargs'])",
        "model = VisionTransformer(**kwargs)",
        f"model.load_state_dict(load_file({path!r}))",
        "model.eval()",
        "tokens = model.forward_features(images)   # [B, N, D], as our encoder(images)",
        "features = model(images)                  # [B, D], their mean (the probe's features)",
    ])


if __name__ == "__main__":  # python -m simple_ijepa.export: the command is simple_ijepa/cli/export.py
    from .cli.export import cli

    cli()

"""Encoder export: `encoder_*.pth` (+ `.safetensors`), `load_encoder(path)`, a timm model, and the
official I-JEPA checkpoints in (`from_official`, simple_ijepa/official.py).

    from simple_ijepa import load_encoder
    encoder = load_encoder("models/encoder_ddp.pth")   # a ready VisionTransformer in eval mode
    tokens = encoder(images)                            # [B, N, D]; mean-pool for a global feature

    from simple_ijepa.export import to_timm
    model = to_timm(encoder)                            # timm's VisionTransformer, same weights
    tokens = model.forward_features(images)             # [B, N, D], equal to encoder(images)

    from simple_ijepa.export import from_official
    official = from_official("IN1K-vit.h.14-300e.pth.tar")   # a facebookresearch/ijepa checkpoint
    tokens = official.encoder(images)                   # [B, N, D], the official target encoder's

    python -m simple_ijepa.export --ckpt_path models/encoder_ddp.pth --timm encoder_timm.safetensors
    python -m simple_ijepa.export --from_official IN1K-vit.h.14-300e.pth.tar --out vith14.pth
"""
from __future__ import annotations

import json

import torch

from .checkpoints import TIMM_FORMAT, load_encoder, save_encoder, save_safetensors  # noqa: F401  (exported here too)
from .errors import ConfigError
from .models.vit import VisionTransformer, ViTConfig
from .official import from_official  # noqa: F401  (exported from here)


# --- timm ----------------------------------------------------------------------------------------
def timm_kwargs(config: ViTConfig) -> dict:
    """Keyword arguments of timm's `VisionTransformer` that rebuild an encoder of this configuration.

    No class token, patch tokens only (`no_embed_class`), the final LayerNorm on the tokens
    (`fc_norm=False`: not after pooling), average pooling and no head, so `forward_features` gives
    our tokens [B, N, D] and `forward` their mean [B, D]. timm's default norm (LayerNorm, eps 1e-6)
    and activation (exact GELU) are ours. When heads x head_dim != hidden_dim (the default model:
    6 x 64 = 384 inside 512) the kwargs carry "attn_head_dim", which `build_timm` turns into timm's
    own `Attention(attn_head_dim=...)` as the blocks' attention layer.
    """
    c = config
    kwargs = dict(img_size=c.image_size, patch_size=c.patch_size, in_chans=c.in_chans, embed_dim=c.dim,
                  depth=c.depth, num_heads=c.heads, mlp_ratio=c.mlp_ratio, qkv_bias=True, class_token=False,
                  no_embed_class=True, global_pool="avg", fc_norm=False, num_classes=0)
    if c.heads * c.head_dim != c.dim:
        kwargs["attn_head_dim"] = c.head_dim
    return kwargs


def build_timm(kwargs: dict):
    """timm's `VisionTransformer(**kwargs)` for `timm_kwargs` (JSON-safe: an "attn_head_dim" entry
    becomes `attn_layer=` a subclass of timm's Attention with that per-head width). Raises
    ConfigError when the installed timm has no per-head width, ImportError without timm."""
    import inspect

    try:
        from timm.models.vision_transformer import Attention
        from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer
    except ImportError:
        raise ImportError("timm export needs timm: pip install 'simple-ijepa[timm]' (or pip install timm).") from None
    kwargs = dict(kwargs)
    head_dim = kwargs.pop("attn_head_dim", None)
    if head_dim is not None:
        if "attn_head_dim" not in inspect.signature(Attention.__init__).parameters:
            import timm

            raise ConfigError(f"This encoder's attention is {kwargs['num_heads']} heads x {head_dim} wide inside a "
                              f"{kwargs['embed_dim']}-wide model; timm {timm.__version__} has no attn_head_dim. "
                              "pip install -U timm (1.0 has it).")
        def init(self, *args, **kw):
            Attention.__init__(self, *args, attn_head_dim=head_dim, **kw)
        kwargs["attn_layer"] = type(f"AttentionHeadDim{head_dim}", (Attention,), {"__init__": init})
    return TimmVisionTransformer(**kwargs)


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

    Needs timm (`pip install 'simple-ijepa[timm]'`).
    """
    weight = encoder.patch_embed.weight
    model = build_timm(timm_kwargs(encoder.config)).to(device=weight.device, dtype=weight.dtype)
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
        "from timm.models.vision_transformer import Attention, VisionTransformer",
        f"with safe_open({path!r}, framework='pt') as f:",
        "    kwargs = json.loads(f.metadata()['timm_kwargs'])",
        "if 'attn_head_dim' in kwargs:  # attention narrower than the model: timm's Attention takes the width",
        "    head_dim = kwargs.pop('attn_head_dim')",
        "    class NarrowAttention(Attention):",
        "        def __init__(self, *args, **kw):",
        "            super().__init__(*args, attn_head_dim=head_dim, **kw)",
        "    kwargs['attn_layer'] = NarrowAttention",
        "model = VisionTransformer(**kwargs)   # or: simple_ijepa.export.build_timm(kwargs)",
        f"model.load_state_dict(load_file({path!r}))",
        "model.eval()",
        "tokens = model.forward_features(images)   # [B, N, D], as our encoder(images)",
        "features = model(images)                  # [B, D], their mean (the probe's features)",
    ])


if __name__ == "__main__":  # python -m simple_ijepa.export: the command is simple_ijepa/cli/export.py
    from .cli.export import cli

    cli()

"""Encoder export to Hugging Face transformers: a directory `IJepaModel.from_pretrained` loads.

    from simple_ijepa.huggingface import save_hf
    save_hf(load_encoder("models/encoder_ddp.pth"), "encoder_hf")   # config.json + model.safetensors

    from transformers import IJepaModel
    model = IJepaModel.from_pretrained("encoder_hf").eval()
    tokens = model(pixel_values=images).last_hidden_state           # [B, N, D], equal to encoder(images)

The mapping follows transformers' `models/ijepa/modeling_ijepa.py` and `configuration_ijepa.py`
(checked against transformers 5.24). IJepaModel is our encoder: a Conv2d patch embedding, a learned
`position_embeddings` parameter [1, N, D] added to the patch tokens (no class token), pre-norm
layers (LayerNorm, attention with biased q/k/v, LayerNorm, fc1-GELU-fc2), a final LayerNorm, and
by default no pooler, so `last_hidden_state` is our output tokens. Its attention heads are
hidden_size / num_attention_heads wide: encoders whose heads x head_dim is not their width are
refused (`hf_config`). Images must have the encoder's size (transformers can interpolate the
positions with `interpolate_pos_encoding=True`; we do not, so those tokens are not ours).

The weights are written under the checkpoint names transformers writes itself (`save_pretrained`
turns its module names back into them) and reads in every version with IJepa: `encoder.layer.{i}.
attention.attention.query`, ... as listed in `hf_state_dict`.
"""
from __future__ import annotations

import os

import torch

from .checkpoints import save_safetensors
from .errors import ConfigError
from .models.vit import VisionTransformer, ViTConfig

LAYER_NAMES = {  # ours (blocks.{i}.X) -> transformers' checkpoint names (encoder.layer.{i}.Y)
    "norm1": "layernorm_before",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}


def hf_config(config: ViTConfig) -> dict:
    """`IJepaConfig` keyword arguments that rebuild an encoder of this configuration.

    Exact GELU ("gelu" is erf GELU in transformers, as our F.gelu), LayerNorm eps 1e-6, biased
    q/k/v, no dropout, MLP width int(dim * mlp_ratio) as our Block. Raises ConfigError when the
    attention is not as wide as the model: IJepaConfig has no per-head width (transformers 4.x
    computes hidden_size / num_attention_heads; 5.x would also read an undocumented `head_dim`
    attribute, which a file meant for every version cannot rely on).
    """
    c = config
    if c.heads * c.head_dim != c.dim:
        raise ConfigError(f"IJepaModel needs heads x head_dim == hidden_dim; this encoder has {c.heads} x "
                          f"{c.head_dim} = {c.heads * c.head_dim} != {c.dim} (model.head_dim). Export it to timm "
                          "instead (--timm handles it), or train with heads x head_dim = hidden_dim.")
    return dict(architectures=["IJepaModel"], hidden_size=c.dim, num_hidden_layers=c.depth,
                num_attention_heads=c.heads, intermediate_size=int(c.dim * c.mlp_ratio), hidden_act="gelu",
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-6,
                image_size=c.image_size, patch_size=c.patch_size, num_channels=c.in_chans, qkv_bias=True)


def hf_layer(block_state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """One block's tensors (our names without "blocks.{i}.") under transformers' names with `prefix`.

    attn.qkv [3 * H * Dh, D] splits along its output rows into query, key, value [H * Dh, D] each
    (rows ordered [3, H, Dh], as Attention.forward views them; transformers views each as [H, Dh]).
    """
    out = {}
    for name, tensor in block_state.items():
        module, param = name.rsplit(".", 1)
        if module == "attn.qkv":
            for part, chunk in zip(("query", "key", "value"), tensor.chunk(3, dim=0)):
                out[f"{prefix}attention.attention.{part}.{param}"] = chunk.clone()  # own storage
        else:
            out[f"{prefix}{LAYER_NAMES[module]}.{param}"] = tensor
    return out


def hf_state_dict(encoder: VisionTransformer) -> dict[str, torch.Tensor]:
    """The encoder's tensors under IJepaModel's checkpoint names.

    patch_embed [D, C, p, p] -> embeddings.patch_embeddings.projection; the fixed sin-cos table the
    encoder adds (its `pos_embed` buffer [N, D], whatever its channel order) -> the learned
    embeddings.position_embeddings [1, N, D]; blocks.{i} -> encoder.layer.{i} (`hf_layer`);
    norm -> layernorm. Raises ConfigError as `hf_config` does.
    """
    hf_config(encoder.config)
    groups: dict[int, dict[str, torch.Tensor]] = {}
    state = {"embeddings.position_embeddings": encoder.pos_embed.detach().unsqueeze(0)}
    for name, tensor in encoder.state_dict().items():
        tensor = tensor.detach()
        if name.startswith("blocks."):
            _, index, rest = name.split(".", 2)
            groups.setdefault(int(index), {})[rest] = tensor
        elif name.startswith("patch_embed."):
            state[f"embeddings.patch_embeddings.projection.{name.split('.', 1)[1]}"] = tensor
        elif name.startswith("norm."):
            state[f"layernorm.{name.split('.', 1)[1]}"] = tensor
        else:
            raise ConfigError(f"hf_state_dict: no transformers name for the encoder's {name!r}.")
    for index, block_state in sorted(groups.items()):
        state.update(hf_layer(block_state, f"encoder.layer.{index}."))
    return state


def save_hf(encoder: VisionTransformer, out_dir: str) -> dict:
    """Write `out_dir`/config.json (IJepaConfig) and `out_dir`/model.safetensors for
    `transformers.IJepaModel.from_pretrained(out_dir)`; returns the IJepaConfig kwargs.

    Needs transformers (`pip install 'simple-ijepa[hf]'` or pip install transformers). Raises
    ConfigError, before writing anything, for an encoder IJepaModel cannot hold (`hf_config`).
    """
    kwargs = hf_config(encoder.config)
    try:
        from transformers import IJepaConfig
    except ImportError:
        raise ImportError("Hugging Face export needs transformers with IJepa (>= 4.47): "
                          "pip install 'simple-ijepa[hf]' (or pip install transformers).") from None
    state = hf_state_dict(encoder)
    os.makedirs(out_dir, exist_ok=True)
    IJepaConfig(**kwargs).save_pretrained(out_dir)
    save_safetensors(state, os.path.join(out_dir, "model.safetensors"), {"format": "pt"})
    return kwargs

"""Export to Hugging Face transformers: `save_hf` writes a directory `IJepaModel.from_pretrained`
loads with our tokens, and encoders IJepaModel cannot hold are refused with a clear error."""
import pytest
import torch

from simple_ijepa.config import make_config
from simple_ijepa.errors import ConfigError
from simple_ijepa.huggingface import hf_config, hf_state_dict, save_hf
from simple_ijepa.models import ModelConfig
from simple_ijepa.models.vit import VisionTransformer, ViTConfig

transformers = pytest.importorskip("transformers")

TINY = dict(image_size=16, patch_size=4, dim=64, depth=2, heads=4, head_dim=16, mlp_ratio=2.0)


def perturbed(config: ViTConfig, seed: int = 0) -> VisionTransformer:
    """An encoder in eval mode whose every parameter got noise (zero biases and unit LayerNorms take
    other values, so a missed or swapped mapping shows), and whose position table is random: the
    export must carry the table the encoder adds, not a recomputed one."""
    torch.manual_seed(seed)
    encoder = VisionTransformer(config)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
        encoder.pos_embed.copy_(torch.randn_like(encoder.pos_embed))
    return encoder.eval()


def assert_hf_gives_our_tokens(encoder: VisionTransformer, out_dir) -> None:
    """save_hf -> IJepaModel.from_pretrained: every tensor used, none missing, the same tokens."""
    save_hf(encoder, str(out_dir))
    model, info = transformers.IJepaModel.from_pretrained(str(out_dir), output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    model.eval()
    c = encoder.config
    images = torch.randn(2, c.in_chans, c.image_size, c.image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = encoder(images)
        theirs = model(pixel_values=images)
    assert theirs.pooler_output is None
    torch.testing.assert_close(theirs.last_hidden_state, ours, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kw", [{}, dict(mlp_ratio=3.0, in_chans=1, depth=1)], ids=["tiny", "mlp3-gray"])
def test_ijepa_model_gives_our_tokens(tmp_path, kw):
    encoder = perturbed(ViTConfig(**{**TINY, **kw}))
    assert_hf_gives_our_tokens(encoder, tmp_path / "hf")
    config = transformers.IJepaConfig.from_pretrained(str(tmp_path / "hf"))
    assert config.layer_norm_eps == 1e-6 and config.hidden_act == "gelu" and config.qkv_bias
    assert config.intermediate_size == int(64 * encoder.config.mlp_ratio)


def test_the_cpu_small_preset_exports(tmp_path):
    encoder = perturbed(ModelConfig.from_flat(make_config(["experiment=cpu_small"]).model).encoder, seed=2)
    assert (encoder.config.dim, encoder.config.heads, encoder.config.head_dim) == (192, 3, 64)
    assert_hf_gives_our_tokens(encoder, tmp_path / "hf")


def test_qkv_splits_into_query_key_value():
    encoder = perturbed(ViTConfig(**TINY))
    state = hf_state_dict(encoder)
    qkv = encoder.blocks[1].attn.qkv.weight  # [3 * 64, 64]
    for i, part in enumerate(("query", "key", "value")):
        torch.testing.assert_close(state[f"encoder.layer.1.attention.attention.{part}.weight"], qkv[64 * i:][:64])
    assert state["embeddings.position_embeddings"].shape == (1, 16, 64)


def test_narrow_attention_is_refused_naming_head_dim(tmp_path):
    encoder = VisionTransformer(ViTConfig(**{**TINY, "head_dim": 8}))
    with pytest.raises(ConfigError, match=r"4 x 8 = 32 != 64 \(model.head_dim\)"):
        save_hf(encoder, str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()


def test_the_default_model_is_refused_clearly():
    """The README's default encoder: 6 heads x 64 = 384 inside 512 (timm export handles it)."""
    config = ModelConfig.from_flat(make_config().model).encoder
    with pytest.raises(ConfigError, match=r"heads x head_dim == hidden_dim.*6 x 64 = 384 != 512 \(model.head_dim\)"):
        hf_config(config)

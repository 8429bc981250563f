"""Export to timm: `to_timm` gives our tokens, the command writes a file timm loads, and encoders
timm cannot hold are refused with a clear error."""
import sys

import pytest
import torch
import torch.nn as nn
from helpers import PYTHON, run_cli

from simple_ijepa.checkpoints import save_encoder
from simple_ijepa.cli.export import main as export
from simple_ijepa.export import to_timm
from simple_ijepa.models.vit import VisionTransformer, ViTConfig

timm = pytest.importorskip("timm")

TINY = dict(image_size=32, patch_size=8, dim=32, depth=2, heads=2, head_dim=16, mlp_ratio=2.0)


def tiny_vit(seed: int = 0, perturb: bool = False, **kw) -> VisionTransformer:
    """A tiny random-init encoder; `perturb` adds noise to every parameter (zero biases and unit
    LayerNorms then take other values, so a mix-up between any two of them would show)."""
    torch.manual_seed(seed)
    encoder = VisionTransformer(ViTConfig(**{**TINY, **kw}))
    if perturb:
        with torch.no_grad():
            for p in encoder.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return encoder.eval()


@pytest.mark.parametrize("perturb", [False, True])
def test_to_timm_gives_the_same_tokens(perturb):
    encoder = tiny_vit(perturb=perturb)
    model = to_timm(encoder)
    assert not model.training and model.cls_token is None and model.pos_embed.shape == (1, 16, 32)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * 2 + 1 and all(m.eps == 1e-6 for m in norms)
    assert all(isinstance(b.ls1, nn.Identity) and isinstance(b.drop_path1, nn.Identity) for b in model.blocks)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = encoder(images)
        tokens = model.forward_features(images)
        pooled = model(images)
    torch.testing.assert_close(tokens, ours)
    torch.testing.assert_close(pooled, ours.mean(dim=1))


def test_mlp_ratio_and_one_channel_carry_over():
    encoder = tiny_vit(seed=2, perturb=True, mlp_ratio=3.0, in_chans=1, depth=1)
    images = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(to_timm(encoder).forward_features(images), encoder(images))


def test_the_default_model_exports_with_the_same_tokens():
    """The README's default encoder (6 heads x 64 = 384 inside 512) through timm's attn_head_dim."""
    from simple_ijepa.config import make_config
    from simple_ijepa.models import ModelConfig

    torch.manual_seed(0)
    encoder = VisionTransformer(ModelConfig.from_flat(make_config().model).encoder).eval()
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = to_timm(encoder)
    assert model.blocks[0].attn.qkv.out_features == 3 * 384 and model.embed_dim == 512
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(images), encoder(images))


def test_command_writes_a_file_timm_loads(tmp_path, capsys):
    encoder = tiny_vit(seed=3, perturb=True)
    path = str(tmp_path / "encoder_ddp.pth")
    save_encoder(encoder, path)
    out = str(tmp_path / "timm.safetensors")
    kwargs = export(["--ckpt_path", path.replace(".pth", ".safetensors"), "--timm", out])
    assert kwargs["num_classes"] == 0 and kwargs["global_pool"] == "avg" and kwargs["class_token"] is False
    printed = capsys.readouterr().out
    snippet = printed.split("\n\n", 1)[1]
    images = torch.randn(2, 3, 32, 32)
    scope = {"images": images}
    with torch.no_grad():
        exec(snippet, scope)  # the printed load snippet, as a user would paste it
        ours = encoder(images)
    assert isinstance(scope["model"], timm.models.vision_transformer.VisionTransformer)
    torch.testing.assert_close(scope["tokens"], ours)
    torch.testing.assert_close(scope["features"], ours.mean(dim=1))


def test_command_exports_a_narrow_attention_encoder_and_the_snippet_loads_it(tmp_path, capsys):
    encoder = VisionTransformer(ViTConfig(**{**TINY, "head_dim": 8})).eval()
    path = str(tmp_path / "encoder_ddp.pth")
    save_encoder(encoder, path)
    out = str(tmp_path / "timm.safetensors")
    assert export(["--ckpt_path", path, "--timm", out])["attn_head_dim"] == 8
    scope = {"images": torch.randn(2, 3, 32, 32)}
    with torch.no_grad():
        exec(capsys.readouterr().out.split("\n\n", 1)[1], scope)
        torch.testing.assert_close(scope["tokens"], encoder(scope["images"]))


def test_missing_timm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm.models.vision_transformer", None)
    with pytest.raises(ImportError, match=r"pip install 'simple-ijepa\[timm\]'"):
        to_timm(tiny_vit())


@pytest.mark.slow
def test_module_help_runs_without_warnings(tmp_path):
    run = run_cli([PYTHON, "-W", "error", "-m", "simple_ijepa.export", "--help"], cwd=tmp_path, timeout=120)
    assert run.returncode == 0 and "--timm" in run.stdout, run.stdout


def test_a_timm_file_loads_back_as_our_encoder_and_fine_tunes(tmp_path):
    """`ijepa-export --timm` round trip: load_encoder (so evaluate, finetune and logging.init_from)
    reads the timm file and gives the same tokens, for both position orders; finetune runs from it;
    a timm file whose positions were trained further is refused by name."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from simple_ijepa.checkpoints import load_encoder, save_safetensors
    from simple_ijepa.cli.finetune import main as finetune
    from simple_ijepa.errors import CheckpointError
    from simple_ijepa.export import save_timm

    images = torch.randn(2, 3, 32, 32)
    for order in ("row_col", "col_row"):
        encoder = tiny_vit(seed=4, perturb=True, head_dim=8, pos_order=order)
        path = str(tmp_path / f"{order}.safetensors")
        save_timm(encoder, path)
        back = load_encoder(path)
        assert back.config == encoder.config
        with torch.no_grad():
            torch.testing.assert_close(back(images), encoder(images))
    top1 = finetune(["--ckpt_path", path, "--dataset_name", "digits", "--device", "cpu", "--epochs", "1",
                     "--batch_size", "128", "--out_dir", str(tmp_path / "ft")])
    assert 0.0 <= top1 <= 1.0

    state = load_file(path)
    state["pos_embed"] = state["pos_embed"] + 0.01
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    save_safetensors(state, str(tmp_path / "moved.safetensors"), metadata)
    with pytest.raises(CheckpointError, match="pos_embed"):
        load_encoder(str(tmp_path / "moved.safetensors"))

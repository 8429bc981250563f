"""The official I-JEPA checkpoints (facebookresearch/ijepa): `from_official` gives the official tokens
and predictions, `ijepa-export --from_official` writes our encoder file, and `logging.init_from`
starts a run from the official weights (or refuses a run of another shape, naming the keys).

The official model is reimplemented here in a few lines, with the official names and layout, after
facebookresearch/ijepa src/models/vision_transformer.py (`get_2d_sincos_pos_embed`, `Attention`,
`Block`, `PatchEmbed`, `VisionTransformer`, `VisionTransformerPredictor`) and src/masks/utils.py
(`apply_masks`); the checkpoint is written as its src/train.py `save_checkpoint` does.
"""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

from simple_ijepa.checkpoints import (
    ENCODER_FORMAT,
    config_differences,
    load_encoder,
    save_encoder,
    vit_state_in_our_names,
)
from simple_ijepa.cli.export import main as export
from simple_ijepa.cli.export import parse_args
from simple_ijepa.config import validate
from simple_ijepa.errors import CheckpointError, ConfigError
from simple_ijepa.export import from_official
from simple_ijepa.models import Predictor, VisionTransformer, ViTConfig, build_model
from simple_ijepa.models.layers import sincos_pos_embed_2d
from simple_ijepa.official import official_configs, predictor_state
from simple_ijepa.training.init_from import init_from
from simple_ijepa.training.trainer import make_config, train

# --- the official model (src/models/vision_transformer.py), inference path only -------------------


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=float)
    omega /= embed_dim / 2.
    omega = 1. / 10000**omega  # (D/2,)
    out = np.einsum('m,d->md', pos.reshape(-1), omega)  # (M, D/2), outer product
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, D)


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    grid_h = np.arange(grid_size, dtype=float)
    grid_w = np.arange(grid_size, dtype=float)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)
    return np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)


def fixed_positions(dim: int, grid: int) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(get_2d_sincos_pos_embed(dim, grid)).float().unsqueeze(0), requires_grad=False)


def apply_masks(x, masks):
    """x: [B, N, D], masks: list of [B, K] -> [len(masks) * B, K, D]."""
    return torch.cat([torch.gather(x, 1, m.unsqueeze(-1).repeat(1, 1, x.size(-1))) for m in masks], dim=0)


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)  # qkv_bias=True in every vit_* and vit_predictor
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, num_heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), MLP(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, embed_dim):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class OfficialViT(nn.Module):
    def __init__(self, img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.pos_embed = fixed_positions(embed_dim, img_size // patch_size)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def forward(self, x, masks=None):
        x = self.patch_embed(x) + self.pos_embed
        if masks is not None:
            x = apply_masks(x, masks)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class OfficialPredictor(nn.Module):
    def __init__(self, num_patches, embed_dim, predictor_embed_dim, depth, num_heads):
        super().__init__()
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
        self.predictor_pos_embed = fixed_positions(predictor_embed_dim, int(num_patches ** .5))
        self.predictor_blocks = nn.ModuleList(Block(predictor_embed_dim, num_heads, 4.0) for _ in range(depth))
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=1e-6)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim, bias=True)

    def forward(self, x, masks_x, masks):
        """x: [B, Kc, D] context tokens, masks_x: [B, Kc], masks: list of T [B, Kt] -> [T * B, Kt, D]."""
        B = len(x)
        x = self.predictor_embed(x) + apply_masks(self.predictor_pos_embed.repeat(B, 1, 1), [masks_x])
        n_ctxt = x.shape[1]
        pos_embs = apply_masks(self.predictor_pos_embed.repeat(B, 1, 1), masks)
        pred_tokens = self.mask_token.repeat(pos_embs.size(0), pos_embs.size(1), 1) + pos_embs
        x = torch.cat([x.repeat(len(masks), 1, 1), pred_tokens], dim=1)
        for blk in self.predictor_blocks:
            x = blk(x)
        return self.predictor_proj(self.predictor_norm(x)[:, n_ctxt:])


# --- a tiny official checkpoint ------------------------------------------------------------------
ENC = dict(img_size=16, patch_size=4, embed_dim=64, depth=2, num_heads=4)  # 64 wide: no official size
PRED = dict(num_patches=16, embed_dim=64, predictor_embed_dim=32, depth=2, num_heads=4)  # the encoder's heads
MODEL_KEYS = [  # the run that continues from it
    "model.image_size=16", "model.patch_size=4", "model.hidden_dim=64", "model.depth=2", "model.heads=4",
    "model.head_dim=16", "model.mlp_ratio=4.0", "model.pos_order=col_row", "model.predictor_dim=32",
    "model.predictor_depth=2", "model.predictor_heads=4", "model.predictor_head_dim=8", "model.num_targets=2",
    "mask.min_context=2",
]


def perturbed(module: nn.Module, seed: int) -> nn.Module:
    """Every learned tensor moved by noise (so that zero biases, unit norms and the zero mask token
    take other values: a mix-up between any two would show); the fixed positions stay."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return module.eval()


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(path, {"encoder", "target_encoder", "predictor": the official modules}) of a checkpoint
    written as the official train.py does (DDP "module." prefixes, optimiser state, epoch, ...)."""
    torch.manual_seed(0)
    models = {"encoder": perturbed(OfficialViT(**ENC), 1), "target_encoder": perturbed(OfficialViT(**ENC), 2),
              "predictor": perturbed(OfficialPredictor(**PRED), 3)}
    blob = {name: {f"module.{k}": v for k, v in m.state_dict().items()} for name, m in models.items()}
    blob.update(opt={"state": {}, "param_groups": [{"lr": 1e-3, "WD_exclude": True, "params": [0, 1]}]},
                scaler=None, epoch=1, loss=0.5, batch_size=8, world_size=1, lr=1e-3)
    path = str(tmp_path_factory.mktemp("official") / "IN1K-vit.tiny-1e.pth.tar")
    torch.save(blob, path)
    return path, models


def contexts_and_targets(B: int = 3, Kc: int = 6, T: int = 2, Kt: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Random context indices [B, Kc] and T target blocks [B, T, Kt] on the 4x4 grid."""
    g = torch.Generator().manual_seed(5)
    perms = torch.stack([torch.randperm(16, generator=g) for _ in range(B)])
    return perms[:, :Kc], perms[:, Kc:Kc + T * Kt].reshape(B, T, Kt)


# --- tests ---------------------------------------------------------------------------------------
def test_official_positions_put_the_column_first():
    for grid, dim in ((4, 64), (14, 1280)):
        theirs = torch.from_numpy(get_2d_sincos_pos_embed(dim, grid)).float()
        assert torch.equal(sincos_pos_embed_2d(grid, dim, "col_row"), theirs)
        ours = sincos_pos_embed_2d(grid, dim)  # row first: the same halves, swapped
        assert torch.equal(ours, torch.cat([theirs[:, dim // 2:], theirs[:, :dim // 2]], dim=1))


def test_from_official_gives_the_official_tokens_and_predictions(official):
    path, models = official
    converted = from_official(path, heads=4)
    assert converted.encoder.config.pos_order == "col_row" and not converted.encoder.training
    keys = converted.model_keys
    assert (keys["heads"], keys["head_dim"], keys["predictor_heads"], keys["predictor_head_dim"]) == (4, 16, 4, 8)
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    ctx, tgt = contexts_and_targets()
    with torch.no_grad():  # the encoder is the official *target* encoder
        torch.testing.assert_close(converted.encoder(images), models["target_encoder"](images))
        ours = converted.predictor(converted.encoder(images, keep_idx=ctx), ctx, tgt)  # [B, T, Kt, D]
        theirs = models["predictor"](models["target_encoder"](images, masks=[ctx]), ctx, list(tgt.unbind(1)))
    torch.testing.assert_close(ours.transpose(0, 1).reshape(theirs.shape), theirs)  # theirs: target-major


@pytest.mark.parametrize("patch,size,embed_dim,depth,mlp_ratio,pred_depth", [
    (14, 224, 1280, 32, 4.0, 12),  # ViT-H/14, 224 px (in1k_vith14_ep300.yaml, in22k_vith14_ep66.yaml)
    (16, 448, 1280, 32, 4.0, 12),  # ViT-H/16, 448 px (in1k_vith16-448_ep300.yaml)
    (16, 224, 1408, 40, 48 / 11, 16),  # ViT-g/16 (in22k_vitg16_ep44.yaml; vit_giant: mlp_ratio=48/11)
])
def test_every_official_size_maps_onto_ours(patch, size, embed_dim, depth, mlp_ratio, pred_depth):
    """Shapes only (meta tensors): the configurations from the weights, and every weight of ours
    with the official one's shape."""
    with torch.device("meta"):
        encoder = OfficialViT(size, patch, embed_dim, depth, 16, mlp_ratio).state_dict()
        predictor = OfficialPredictor((size // patch) ** 2, embed_dim, 384, pred_depth, 16).state_dict()
        enc_cfg, pred_cfg = official_configs(encoder, predictor, "file")
        ours = VisionTransformer(enc_cfg).state_dict(), Predictor.from_config(enc_cfg, pred_cfg).state_dict()
    assert (enc_cfg.image_size, enc_cfg.heads, enc_cfg.head_dim, enc_cfg.depth) == (size, 16, embed_dim // 16, depth)
    assert (pred_cfg.dim, pred_cfg.heads, pred_cfg.head_dim, pred_cfg.depth, pred_cfg.mlp_ratio) == (
        384, 16, 24, pred_depth, 4.0)
    for mapped, own in ((vit_state_in_our_names(encoder), ours[0]), (predictor_state(predictor), ours[1])):
        assert {k: v.shape for k, v in mapped.items()} == {k: v.shape for k, v in own.items()}


def test_export_from_official_writes_our_encoder_file(official, tmp_path, capsys):
    path, models = official
    out = str(tmp_path / "official.pth")
    assert export(["--from_official", path, "--heads", "4", "--out", out]) == {}
    assert "model.pos_order=col_row" in capsys.readouterr().out
    images = torch.randn(2, 3, 16, 16)
    for file in (out, out.replace(".pth", ".safetensors")):
        with torch.no_grad():
            torch.testing.assert_close(load_encoder(file)(images), models["target_encoder"](images))
    with pytest.raises(CheckpointError, match="not an official I-JEPA checkpoint"):
        from_official(out)
    with pytest.raises(CheckpointError, match="pass heads="):
        from_official(path)  # width 64 is none of the official sizes


@pytest.mark.parametrize("argv", [["--timm", "x.safetensors"], ["--ckpt_path", "a", "--from_official", "b",
                                  "--out", "x.pth"], ["--from_official", "b"], ["--from_official", "b", "--out", "x"],
                                  ["--ckpt_path", "a", "--heads", "4", "--out", "x.pth"]])
def test_export_arguments_are_checked(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)


def run_config(tmp_path, *extra: str):
    return make_config(MODEL_KEYS + [
        "data.dataset_name=digits", "dataloader.batch_size=16", "dataloader.num_workers=0", "eval.enabled=false",
        "optim.max_steps=1", "optim.learning_rate=1e-9", "optim.min_lr=0", "logging.log_every_n_steps=1",
        f"logging.save_model_dir={tmp_path}", *extra])


def test_init_from_official_starts_the_run_from_its_weights(official, tmp_path):
    """Student, EMA teacher and predictor start from the file's encoder, target_encoder and
    predictor: after one step at a learning rate of 1e-9 (the teacher held by momentum 1) the
    checkpoint still holds them."""
    path, _ = official
    out = train(run_config(tmp_path, f"logging.init_from={path}", "ema.gamma=1.0", "ema.update_gamma_after_step=0"))
    state = torch.load(out["train_checkpoint"], weights_only=True)["model"]
    blob = torch.load(path, weights_only=True)
    for part in ("encoder", "target_encoder", "predictor"):
        mapping = predictor_state if part == "predictor" else vit_state_in_our_names
        expected = mapping({k.removeprefix("module."): v for k, v in blob[part].items()})
        torch.testing.assert_close({k[len(part) + 1:]: v for k, v in state.items() if k.startswith(f"{part}.")},
                                   expected)


def test_init_from_refuses_another_shape_naming_the_keys(official, tmp_path):
    path, _ = official
    cfg = run_config(tmp_path, f"logging.init_from={path}", "model.hidden_dim=32", "model.predictor_head_dim=null")
    with pytest.raises(ConfigError, match=r"model.hidden_dim: file 64, this run 32; model.predictor_head_dim: file 8, "
                                          r"this run 16"):
        train(cfg)
    assert not os.path.exists(tmp_path / "training_model_ddp.pth")


def test_init_from_our_encoder_file(official, tmp_path):
    """An encoder file starts the student and the teacher; the predictor keeps its random init."""
    path, _ = official
    encoder_file = str(tmp_path / "enc.pth")
    save_encoder(from_official(path, heads=4).encoder, encoder_file)
    cfg = run_config(tmp_path, f"logging.init_from={encoder_file}")
    model = build_model(cfg)
    predictor = {k: v.clone() for k, v in model.predictor.state_dict().items()}
    init_from(model, cfg)
    expected = load_encoder(encoder_file).state_dict()
    torch.testing.assert_close(model.encoder.state_dict(), expected)
    torch.testing.assert_close(model.target_encoder.state_dict(), expected)
    torch.testing.assert_close(model.predictor.state_dict(), predictor)


def test_position_order_in_files_and_config(tmp_path):
    """Files from before the field load (row_col); a bad value is refused in a file and in the config;
    a resume from a configuration without the new keys sees no difference."""
    path = str(tmp_path / "old.pth")
    save_encoder(VisionTransformer(ViTConfig(16, 4, 32, 1, 2, 16, 2.0)), path)
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == ENCODER_FORMAT and blob["vit_config"].pop("pos_order") == "row_col"
    torch.save(blob, path)
    assert load_encoder(path).config.pos_order == "row_col"
    torch.save({**blob, "vit_config": {**blob["vit_config"], "pos_order": "diagonal"}}, path)
    with pytest.raises(CheckpointError, match="vit_config.pos_order"):
        load_encoder(path)
    for override, key in (("model.pos_order=diagonal", "model.pos_order"), ("logging.init_from=nope.pth",
                                                                            "logging.init_from")):
        with pytest.raises(ConfigError, match=key):
            validate(make_config([override]))
    run = OmegaConf.to_container(make_config(), resolve=True)
    saved = {**run, "model": {k: v for k, v in run["model"].items() if k not in ("pos_order", "predictor_head_dim")}}
    assert config_differences(saved, run) == ([], [])

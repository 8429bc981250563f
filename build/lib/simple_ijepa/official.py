"""The official I-JEPA checkpoints (facebookresearch/ijepa) as this project's encoder and predictor.

    from simple_ijepa.export import from_official
    official = from_official("IN1K-vit.h.14-300e.pth.tar")
    tokens = official.encoder(images)      # [B, 256, 1280] on 224 px: the official target encoder's tokens
    official.model_keys                    # the model.* values of a run that continues from it

The file (official src/train.py, `save_checkpoint`): a torch pickle {"encoder", "predictor",
"target_encoder": state dicts, every key prefixed "module." (the models were wrapped in
DistributedDataParallel), "opt", "scaler", "epoch", "loss", "batch_size", "world_size", "lr"}. By the
official code these are tensors, plain containers and Python numbers only, so it is read with
`torch.load(weights_only=True)` (checkpoints.read_torch_file: no code runs, no safe global needed).

Names, official src/models/vision_transformer.py -> ours (D = width, p = patch, N = (image / p)^2
tokens, d = predictor width, f = MLP width):
  encoder    patch_embed.proj.weight [D, 3, p, p], .bias [D]   -> patch_embed.weight, .bias
             pos_embed [1, N, D] (fixed sin-cos)               -> dropped: our buffer, from the config
             blocks.i.{norm1, attn.qkv [3D, D], attn.proj, norm2, mlp.fc1 [f, D], mlp.fc2}, norm -> the same
  predictor  predictor_embed [d, D] -> proj_in     mask_token [1, 1, d] -> mask_token
             predictor_pos_embed [1, N, d] -> dropped    predictor_blocks.i.* -> blocks.i.*
             predictor_norm -> norm    predictor_proj [D, d] -> proj_out

What differs, and how it carries over:
  positions  `get_2d_sincos_pos_embed` encodes the column in the first half of the channels
             (`grid = np.meshgrid(grid_w, grid_h)  # here w goes first`, then `emb_h` from grid[0]):
             ViTConfig.pos_order = "col_row" (model.pos_order). The file's tables are checked against it.
  heads      not in the weights: the official `vit_*` constructors' table by width (OFFICIAL_HEADS),
             or heads=. The predictor has the encoder's heads at its own width (src/helper.py
             `init_model`: `num_heads=encoder.num_heads`), 16 x 24 inside 384 for ViT-H and ViT-g,
             while the encoder has 16 x 80 (ViT-H): model.predictor_head_dim.
  MLP ratio  fc1's rows / width: `vit_giant` has `mlp_ratio=48/11`, `vit_predictor` 4:
             model.predictor_mlp_ratio.
Already the same: qkv and every linear with a bias (`qkv_bias=True`), LayerNorm eps 1e-6
(`partial(nn.LayerNorm, eps=1e-6)`), exact GELU (`nn.GELU`), scale head_dim^-0.5, qkv rows split as
[3, heads, head_dim], pre-norm blocks, positions added once after the patch embedding
(`interpolate_pos_encoding` returns them unchanged at the native size, the only size loaded here),
row-major tokens (`flatten(2).transpose(1, 2)`), the final norm on the output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .checkpoints import check_tensors, load_weights, read_torch_file, vit_state_in_our_names
from .errors import CheckpointError
from .models.config import PredictorConfig, arch_values
from .models.layers import is_sincos_table
from .models.predictor import Predictor
from .models.vit import VisionTransformer, ViTConfig

OFFICIAL_KEYS = ("encoder", "target_encoder", "predictor")
# width -> heads of the official constructors vit_tiny / small / base / large / huge / giant.
OFFICIAL_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
# Official predictor name prefixes -> ours (predictor_pos_embed is dropped, mask_token keeps its name).
PREDICTOR_NAMES = {"predictor_embed.": "proj_in.", "predictor_blocks.": "blocks.", "predictor_norm.": "norm.",
                   "predictor_proj.": "proj_out."}


class OfficialModel(NamedTuple):
    encoder: VisionTransformer  # built from `target_encoder` (what the official evaluations use), eval mode
    predictor: Predictor  # eval mode
    model_keys: dict  # the `model.*` values (no prefix) of a run that loads the file (logging.init_from)


@dataclass
class OfficialWeights:
    """An official checkpoint in our names: the configurations its shapes give, three state dicts."""
    encoder_config: ViTConfig
    predictor_config: PredictorConfig
    encoder: dict[str, torch.Tensor]  # the student
    target_encoder: dict[str, torch.Tensor]  # the EMA teacher
    predictor: dict[str, torch.Tensor]


def is_official(blob) -> bool:
    """A dict with the official three state dicts and not our "format" field."""
    return isinstance(blob, dict) and "format" not in blob and all(isinstance(blob.get(k), dict)
                                                                   for k in OFFICIAL_KEYS)


def read_official(path: str, option: str = "--from_official") -> dict:
    """The official checkpoint at `path`, its tensors memory-mapped (the optimiser state, most of the
    file, is never read); CheckpointError naming `option` for anything else."""
    blob = read_torch_file(path, option, mmap=True)
    if not is_official(blob):
        raise CheckpointError(f"{option}={path!r} is not an official I-JEPA checkpoint (a dict of the state dicts "
                              f"{OFFICIAL_KEYS}); our own encoder and training files go to --ckpt_path.")
    return blob


def unwrap(state: dict) -> dict:
    """Without DistributedDataParallel's "module." prefix, where the keys have it."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def _depth(state: dict, prefix: str) -> int:
    depth = 0
    while f"{prefix}{depth}.norm1.weight" in state:
        depth += 1
    return depth


def _heads(width: int, heads: int | None, path: str) -> int:
    """`heads` if given, else the official constructor's of this width."""
    heads = OFFICIAL_HEADS.get(width) if heads is None else heads
    if heads is None:
        raise CheckpointError(f"Checkpoint {path!r}: width {width} is none of the official sizes "
                              f"{sorted(OFFICIAL_HEADS)}, and the heads are not in the weights: pass heads= (--heads).")
    return heads


def official_configs(encoder: dict, predictor: dict, path: str, heads: int | None = None
                     ) -> tuple[ViTConfig, PredictorConfig]:
    """Our configurations of an official encoder and predictor (unwrapped state dicts), from their
    shapes: patch_embed.proj.weight [D, C, p, p], pos_embed [1, N, D], mlp.fc1.weight [f, D],
    predictor_embed.weight [d, D], the number of blocks; heads from OFFICIAL_HEADS (or `heads`),
    the same in the predictor."""
    try:
        dim, in_chans, patch, _ = encoder["patch_embed.proj.weight"].shape
        tokens = encoder["pos_embed"].shape[1]
        hidden = encoder["blocks.0.mlp.fc1.weight"].shape[0]
        pred_dim = predictor["predictor_embed.weight"].shape[0]
        pred_hidden = predictor["predictor_blocks.0.mlp.fc1.weight"].shape[0]
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"Checkpoint {path!r}: not the official I-JEPA layout (no or a bad {e}).") from None
    grid, heads = math.isqrt(tokens), _heads(dim, heads, path)
    for width, name in ((dim, "encoder"), (pred_dim, "predictor")):
        if width % heads:
            raise CheckpointError(f"Checkpoint {path!r}: the {name} width {width} does not split into {heads} heads.")
    if grid * grid != tokens:
        raise CheckpointError(f"Checkpoint {path!r}: pos_embed has {tokens} positions, not a square grid.")
    encoder_config = ViTConfig(image_size=grid * patch, patch_size=patch, dim=dim, depth=_depth(encoder, "blocks."),
                               heads=heads, head_dim=dim // heads, mlp_ratio=hidden / dim, in_chans=in_chans,
                               pos_order="col_row")
    predictor_config = PredictorConfig(dim=pred_dim, depth=_depth(predictor, "predictor_blocks."), heads=heads,
                                       head_dim=pred_dim // heads, mlp_ratio=pred_hidden / pred_dim)
    return encoder_config, predictor_config


def predictor_state(official: dict) -> dict:
    """An official predictor state dict (unwrapped) in our names (PREDICTOR_NAMES), without
    predictor_pos_embed."""
    out = {}
    for key, value in official.items():
        if key != "predictor_pos_embed":
            prefix = next((p for p in PREDICTOR_NAMES if key.startswith(p)), None)
            out[key if prefix is None else PREDICTOR_NAMES[prefix] + key[len(prefix):]] = value
    return out


def _check_positions(path: str, name: str, state: dict, key: str, grid: int, dim: int) -> None:
    """state[key], the file's fixed positions [1, N, dim], must be the official sin-cos table: the
    converted model rebuilds that one (sincos_pos_embed_2d, "col_row") instead of reading it."""
    if not is_sincos_table(state.get(key, torch.empty(0)), grid, dim, "col_row"):
        raise CheckpointError(f"Checkpoint {path!r}: `{name}.{key}` is not the official 2-D sin-cos table of a "
                              f"{grid}x{grid} grid, which the converted model would use instead.")


def official_weights(blob: dict, path: str, heads: int | None = None) -> OfficialWeights:
    """An official checkpoint (read_official, or any dict with is_official) in our names and configurations."""
    for field in OFFICIAL_KEYS:
        check_tensors(blob[field], path, field)
    encoder, target, predictor = (unwrap(blob[k]) for k in OFFICIAL_KEYS)
    enc_cfg, pred_cfg = official_configs(target, predictor, path, heads)
    for name, state in (("encoder", encoder), ("target_encoder", target)):
        _check_positions(path, name, state, "pos_embed", enc_cfg.grid, enc_cfg.dim)
    _check_positions(path, "predictor", predictor, "predictor_pos_embed", enc_cfg.grid, pred_cfg.dim)
    return OfficialWeights(enc_cfg, pred_cfg, vit_state_in_our_names(encoder), vit_state_in_our_names(target),
                           predictor_state(predictor))


def from_official(path: str, heads: int | None = None) -> OfficialModel:
    """The official checkpoint at `path` as our encoder (from its `target_encoder`) and predictor, on
    the CPU in eval mode, with the `model.*` values that describe them. Every official size loads
    (ViT-H/14 224, ViT-H/16 448, ViT-g/16 224); `heads` overrides OFFICIAL_HEADS (needed only for
    a width outside it).
    The encoder gives the official tokens [B, N, D] on images [B, 3, S, S] of the native size S."""
    weights = official_weights(read_official(path), path, heads)
    encoder = VisionTransformer(weights.encoder_config)
    load_weights(encoder, weights.target_encoder, path, "target_encoder")
    predictor = Predictor.from_config(weights.encoder_config, weights.predictor_config)
    load_weights(predictor, weights.predictor, path, "predictor")
    keys = arch_values(weights.encoder_config, weights.predictor_config)
    return OfficialModel(encoder.eval(), predictor.eval(), keys)

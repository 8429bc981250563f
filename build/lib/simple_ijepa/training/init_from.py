"""`logging.init_from=PATH`: a fresh run starts from pretrained weights instead of a random init.

PATH is an official I-JEPA checkpoint (simple_ijepa/official.py; told apart by its keys), one of our
training checkpoints, or one of our encoder files (.pth or .safetensors). What each part starts from:

  file                      student encoder   EMA teacher      predictor
  official checkpoint       encoder           target_encoder   predictor (variant=baseline)
  our training checkpoint   encoder.*         target_encoder.* predictor.* (same variant)
  our encoder file          the encoder       the encoder      random init

A predictor of another variant, and a gated run's gate head and mask token, start from the random
init. The run's `model.*` must describe the file's model: a differing ARCH_KEYS value is a
ConfigError naming the keys and both values, before any step. A resumed run ignores init_from.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from types import SimpleNamespace
from typing import NamedTuple

from ..checkpoints import ENCODER_FORMAT, check_format, load_weights, read_checkpoint, read_torch_file
from ..config import IJEPAConfig
from ..errors import ConfigError
from ..models import ModelConfig, PredictorConfig, ViTConfig, arch_values
from ..official import OFFICIAL_HEADS, is_official, official_weights

log = logging.getLogger("simple_ijepa")
OPTION = "logging.init_from"


class Pretrained(NamedTuple):
    """The weights of an init_from file in our names, and the configurations they have."""
    encoder_config: ViTConfig
    predictor_config: PredictorConfig | None  # None: no predictor in the file
    variant: str | None  # whose predictor it is ("baseline" for an official file)
    encoder: dict
    target_encoder: dict
    predictor: dict | None


def read_pretrained(path: str, model_cfg) -> Pretrained:
    """The file at `path` as Pretrained (tensors memory-mapped, on the CPU), whichever of the three
    kinds. An official file's heads (not in its weights) are the official table's for an official
    width, else the run's `model.heads`."""
    if path.endswith(".safetensors"):
        blob = read_checkpoint(path, OPTION)
    else:
        blob = read_torch_file(path, OPTION, mmap=True)
        if is_official(blob):
            w = official_weights(blob, path, OFFICIAL_HEADS.get(model_cfg.hidden_dim, model_cfg.heads))
            return Pretrained(w.encoder_config, w.predictor_config, "baseline", w.encoder, w.target_encoder,
                              w.predictor)
        blob = check_format(blob, path, OPTION)
    encoder_config = ViTConfig(**blob["vit_config"])
    if blob["format"] == ENCODER_FORMAT:
        return Pretrained(encoder_config, None, None, blob["state_dict"], blob["state_dict"], None)
    # A training checkpoint: its `model` section over today's defaults (it may predate some keys).
    defaults = asdict(IJEPAConfig())
    model = {**defaults, **{k: v for k, v in blob["config"]["model"].items() if k in defaults}}
    saved = ModelConfig.from_flat(SimpleNamespace(**model))
    parts = {p: {k[len(p) + 1:]: v for k, v in blob["model"].items() if k.startswith(f"{p}.")}
             for p in ("encoder", "target_encoder", "predictor")}
    return Pretrained(encoder_config, saved.predictor, blob["variant"], parts["encoder"], parts["target_encoder"],
                      parts["predictor"])


def check_fits(file_keys: dict, model_cfg, path: str) -> None:
    """ConfigError naming every `model.*` key whose value in the run differs from the file's."""
    c = ModelConfig.from_flat(model_cfg)
    run = arch_values(c.encoder, c.predictor)
    differ = [k for k, v in file_keys.items() if run[k] != v]
    if differ:
        raise ConfigError(
            f"Invalid config `{', '.join(f'model.{k}' for k in differ)}`: {OPTION}={path!r} holds another model: "
            + "; ".join(f"model.{k}: file {file_keys[k]!r}, this run {run[k]!r}" for k in differ)
            + ". Set them to the file's values (`ijepa-export --from_official PATH --out OUT.pth` prints all of an "
            "official checkpoint's).")


def init_from(model, cfg) -> None:
    """Load `cfg.logging.init_from` into a fresh run's model (see the table above): the student, the EMA
    teacher and, when the file has one of the run's variant, the predictor."""
    path = cfg.logging.init_from
    w = read_pretrained(path, cfg.model)
    with_predictor = w.predictor is not None and w.variant == cfg.variant
    check_fits(arch_values(w.encoder_config, w.predictor_config if with_predictor else None), cfg.model, path)
    load_weights(model.encoder, w.encoder, path, "encoder")
    load_weights(model.target_encoder, w.target_encoder, path, "target_encoder")
    if with_predictor:
        load_weights(model.predictor, w.predictor, path, "predictor")
    predictor = "the predictor" if with_predictor else "not the predictor (random init)"
    log.info(f"{OPTION}: the student, the EMA teacher and {predictor} start from {path}.")
    after = cfg.ema.update_gamma_after_step
    if after > 0 and w.target_encoder is not w.encoder:
        log.info(f"{OPTION}: the file's teacher becomes a copy of the student after step {after} "
                 "(ema.update_gamma_after_step); set ema.update_gamma_after_step=0 to keep it.")

"""Checkpoint files: their two formats, atomic writes, and the one reader every loader goes through.

  TRAIN_FORMAT    training_model[_gated]_ddp.pth: {"format", "variant", "config", "vit_config",
                  "model", "optimizer", "step", ...} (written by training/trainer.py)
  ENCODER_FORMAT  encoder[_gated]_ddp.pth: {"format", "vit_config", "state_dict", ...}, and the same
                  weights as .safetensors with the config in its metadata (written by export.py)

Loading runs no code: every .pth is read with `torch.load(weights_only=True)`, which builds tensors
and plain containers only (our files hold nothing else) and refuses any other Python object before
building it. Then every field a loader will use is checked (`check_fields`), and weights go into a
module through `load_weights`, so that a foreign, malformed or crafted file ends in a
CheckpointError naming the file and the field, never in a traceback or in someone else's code.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re

import torch
import torch.nn as nn

from ..errors import CheckpointError
from ..models.vit import ViTConfig

TRAIN_FORMAT = "simple-ijepa/train-v1"
ENCODER_FORMAT = "simple-ijepa/encoder-v1"


def atomic_save(obj, path: str) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half of one. A failed
    write (no space, a file size limit) raises OSError and leaves no temporary file.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:  # torch's zip writer reports a short write (disk full, EFBIG) this way
                raise OSError(f"writing {tmp} failed ({e})") from e
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_checkpoint(path: str, option: str = "--ckpt_path", map_location="cpu", mmap: bool = False) -> dict:
    """The dict of a simple-ijepa file, with its "format": a training checkpoint, an encoder .pth, or
    an encoder .safetensors (read as {"format", "vit_config", "state_dict"}).

    Raises CheckpointError naming `option` (the setting that gave the path) when the file is
    missing, unreadable, or not one of ours. mmap=True leaves the tensors on disk (a cheap peek).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{option}={path!r}: no such file.")
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(path, framework="pt") as f:
                vit_config = json.loads(f.metadata()["vit_config"])
            blob = {"format": ENCODER_FORMAT, "vit_config": vit_config,
                    "state_dict": load_file(path, device=str(map_location))}
        except Exception as e:  # noqa: BLE001 - any parse failure means the same thing here
            raise CheckpointError(f"{option}={path!r} is corrupt or not a simple-ijepa .safetensors encoder "
                                  f"({type(e).__name__}: {e}).") from None
        check_fields(blob, path)
        return blob
    if os.path.isdir(path):
        raise CheckpointError(f"{option}={path!r} is a folder; pass a checkpoint file inside it.")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            found = re.search(r"GLOBAL ([\w.]+)|global[s]? ([\w.]+)", str(e))
            what = next(g for g in found.groups() if g) if found else "a Python object"
            raise CheckpointError(
                f"{option}={path!r} was refused: it holds {what}, which is neither a tensor nor a plain container, "
                "and building it could run code. Files written by simple-ijepa never need one; load weights only "
                "from files you trust, and prefer the .safetensors encoder.") from None
        raise CheckpointError(f"{option}={path!r} is corrupt or not a torch file (UnpicklingError: {e}). "
                              "Use an earlier checkpoint from the checkpoints/ folder beside it.") from None
    except Exception as e:  # noqa: BLE001 - any other read failure means the same thing here
        raise CheckpointError(f"{option}={path!r} is corrupt or not a torch file ({type(e).__name__}: {e}). "
                              "Use an earlier checkpoint from the checkpoints/ folder beside it.") from None
    if not isinstance(blob, dict) or blob.get("format") not in (TRAIN_FORMAT, ENCODER_FORMAT):
        raise CheckpointError(f"{option}={path!r} is neither a simple-ijepa training checkpoint nor an encoder file.")
    check_fields(blob, path)
    return blob


def _field_error(path: str, field: str, why: str) -> CheckpointError:
    return CheckpointError(f"Checkpoint {path!r}: field `{field}` {why}. The file is damaged or was not written "
                           "by simple-ijepa; use another checkpoint.")


def _check_vit_config(value, path: str) -> None:
    if not isinstance(value, dict):
        raise _field_error(path, "vit_config", f"must be a dict of the encoder's shape, got {type(value).__name__}")
    fields = {f.name: f for f in dataclasses.fields(ViTConfig)}
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING}
    missing, unknown = sorted(required - set(value)), sorted(set(value) - set(fields))
    if missing or unknown:
        raise _field_error(path, "vit_config", f"lacks {missing} / has unknown keys {unknown}" if unknown
                           else f"lacks {missing}")
    for name, v in value.items():
        number = (int, float) if name == "mlp_ratio" else (int,)
        if isinstance(v, bool) or not isinstance(v, number) or not v > 0:
            raise _field_error(path, f"vit_config.{name}", f"must be a positive number, got {v!r}")
    if value["image_size"] % value["patch_size"]:
        raise _field_error(path, "vit_config.image_size", f"{value['image_size']} is not a multiple of "
                           f"patch_size {value['patch_size']}")


def _check_tensors(value, path: str, field: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in value.items()):
        raise _field_error(path, field, "must map parameter names to tensors")


def check_fields(blob: dict, path: str) -> None:
    """Every field a loader reads, with its type: CheckpointError naming the file and the field."""
    _check_vit_config(blob.get("vit_config"), path)
    if blob["format"] == ENCODER_FORMAT:
        _check_tensors(blob.get("state_dict"), path, "state_dict")
        return
    from ..models import VARIANTS  # (models import nothing from utils; lazily: keeps this module light)

    if blob.get("variant") not in VARIANTS:
        raise _field_error(path, "variant", f"must be one of {tuple(VARIANTS)}, got {blob.get('variant')!r}")
    if not isinstance(blob.get("config"), dict) or not isinstance(blob["config"].get("model"), dict):
        raise _field_error(path, "config", "must be the run's configuration (a dict with a `model` section)")
    _check_tensors(blob.get("model"), path, "model")
    for field in ("optimizer", "scaler"):
        if not isinstance(blob.get(field), dict):
            raise _field_error(path, field, f"must be a state dict, got {type(blob.get(field)).__name__}")
    step = blob.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _field_error(path, "step", f"must be a non-negative integer, got {step!r}")


def load_weights(module: nn.Module, state_dict: dict, path: str, field: str) -> None:
    """module.load_state_dict(state_dict), except that missing, unexpected or mis-shaped entries are
    one CheckpointError naming the file, the field and the first few differences."""
    own = module.state_dict()
    problems = [f"missing {k}" for k in own if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in own]
    problems += [f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}" for k, v in state_dict.items()
                 if k in own and v.shape != own[k].shape]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"Checkpoint {path!r}: field `{field}` does not fit the model it describes: "
                              + "; ".join(problems[:3]) + more + ". The file is damaged or from another version.")
    module.load_state_dict(state_dict)

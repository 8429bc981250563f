"""Checkpoint files: their two formats, atomic writes, and the one reader every loader goes through.

  TRAIN_FORMAT    training_model[_gated]_ddp.pth: {"format", "variant", "config", "vit_config",
                  "model", "optimizer", "step", ...} (written by training/trainer.py)
  ENCODER_FORMAT  encoder[_gated]_ddp.pth: {"format", "vit_config", "state_dict", ...}, and the same
                  weights as .safetensors with the config in its metadata (written by export.py)
"""
from __future__ import annotations

import json
import os

import torch

from ..errors import CheckpointError

TRAIN_FORMAT = "simple-ijepa/train-v1"
ENCODER_FORMAT = "simple-ijepa/encoder-v1"


def atomic_save(obj, path: str) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
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
            return {"format": ENCODER_FORMAT, "vit_config": vit_config,
                    "state_dict": load_file(path, device=str(map_location))}
        except Exception as e:  # noqa: BLE001 - any parse failure means the same thing here
            raise CheckpointError(f"{option}={path!r} is corrupt or not a simple-ijepa .safetensors encoder "
                                  f"({type(e).__name__}: {e}).") from None
    try:
        blob = torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise CheckpointError(f"{option}={path!r} is corrupt or not a torch file ({type(e).__name__}: {e}). "
                              "Use an earlier checkpoint from the checkpoints/ folder beside it.") from None
    if not isinstance(blob, dict) or blob.get("format") not in (TRAIN_FORMAT, ENCODER_FORMAT):
        raise CheckpointError(f"{option}={path!r} is neither a simple-ijepa training checkpoint nor an encoder file.")
    return blob

"""Encoder export: `encoder_*.pth` (+ `.safetensors`) and `load_encoder(path)` for downstream use.

    from simple_ijepa import load_encoder
    encoder = load_encoder("models/encoder_ddp.pth")   # a ready VisionTransformer in eval mode
    tokens = encoder(images)                            # [B, N, D]; mean-pool for a global feature
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import torch

from .models.vit import VisionTransformer, ViTConfig
from .utils.checkpoint_io import ENCODER_FORMAT, atomic_save, read_checkpoint


def save_encoder(encoder: VisionTransformer, path: str, extra: dict | None = None) -> None:
    """Write the encoder as a self-describing .pth and a .safetensors beside it (config in metadata)."""
    from safetensors.torch import save_file

    blob = {"format": ENCODER_FORMAT, "vit_config": asdict(encoder.config), **(extra or {}),
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}
    atomic_save(blob, path)
    st_path = os.path.splitext(path)[0] + ".safetensors"
    tmp = f"{st_path}.tmp-{os.getpid()}"
    save_file({k: v.contiguous() for k, v in blob["state_dict"].items()}, tmp,
              metadata={"format": ENCODER_FORMAT, "vit_config": json.dumps(blob["vit_config"])})
    os.replace(tmp, st_path)


def load_encoder(path: str, map_location="cpu", teacher: bool = True) -> VisionTransformer:
    """A `VisionTransformer` in eval mode from an encoder file (.pth or .safetensors) or a training
    checkpoint (its EMA teacher; `teacher=False` takes the student)."""
    blob = read_checkpoint(path, "encoder file", map_location)
    if blob["format"] == ENCODER_FORMAT:
        state_dict = blob["state_dict"]
    else:
        prefix = "target_encoder." if teacher else "encoder."
        state_dict = {k[len(prefix):]: v for k, v in blob["model"].items() if k.startswith(prefix)}
    encoder = VisionTransformer(ViTConfig(**blob["vit_config"]))
    encoder.load_state_dict(state_dict)
    return encoder.eval()

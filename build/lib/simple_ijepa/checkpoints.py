"""Every file of weights the project writes or reads: its formats, atomic writes, and ONE reader.

  TRAIN_FORMAT    training_model[_gated]_ddp.pth in logging.save_model_dir: {"format", "variant",
                  "config", "vit_config", "model", "optimizer", "scaler", "step", ...}; the last
                  `logging.keep_last` also as checkpoints/{variant}_step_XXXXXXXX.pth (hard links)
  ENCODER_FORMAT  encoder[_gated]_ddp.pth: {"format", "vit_config", "state_dict", ...}, and the same
                  weights as .safetensors with the config in its metadata

Loading runs no code: every .pth is read with `torch.load(weights_only=True)`, which builds tensors
and plain containers only (our files hold nothing else) and refuses any other Python object before
building it. Then every field a loader will use is checked (`check_fields`), and weights go into a
module through `load_weights`, so that a foreign, malformed or crafted file ends in a
CheckpointError naming the file and the field, never in a traceback or in someone else's code.
Resuming checks the saved configuration against the run's (`load_training_checkpoint`).
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import pickle
import re
from dataclasses import asdict

import torch
import torch.nn as nn

from .errors import CheckpointError
from .models import ARCH_KEYS, VARIANTS, model_class
from .models.layers import POS_ORDERS, is_sincos_table
from .models.vit import VisionTransformer, ViTConfig

TRAIN_FORMAT = "simple-ijepa/train-v1"
ENCODER_FORMAT = "simple-ijepa/encoder-v1"
TIMM_FORMAT = "simple-ijepa/timm-v1"  # `ijepa-export --timm` (simple_ijepa/export.py): timm names + kwargs


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
    _check_path(path, option)
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata()
            state_dict = load_file(path, device=str(map_location))
            if metadata.get("format") == TIMM_FORMAT:
                blob = from_timm(json.loads(metadata["timm_kwargs"]), state_dict, path)
            else:
                blob = {"format": ENCODER_FORMAT, "vit_config": json.loads(metadata["vit_config"]),
                        "state_dict": state_dict}
                if "data" in metadata:  # the training data (training_data)
                    blob["data"] = json.loads(metadata["data"])
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - any parse failure means the same thing here
            raise CheckpointError(f"{option}={path!r} is corrupt or not a simple-ijepa .safetensors encoder "
                                  f"({type(e).__name__}: {e}).") from None
        check_fields(blob, path)
        return blob
    return check_format(read_torch_file(path, option, map_location, mmap), path, option)


def from_timm(kwargs: dict, state: dict[str, torch.Tensor], path: str) -> dict:
    """A file of `ijepa-export --timm` (timm's names, its kwargs) as our encoder blob {"format",
    "vit_config", "state_dict"}: the inverse of export.timm_kwargs / timm_state_dict. timm's learned
    `pos_embed` [1, N, D] must still be one of our fixed sin-cos tables (its order is kept); weights
    trained further in timm with moving positions cannot come back."""
    dim, heads = int(kwargs["embed_dim"]), int(kwargs["num_heads"])
    config = {"image_size": int(kwargs["img_size"]), "patch_size": int(kwargs["patch_size"]),
              "dim": dim, "depth": int(kwargs["depth"]), "heads": heads,
              "head_dim": int(kwargs.get("attn_head_dim") or dim // heads), "mlp_ratio": float(kwargs["mlp_ratio"]),
              "in_chans": int(kwargs.get("in_chans", 3))}
    grid = config["image_size"] // config["patch_size"]
    pos = state.get("pos_embed", torch.empty(0))
    orders = [o for o in POS_ORDERS if is_sincos_table(pos, grid, dim, o)]
    if not orders:
        raise CheckpointError(f"{path!r}: its timm `pos_embed` is not a fixed 2-D sin-cos table of a {grid}x{grid} "
                              "grid (trained further in timm?); this project's encoder cannot hold learned positions.")
    return {"format": ENCODER_FORMAT, "vit_config": {**config, "pos_order": orders[0]},
            "state_dict": vit_state_in_our_names(state)}


def vit_state_in_our_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm-named ViT state dict (timm's, and the official I-JEPA encoder's: the same names) in
    ours: patch_embed.proj.* -> patch_embed.*, the fixed `pos_embed` dropped (ours is a buffer
    computed from the config); every other name is already ours."""
    return {k.replace("patch_embed.proj.", "patch_embed.", 1): v for k, v in state.items() if k != "pos_embed"}


def check_format(blob, path: str, option: str) -> dict:
    """`blob` (read from `path`) if it is one of our files with every field it needs (check_fields),
    else CheckpointError naming `option`."""
    if not isinstance(blob, dict) or blob.get("format") not in (TRAIN_FORMAT, ENCODER_FORMAT):
        raise CheckpointError(f"{option}={path!r} is neither a simple-ijepa training checkpoint nor an encoder file.")
    check_fields(blob, path)
    return blob


def _check_path(path: str, option: str) -> None:
    if os.path.isdir(path):
        raise CheckpointError(f"{option}={path!r} is a directory; pass a checkpoint file inside it.")
    if not os.path.isfile(path):
        raise CheckpointError(f"{option}={path!r}: no such file.")


def read_torch_file(path: str, option: str, map_location="cpu", mmap: bool = False):
    """Whatever a torch file holds, read with `torch.load(weights_only=True)` (tensors and plain
    containers only, so no code runs): our files, and foreign ones such as the official I-JEPA
    checkpoints (simple_ijepa/official.py). CheckpointError naming `option` when it cannot be read."""
    _check_path(path, option)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
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
    if value.get("pos_order", POS_ORDERS[0]) not in POS_ORDERS:  # (absent: a file from before the field)
        raise _field_error(path, "vit_config.pos_order", f"must be one of {POS_ORDERS}, got {value['pos_order']!r}")
    for name, v in value.items():
        if name == "pos_order":
            continue
        number = (int, float) if name == "mlp_ratio" else (int,)
        if isinstance(v, bool) or not isinstance(v, number) or not v > 0:
            raise _field_error(path, f"vit_config.{name}", f"must be a positive number, got {v!r}")
    if value["image_size"] % value["patch_size"]:
        raise _field_error(path, "vit_config.image_size", f"{value['image_size']} is not a multiple of "
                           f"patch_size {value['patch_size']}")


def check_tensors(value, path: str, field: str) -> None:
    """`field` must be a state dict ({name: tensor}): else CheckpointError naming the file and the field."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in value.items()):
        raise _field_error(path, field, "must map parameter names to tensors")


def check_fields(blob: dict, path: str) -> None:
    """Every field a loader reads, with its type: CheckpointError naming the file and the field."""
    _check_vit_config(blob.get("vit_config"), path)
    if blob["format"] == ENCODER_FORMAT:
        check_tensors(blob.get("state_dict"), path, "state_dict")
        return
    if blob.get("variant") not in VARIANTS:
        raise _field_error(path, "variant", f"must be one of {tuple(VARIANTS)}, got {blob.get('variant')!r}")
    if not isinstance(blob.get("config"), dict) or not isinstance(blob["config"].get("model"), dict):
        raise _field_error(path, "config", "must be the run's configuration (a dict with a `model` section)")
    check_tensors(blob.get("model"), path, "model")
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


def save_safetensors(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> None:
    """Write `tensors` (CPU, made contiguous) with string `metadata` to `path` atomically."""
    from safetensors.torch import save_file

    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600; give it the mode every other file gets (0644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_encoder(encoder: VisionTransformer, path: str, extra: dict | None = None) -> None:
    """Write the encoder as a self-describing .pth and a .safetensors beside it (config in metadata)."""
    blob = {"format": ENCODER_FORMAT, "vit_config": asdict(encoder.config), **(extra or {}),
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}
    atomic_save(blob, path)
    save_safetensors(blob["state_dict"], os.path.splitext(path)[0] + ".safetensors",
                     {"format": ENCODER_FORMAT, "vit_config": json.dumps(blob["vit_config"]),
                      **({"data": json.dumps(blob["data"])} if "data" in blob else {})})


def training_data(path: str) -> dict | None:
    """{"dataset_name", "dataset_path"} of the images an encoder file or training checkpoint was trained
    on (the tools' defaults), or None: not recorded (older files, exports), or the file unreadable."""
    try:
        blob = read_checkpoint(path, mmap=True)
    except CheckpointError:
        return None
    data = blob.get("data") or (blob.get("config") or {}).get("data")
    if not isinstance(data, dict) or not isinstance(data.get("dataset_name"), str):
        return None
    return {"dataset_name": data["dataset_name"], "dataset_path": data.get("dataset_path")}


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
    load_weights(encoder, state_dict, path, "state_dict" if blob["format"] == ENCODER_FORMAT else "model")
    return encoder.eval()


# --- training checkpoints ------------------------------------------------------------------------
def checkpoint_names(variant: str) -> tuple[str, str]:
    """(training checkpoint, encoder checkpoint) file names of the original README for a variant."""
    suffix = model_class(variant).file_suffix
    return f"training_model{suffix}_ddp.pth", f"encoder{suffix}_ddp.pth"


def _link_or_save(src: str, dst: str, obj) -> None:
    tmp = f"{dst}.tmp-{os.getpid()}"
    try:
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        if os.path.exists(tmp):
            os.remove(tmp)
        atomic_save(obj, dst)


def save_training_checkpoint(state: dict, save_dir: str, variant: str, keep_last: int) -> str:
    """Write the full state as checkpoints/{variant}_step_XXXXXXXX.pth (keeping the last `keep_last`)
    and as the latest (the original README's name)."""
    latest = os.path.join(save_dir, checkpoint_names(variant)[0])
    if keep_last <= 0:
        atomic_save(state, latest)
        return latest
    folder = os.path.join(save_dir, "checkpoints")
    os.makedirs(folder, exist_ok=True)
    step_path = os.path.join(folder, f"{variant}_step_{state['step']:08d}.pth")
    atomic_save(state, step_path)
    _link_or_save(step_path, latest, state)
    for old in sorted(glob.glob(os.path.join(folder, f"{variant}_step_*.pth")))[:-keep_last]:
        os.remove(old)
    return latest


def find_latest(save_dir: str, variant: str) -> str | None:
    """The training checkpoint of `variant` in save_dir with the highest step (for logging.ckpt_path=auto):
    the kept steps in checkpoints/ and the latest file beside them, whichever is newer (with
    logging.keep_last=0 a step file can be older than the latest file). A file whose step cannot be
    read counts as step -1, so it is taken only when there is nothing else (and its load reports it)."""
    candidates = {p: int(re.search(r"_step_(\d+)\.pth$", p).group(1))
                  for p in glob.glob(os.path.join(save_dir, "checkpoints", f"{variant}_step_*.pth"))}
    latest = os.path.join(save_dir, checkpoint_names(variant)[0])
    if os.path.isfile(latest):
        try:
            candidates[latest] = int(read_checkpoint(latest, mmap=True).get("step", -1))
        except (CheckpointError, TypeError, ValueError):
            candidates[latest] = -1
    return max(candidates, key=lambda p: (candidates[p], p != latest)) if candidates else None


# Keys that must match to resume: what the weights mean and what they were trained on.
RESUME_FIXED = ("variant", "data.dataset_name") + tuple(f"model.{k}" for k in ARCH_KEYS)
RESUME_IGNORED = ("logging.ckpt_path", "logging.overwrite", "logging.init_from")  # how it started, not what it is


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _defaults() -> dict:
    """TrainConfig's defaults, flat: what a key that a saved configuration lacks stood for (the file
    was written before the key existed, e.g. model.pos_order)."""
    from omegaconf import OmegaConf

    from .config import TrainConfig

    return _flatten(OmegaConf.to_container(OmegaConf.structured(TrainConfig)))


def config_differences(saved: dict, run: dict) -> tuple[list[str], list[str]]:
    """(refused, allowed): "key: checkpoint X, this run Y" for every key on which a checkpoint's
    saved configuration (a key it lacks at its default) and this run's differ. Refused:
    RESUME_FIXED and the model's own resume_fixed_keys (the gate placement for a gated run).
    Allowed: everything else (a longer schedule, logging, probes, ...)."""
    fixed = RESUME_FIXED + tuple(f"model.{k}" for k in model_class(run["variant"]).resume_fixed_keys)
    a, b = {**_defaults(), **_flatten(saved)}, _flatten(run)
    refused, allowed = [], []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_IGNORED or a.get(key) == b.get(key):
            continue
        (refused if key in fixed else allowed).append(f"{key}: checkpoint {a.get(key)!r}, this run {b.get(key)!r}")
    return refused, allowed


def load_training_checkpoint(path: str, run_config: dict, map_location="cpu") -> dict:
    """Load a training checkpoint and check it against this run's configuration (a plain dict):
    a difference in a RESUME_FIXED key is an error naming every such key; others come back as
    state["config_changes"] for the caller to report."""
    variant = run_config["variant"]
    if not os.path.isfile(path):
        raise CheckpointError(f"logging.ckpt_path={path!r}: no such file. Pass an existing "
                              f"{checkpoint_names(variant)[0]}, or logging.ckpt_path=auto to resume from "
                              "the latest checkpoint in logging.save_model_dir (if any).")
    state = read_checkpoint(path, "logging.ckpt_path", map_location)
    if state["format"] != TRAIN_FORMAT:
        raise CheckpointError(f"Checkpoint {path} is an encoder file (encoder_*.pth), which holds no optimiser "
                              "state and cannot resume training; pass a training_model*_ddp.pth.")
    if state["variant"] != variant:
        raise CheckpointError(f"Checkpoint {path} was trained with variant={state['variant']} but this run "
                              f"has variant={variant}. Set variant={state['variant']} or start a new run.")
    refused, allowed = config_differences(state["config"], run_config)
    if refused:
        raise CheckpointError(f"Checkpoint {path} cannot continue as this run; these keys differ: "
                              + "; ".join(refused) + ". Pass the same values as the run that wrote it, or start "
                              "a new run in another logging.save_model_dir.")
    state["config_changes"] = allowed
    return state


def save_run_checkpoint(config: dict, model, optimizer, scaler, step: int, steps_per_epoch: int, world_size: int,
                        collapse_reference: dict | None, save_dir: str, run_id: str | None = None) -> None:
    """A training run's full state as TRAIN_FORMAT (latest + checkpoints/) and its EMA teacher as an
    encoder file beside it, each written atomically. `config`: the run's resolved configuration (a
    plain dict). Raises OSError when a write fails (the previous files stay as they were)."""
    variant = config["variant"]
    state = {
        "format": TRAIN_FORMAT, "variant": variant, "config": config,
        "vit_config": asdict(model.encoder.config), "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "step": step, "epoch": step // steps_per_epoch, "batch_in_epoch": step % steps_per_epoch,
        # All randomness after start-up is re-seeded from (seed, rank, step) and (seed, epoch).
        "rng": {"scheme": "per-step seeds from (seed, rank, step)", "seed": config["seed"]},
        "world_size": world_size, "collapse_reference": collapse_reference,
        "run_id": run_id,  # the run that wrote it (save_dir's run.json): a resume never mixes two runs
    }
    save_training_checkpoint(state, save_dir, variant, config["logging"]["keep_last"])
    save_encoder(model.target_encoder, os.path.join(save_dir, checkpoint_names(variant)[1]),
                 extra={"variant": variant, "step": step, "data": {k: config["data"][k]
                                                                   for k in ("dataset_name", "dataset_path")}})


def restore_training_state(state: dict, path: str, model, optimizer, scaler) -> None:
    """Load a checked training checkpoint into the run's model, optimiser and grad scaler; a state
    that does not fit them is a CheckpointError naming the file and the field."""
    load_weights(model, state["model"], path, "model")
    try:
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"Checkpoint {path!r}: field `optimizer` / `scaler` does not fit this run's "
                              f"optimiser ({type(e).__name__}: {e}).") from None

"""Training checkpoints: the README's file names, the last K kept, resume checks against the run's config.

Layout in `logging.save_model_dir`:
  training_model[_gated]_ddp.pth   latest full training state (the README's name)
  checkpoints/{variant}_step_XXXXXXXX.pth   the last `logging.keep_last` full states (hard links)
  encoder[_gated]_ddp.pth          the EMA teacher encoder alone (+ .safetensors), see export.py
"""
from __future__ import annotations

import glob
import os
import re
import socket

import torch

from ..errors import CheckpointError, ConfigError
from ..models import ARCH_KEYS, model_class
from ..utils.checkpoint_io import TRAIN_FORMAT, atomic_save, read_checkpoint


def checkpoint_names(variant: str) -> tuple[str, str]:
    """(training checkpoint, encoder checkpoint) file names of the README for a variant."""
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
    and as the latest (the README name)."""
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
    """The newest training checkpoint of `variant` in save_dir (for logging.ckpt_path=auto)."""
    steps = glob.glob(os.path.join(save_dir, "checkpoints", f"{variant}_step_*.pth"))
    if steps:
        return max(steps, key=lambda p: int(re.search(r"_step_(\d+)\.pth$", p).group(1)))
    latest = os.path.join(save_dir, checkpoint_names(variant)[0])
    return latest if os.path.isfile(latest) else None


# Keys that must match to resume: what the weights mean and what they were trained on.
RESUME_FIXED = ("variant", "data.dataset_name") + tuple(f"model.{k}" for k in ARCH_KEYS)
RESUME_IGNORED = ("logging.ckpt_path", "logging.overwrite")  # how this run was started, not what it is


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(saved: dict, run: dict) -> tuple[list[str], list[str]]:
    """(refused, allowed): "key: checkpoint X, this run Y" for every key on which a checkpoint's
    saved configuration and this run's differ. Refused: RESUME_FIXED and the model's own
    resume_fixed_keys (the gate placement for a gated run). Allowed: everything else (a longer
    schedule, logging, probes, ...)."""
    fixed = RESUME_FIXED + tuple(f"model.{k}" for k in model_class(run["variant"]).resume_fixed_keys)
    a, b = _flatten(saved), _flatten(run)
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


class SaveDirLock:
    """`save_dir/.run.lock` while a run writes there (rank 0), so that two runs started side by side
    on one folder do not write over each other's checkpoints: the second stops before any work.

    The file holds "host pid". A lock whose process is gone (a crash, SIGKILL) is stale and taken
    over; so is one left by a worker that torchrun restarted (TORCHELASTIC_RESTART_COUNT > 0)."""

    NAME = ".run.lock"

    def __init__(self, save_dir: str):
        self.path = os.path.join(save_dir, self.NAME)
        self.me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._live_holder()
                if holder:
                    raise ConfigError(
                        f"Invalid config `logging.save_model_dir`: another run ({holder}) is writing to {save_dir!r} "
                        f"now. Wait for it, give this run another logging.save_model_dir, or, if no run is "
                        f"writing there, delete {self.path}.") from None
                try:
                    os.remove(self.path)  # stale
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self.me)
            return
        raise ConfigError(f"Invalid config `logging.save_model_dir`: could not take {self.path}; another run keeps "
                          "starting in that folder.")

    def _live_holder(self) -> str | None:
        """'pid P on host H' of a run that may still be writing, or None when the lock is stale."""
        try:
            with open(self.path) as f:
                host, pid = f.read().split()
            pid = int(pid)
        except (OSError, ValueError):
            return None  # half-written or unreadable: its writer died while taking it
        if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 or pid == os.getpid():
            return None
        if host != socket.gethostname():
            return f"pid {pid} on host {host}"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return f"pid {pid} on this host"

    def release(self) -> None:
        try:
            with open(self.path) as f:
                mine = f.read() == self.me
            if mine:
                os.remove(self.path)
        except OSError:
            pass

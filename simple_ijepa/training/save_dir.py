"""The run's folder (logging.save_model_dir): writable, not another run's, and held by one run at a time.

A run records who it is in `run.json` when it starts (a run id, the variant, the model's shape, the
dataset), and its training checkpoints carry the same run id. Starting fresh, `auto` and an explicit
`logging.ckpt_path` all go through `claim_for_run`, which refuses a folder that holds another run
before anything is written: no run ever cuts another run's metrics or replaces its checkpoints.
"""
from __future__ import annotations

import glob
import json
import os
import socket
import time
import uuid

from ..checkpoints import checkpoint_names, find_latest, read_checkpoint
from ..errors import CheckpointError, ConfigError
from ..models import ARCH_KEYS, VARIANTS
from ..utils.atomic import write_text_atomic

RUN_FILE = "run.json"


def check_save_dir(path: str) -> None:
    """ConfigError unless `path` is (or can be made) a folder we can write to."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"Invalid config `logging.save_model_dir`: cannot write to {path!r} ({e.strerror}). "
                          "Point it at a writable folder.") from None


def new_identity(cfg) -> dict:
    """What makes a run itself: a fresh run id, its variant, model shape and dataset, when it started."""
    return {"run_id": uuid.uuid4().hex[:12], "variant": cfg.variant,
            "model": {k: cfg.model[k] for k in ARCH_KEYS}, "dataset": cfg.data.dataset_name,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def read_identity(save_dir: str) -> dict | None:
    """The folder's run.json, or None (none, or unreadable: treated as absent, never fatal)."""
    try:
        with open(os.path.join(save_dir, RUN_FILE)) as f:
            identity = json.load(f)
        return identity if isinstance(identity, dict) and "run_id" in identity else None
    except (OSError, ValueError):
        return None


def write_identity(save_dir: str, identity: dict) -> None:
    write_text_atomic(os.path.join(save_dir, RUN_FILE), json.dumps(identity, indent=1))


def describe(identity: dict | None, where: str) -> str:
    if identity is None:
        return f"an earlier run (in {where}, with no {RUN_FILE})"
    return f"run {identity['run_id']} ({identity.get('variant')}, started {identity.get('started')}, in {where})"


def checkpoint_run_id(path: str) -> str | None:
    """The run id a training checkpoint was saved with (None: written before run ids, or unreadable)."""
    try:
        return read_checkpoint(path, mmap=True).get("run_id")
    except CheckpointError:
        return None  # load_training_checkpoint reports it properly


def claim_for_run(cfg, ckpt_path: str | None, run_files: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Rank 0, before any write: check that `logging.save_model_dir` may take this run; its identity,
    which the caller records (`write_identity`) once the run has really started.

    ckpt_path: the checkpoint this run resumes from (`auto` already resolved), or None for a fresh
    start. A fresh start claims the folder (`claim_save_dir`: refused if it holds any run, unless
    logging.overwrite=true). A resume is refused when the folder holds another run than the
    checkpoint's: another run id in run.json, or, without run.json, checkpoints or metrics while the
    checkpoint lives elsewhere. Returns (this run's identity: the folder's, or a new one that keeps the
    checkpoint's run id; the files logging.overwrite removed)."""
    save_dir = cfg.logging.save_model_dir
    if ckpt_path is None:
        return new_identity(cfg), claim_save_dir(save_dir, cfg.logging.overwrite, run_files + (RUN_FILE,))
    folder = read_identity(save_dir)
    ckpt_id = checkpoint_run_id(ckpt_path)
    home = os.path.dirname(os.path.abspath(ckpt_path))
    if os.path.basename(home) == "checkpoints":
        home = os.path.dirname(home)  # a kept step checkpoint: its run folder is the one above
    same_folder = os.path.realpath(home) == os.path.realpath(save_dir)
    if not _run_files_in(save_dir):
        clash = False  # nothing of another run to lose (a run.json alone: a run that wrote nothing)
    elif folder is not None and ckpt_id is not None:
        clash = folder["run_id"] != ckpt_id
    else:
        clash = not same_folder
    if clash:
        owner = f"run {ckpt_id}" if ckpt_id else "a run"
        raise ConfigError(
            f"Invalid config `logging.ckpt_path`: {ckpt_path!r} belongs to {owner} (in {home}), but "
            f"logging.save_model_dir={save_dir!r} holds {describe(folder, save_dir)}. Resuming here would cut "
            f"that run's metrics and replace its checkpoints: resume in the checkpoint's own folder "
            f"(logging.save_model_dir={home}), or continue it in a new, empty folder.")
    if folder is not None and (ckpt_id is None or folder["run_id"] == ckpt_id):
        return folder, []
    return {**new_identity(cfg), **({"run_id": ckpt_id} if ckpt_id else {}), "continued_from": ckpt_path}, []


def _run_files_in(save_dir: str) -> list[str]:
    """Checkpoints of any variant and the metrics file: the marks of a run having written here."""
    found = [p for v in VARIANTS for p in [find_latest(save_dir, v)] if p]
    return found + [p for p in [os.path.join(save_dir, "metrics.jsonl")] if os.path.isfile(p)]


def claim_save_dir(save_dir: str, overwrite: bool, run_files: tuple[str, ...]) -> list[str]:
    """A fresh run (no logging.ckpt_path) must not write over another run's files: ConfigError before
    any work, or with logging.overwrite=true remove that run's checkpoints, encoders and `run_files`
    (metrics, logger state). Returns the removed paths."""
    found = _run_files_in(save_dir)
    if not found:  # (a run.json alone is a run that stopped before it wrote anything)
        return []
    if not overwrite:
        raise ConfigError(
            f"Invalid config `logging.save_model_dir`: {save_dir!r} already holds "
            f"{describe(read_identity(save_dir), save_dir)} ({', '.join(found)}). Resume it with "
            "logging.ckpt_path=auto (and its variant), write this run to a new logging.save_model_dir, or set "
            "logging.overwrite=true to replace it.")
    old = glob.glob(os.path.join(save_dir, "checkpoints", "*_step_*.pth"))
    old += [os.path.join(save_dir, f) for f in run_files]
    for v in VARIANTS:
        train_file, encoder_file = checkpoint_names(v)
        old += [os.path.join(save_dir, f) for f in (train_file, encoder_file, encoder_file[:-4] + ".safetensors")]
    removed = [p for p in old if os.path.isfile(p)]
    for p in removed:
        os.remove(p)
    return removed


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

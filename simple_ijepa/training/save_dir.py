"""The run's folder (logging.save_model_dir): writable, not another run's, and held by one run at a time."""
from __future__ import annotations

import glob
import os
import socket

from ..checkpoints import checkpoint_names, find_latest
from ..errors import ConfigError
from ..models import VARIANTS


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


def claim_save_dir(save_dir: str, overwrite: bool, run_files: tuple[str, ...]) -> list[str]:
    """A fresh run (no logging.ckpt_path) must not write over another run's files: ConfigError before
    any work, or with logging.overwrite=true remove that run's checkpoints, encoders and `run_files`
    (metrics, logger state). Returns the removed paths."""
    found = [p for v in VARIANTS for p in [find_latest(save_dir, v)] if p]
    found += [p for p in [os.path.join(save_dir, "metrics.jsonl")] if os.path.isfile(p)]
    if not found:
        return []
    if not overwrite:
        raise ConfigError(
            f"Invalid config `logging.save_model_dir`: {save_dir!r} already holds another run ({', '.join(found)}). "
            "Resume it with logging.ckpt_path=auto, write this run to a new logging.save_model_dir, or set "
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

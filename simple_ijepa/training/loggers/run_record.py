"""A run folder that records itself: `config.yaml`, `env.json` and `train.log` in save_model_dir.

Written on rank 0 once the run is under way (the folder claimed, save_dir.py; the checkpoint it
resumes checked), so a run that is refused writes nothing; train.log then starts with the messages
logged before. `config.yaml` is the resolved configuration of this start (a resume may
change keys); `env.json` says what ran it (package version, git commit, Python, torch, CUDA, devices,
world size, command line), with the earlier starts of a resumed run under "earlier_starts";
`train.log` gets every message of the `simple_ijepa` logger, appended across starts.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import platform
import shlex
import socket
import subprocess
import sys
import time

import torch
from omegaconf import OmegaConf

from ...utils.atomic import write_text_atomic

CONFIG_FILE, ENV_FILE, LOG_FILE = "config.yaml", "env.json", "train.log"
RECORD_FILES = (CONFIG_FILE, ENV_FILE, LOG_FILE)


def git_commit(path: str) -> str | None:
    """The commit of the git checkout holding `path` ("+dirty" with uncommitted changes), or None."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """What runs this process: versions, devices, world size, command line, host and time."""
    from ... import __version__

    cuda = torch.cuda.is_available()
    return {
        "simple_ijepa": __version__,
        "git_commit": git_commit(os.path.dirname(os.path.abspath(__file__))),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "devices": ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda
                    else [platform.processor() or platform.machine() or "cpu"]),
        "cpu_threads": torch.get_num_threads(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "command": shlex.join(sys.orig_argv),  # as typed: python -m simple_ijepa.train ..., torchrun ... run_ddp.py
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


class RunRecordLogger:
    """Built when the folder is claimed: log messages are held in memory until `start()`, called once
    the run is under way (checkpoint checked, run.json written); a run refused before then writes nothing."""
    name = "run record (config.yaml, env.json, train.log)"

    @classmethod
    def wanted(cls, cfg) -> bool:
        return True

    def __init__(self, cfg, save_dir: str):
        self.cfg, self.save_dir = cfg, save_dir
        self.logger = logging.getLogger("simple_ijepa")
        self.handler: logging.Handler = logging.handlers.BufferingHandler(capacity=10_000)
        self.logger.addHandler(self.handler)

    def start(self) -> None:
        """Write config.yaml and env.json, open train.log with the messages so far (the trainer
        guards the call: a record that cannot be written never stops the run)."""
        write_text_atomic(os.path.join(self.save_dir, CONFIG_FILE), OmegaConf.to_yaml(self.cfg, resolve=True))
        env_path = os.path.join(self.save_dir, ENV_FILE)
        earlier = []
        try:
            with open(env_path) as f:
                previous = json.load(f)
            earlier = previous.pop("earlier_starts", []) + [previous]
        except (OSError, ValueError, AttributeError):
            pass  # a fresh folder (or an unreadable record: started again)
        env = environment()
        write_text_atomic(env_path, json.dumps({**env, "earlier_starts": earlier} if earlier else env, indent=1) + "\n")
        log_file = logging.FileHandler(os.path.join(self.save_dir, LOG_FILE))
        log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        for record in self.handler.buffer:
            log_file.handle(record)
        self._swap(log_file)

    def _swap(self, handler: logging.Handler | None) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        if handler is not None:
            self.logger.addHandler(handler)
            self.handler = handler

    def log(self, metrics: dict, step: int) -> None:
        pass  # the metrics go to metrics.jsonl; train.log gets the log messages through its handler

    def close(self, error: BaseException | None = None) -> None:
        if error is not None and not isinstance(error, SystemExit):  # into train.log only: the console
            # already gets the command's own one-line error
            self.handler.handle(self.logger.makeRecord(self.logger.name, logging.ERROR, __file__, 0,
                                                       f"the run ended with an error: {type(error).__name__}: "
                                                       f"{error}", None, None))
        self._swap(None)

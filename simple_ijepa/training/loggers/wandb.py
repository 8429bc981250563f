"""Weights & Biases logging (`logging.wandb=true`): one W&B run per save dir, fed from rank 0.

It gets every metrics.jsonl line (the scalars, with the probe and k-NN results on probe steps) and is
closed however the run ends, with that ending's exit code. The run carries the whole resolved
configuration. Its id is kept in `save_model_dir/wandb_run_id` (written atomically): a fresh run
starts a new W&B run, a resumed one (`logging.ckpt_path`) continues the id found there
(`resume="allow"`). W&B writes its files to `save_model_dir/wandb/`; `WANDB_MODE=offline` keeps
them there for a later `wandb sync`.
"""
from __future__ import annotations

import logging
import os

from omegaconf import OmegaConf

from ...utils.atomic import write_text_atomic

RUN_ID_FILE = "wandb_run_id"
log = logging.getLogger("simple_ijepa")


class WandbLogger:
    name = "W&B logger"

    @classmethod
    def wanted(cls, cfg) -> bool:
        return bool(cfg.logging.wandb)

    def __init__(self, cfg, save_dir: str):
        """Start (or, on resume, continue) this save dir's W&B run (config.validate has checked that
        wandb is installed)."""
        import wandb

        id_path = os.path.join(save_dir, RUN_ID_FILE)
        run_id = _read(id_path) if cfg.logging.ckpt_path else None
        self.run = wandb.init(project=cfg.logging.wandb_project, name=os.path.basename(os.path.abspath(save_dir)),
                              dir=save_dir, id=run_id, resume="allow" if run_id else None, allow_val_change=True,
                              config=OmegaConf.to_container(cfg, resolve=True))
        write_text_atomic(id_path, self.run.id + "\n")
        log.info(f"W&B run {self.run.id} ({'continued' if run_id else 'new'}) in project "
                 f"{cfg.logging.wandb_project}, files in {os.path.join(save_dir, 'wandb')}")

    def log(self, metrics: dict, step: int) -> None:
        from . import scalars

        self.run.log(scalars(metrics), step=step)

    def close(self, error: BaseException | None = None) -> None:
        """Exit code 0, or the stop signal's 75, or 1 after an error."""
        code = 0 if error is None else 1
        if isinstance(error, SystemExit) and isinstance(error.code, int):
            code = error.code
        self.run.finish(exit_code=code)


def _read(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


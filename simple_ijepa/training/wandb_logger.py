"""Weights & Biases logging (`logging.wandb=true`): one W&B run per save dir, fed from rank 0.

The trainer calls `start` before training, `log_metrics` wherever it writes a metrics.jsonl line
(the scalars, with the probe and k-NN results on probe steps) and `finish` however the run ends.
The run carries the whole resolved configuration. Its id is kept in `save_model_dir/wandb_run_id`
(written atomically): a fresh run starts a new W&B run, a resumed one (`logging.ckpt_path`)
continues the id found there (`resume="allow"`). W&B writes its files to `save_model_dir/wandb/`;
`WANDB_MODE=offline` keeps them there for a later `wandb sync`.
"""
from __future__ import annotations

import logging
import os

from omegaconf import OmegaConf

RUN_ID_FILE = "wandb_run_id"
log = logging.getLogger("simple_ijepa")
_run = None  # the W&B run this process started (rank 0 only), until `finish`


def start(cfg, save_dir: str) -> None:
    """Start (or, on resume, continue) this save dir's W&B run if `logging.wandb` is set
    (config.validate has checked that wandb is installed)."""
    global _run
    if not cfg.logging.wandb:
        return
    import wandb

    id_path = os.path.join(save_dir, RUN_ID_FILE)
    run_id = _read(id_path) if cfg.logging.ckpt_path else None
    _run = wandb.init(project=cfg.logging.wandb_project, name=os.path.basename(os.path.abspath(save_dir)),
                      dir=save_dir, id=run_id, resume="allow" if run_id else None, allow_val_change=True,
                      config=OmegaConf.to_container(cfg, resolve=True))
    _write(id_path, _run.id)
    log.info(f"W&B run {_run.id} ({'continued' if run_id else 'new'}) in project {cfg.logging.wandb_project}, "
             f"files in {os.path.join(save_dir, 'wandb')}")


def log_metrics(metrics: dict, step: int) -> None:
    """The numbers of one metrics.jsonl line (loss, LR, monitors, probe_* / knn_*) at `step`."""
    if _run is not None:
        _run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}, step=step)


def finish(error: BaseException | None = None) -> None:
    """Close the run: exit code 0, or the stop signal's 75, or 1 after an error. Never raises."""
    global _run
    if _run is None:
        return
    code = 0 if error is None else error.code if isinstance(error, SystemExit) and isinstance(error.code, int) else 1
    try:
        _run.finish(exit_code=code)
    except Exception as e:  # noqa: BLE001 - closing the logger must not hide how the run ended
        log.warning(f"W&B run {_run.id} did not close cleanly ({type(e).__name__}: {e}).")
    _run = None


def _read(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)

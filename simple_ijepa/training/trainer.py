"""The training loop: one function, `train(cfg)`, for both variants, 1..N processes, CPU or GPU.

Per step: uint8 batch -> device -> batched crop/flip -> masks (baseline) -> forward under autocast
-> backward -> AdamW (LR warm-up + cosine) -> teacher copy/EMA. Every `logging.log_every_n_steps`:
metrics line, checkpoint, probes. Every source of randomness after start-up is seeded from
(seed, rank, step), and the sampler from (seed, epoch), so a resumed run replays exactly.
"""
from __future__ import annotations

import logging
import os
import random
import sys
import time

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ..analysis.collapse import collapse_stats, monitor_collapse
from ..analysis.run_plots import plot_run
from ..checkpoints import checkpoint_names, save_run_checkpoint
from ..config import make_config, validate  # noqa: F401  (make_config: also imported from here)
from ..data.datasets import UNREADABLE
from ..errors import CheckpointError
from ..utils.distributed import DistInfo, all_reduce_mean, check_replicas_agree, cleanup_distributed, setup_distributed
from ..utils.preemption import PREEMPTED_EXIT_CODE, Preempted, StopSignal  # noqa: F401  (the exit code: tests)
from ..utils.progress import progress
from .loggers import metrics_line
from .loggers.jsonl import cut_metrics
from .run import Run, epoch_loader, resume_run, start_run
from .save_dir import SaveDirLock, check_save_dir, write_identity
from .schedules import ema_momentum

log = logging.getLogger("simple_ijepa")
BAR_KEYS = ("loss", "lr", "ema_momentum", "images_per_s", "open_frac", "teacher_pooled_std", "teacher_rankme")


class NonFiniteLoss(RuntimeError):
    pass


def train(cfg) -> dict:
    """Run pretraining as configured; returns a summary (final step, last metrics, file paths)."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.structured(cfg)
    validate(cfg)
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 and not cfg.logging.ckpt_path:
        # torchrun --max-restarts restarted the workers after one died: continue from the last checkpoint.
        cfg.logging.ckpt_path = "auto"
    info = setup_distributed()
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s")
    log.setLevel(logging.INFO if info.is_main else logging.WARNING)
    stop, lock, loggers, finished = StopSignal(), None, [], False
    try:
        if info.is_main:  # before any work: a folder we can write to and no other run writing there
            check_save_dir(cfg.logging.save_model_dir)
            lock = SaveDirLock(cfg.logging.save_model_dir)
        summary = _train(cfg, info, stop, loggers)
        finished = True
        return summary
    finally:
        for logger in loggers:  # however the run ended: done, stop signal, error
            _guarded(f"closing the {logger.name}", None, logger.close, sys.exc_info()[1])
        if lock is not None:
            lock.release()
        stop.restore()
        cleanup_distributed(wait_for_all=finished)


def _train(cfg, info: DistInfo, stop: StopSignal, loggers: list) -> dict:
    """The loop: a step per batch; at log / checkpoint / probe steps, the jobs in named functions."""
    run = start_run(cfg, info, loggers)
    resume_run(run)
    rank, log_every = info.rank, cfg.logging.log_every_n_steps
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    if info.is_main:
        write_identity(run.save_dir, run.identity)  # the folder is this run's now (run.json)
        _guarded("the run record (config.yaml, env.json, train.log)", None, run.record.start)
        cut_metrics(run.metrics_path, run.step)  # this run's curve: nothing after the step it starts from
    losses = torch.zeros(log_every, device=info.device)
    bar = progress(run.total_steps, "train", initial=run.step, enabled=info.is_main)
    run.t_last, run.step_last = time.perf_counter(), run.step

    while run.step < run.total_steps:
        for images_u8, labels in epoch_loader(run):
            run.unreadable += int((labels == UNREADABLE).sum())
            inputs = run.train_step.inputs(images_u8, run.step)
            if run.step == 0 and info.is_main:  # the teacher at init: what the collapse monitors compare with
                run.collapse_ref = collapse_stats(run.model.teacher_features(inputs[0]))
            loss, stats, lr = run.train_step(inputs, run.step)
            losses[run.step % log_every] = loss
            run.step += 1
            bar.update(1)

            stop_now = run.step % 10 == 0 and stop.agreed(info.device)  # same answer on every rank
            log_now, ckpt_now, probe_now = _due(run, stop_now)
            if log_now or ckpt_now:
                window = _loss_window(losses, run)
                if log_now:
                    _log_metrics(run, window, lr, stats, inputs[0])
                if ckpt_now:
                    _checkpoint(run)
                if log_now:
                    _log_outputs(run, inputs[0], probe_now, bar)
            if stop_now:
                bar.close()
                log.warning(f"Stop signal received: {run.newest}; rerun the same command with "
                            "logging.ckpt_path=auto to continue.")
                raise Preempted()
            if run.step >= run.total_steps:
                break
    bar.close()
    return _finish(run)


def _due(run: Run, stop_now: bool) -> tuple[bool, bool, bool]:
    """(log, checkpoint, probe) at this step: every logging.log_every_n_steps /
    logging.ckpt_every_n_steps / eval.every_n_steps, at the last step, and on a stop signal
    (log + checkpoint). A probe step is also a log step."""
    cfg, step, last = run.cfg, run.step, run.step == run.total_steps
    eval_every = cfg.eval.every_n_steps or cfg.logging.log_every_n_steps
    ckpt_every = cfg.logging.ckpt_every_n_steps or cfg.logging.log_every_n_steps
    probe_now = cfg.eval.enabled and not stop_now and (step % eval_every == 0 or last)
    ckpt_now = step % ckpt_every == 0 or last or stop_now
    log_now = step % cfg.logging.log_every_n_steps == 0 or last or stop_now or probe_now
    return log_now, ckpt_now, probe_now


def _loss_window(losses: torch.Tensor, run: Run) -> torch.Tensor:
    """The losses since the last log line, averaged over ranks; NonFiniteLoss names the first bad step."""
    window = all_reduce_mean(losses[torch.arange(run.step_last, run.step) % len(losses)])
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        raise NonFiniteLoss(
            f"Loss is {window[bad[0, 0]].item()} at step {run.step_last + int(bad[0, 0]) + 1}: training "
            "diverged. Nothing was saved after the last good checkpoint; lower optim.learning_rate, "
            "raise ema.gamma, or set optim.grad_clip, then resume from that checkpoint.")
    return window


def _log_metrics(run: Run, window: torch.Tensor, lr: float, stats: dict, images: torch.Tensor) -> None:
    """This log step's metrics line (kept in run.last_metrics), with the collapse monitors on rank 0."""
    images_per_step = run.cfg.dataloader.batch_size * run.cfg.optim.accum_steps * run.info.world_size
    speed = (run.step - run.step_last) * images_per_step / max(
        time.perf_counter() - run.t_last, 1e-9)
    ema = run.cfg.ema
    run.last_metrics = metrics_line(run.step, run.step / run.steps_per_epoch, window.mean().item(), lr,
                                    ema_momentum(run.step, run.total_steps, ema.gamma, ema.gamma_end), speed, stats)
    if run.info.is_main:
        # (a checkpoint written before references were saved: compare with this first log step)
        run.collapse_ref = run.collapse_ref or collapse_stats(run.model.teacher_features(images))
        warning = _guarded("collapse monitors", run.step, monitor_collapse, run.model.teacher_features, images,
                           run.last_metrics, run.collapse_ref, run.warned_collapse)
        if warning:
            log.warning(f"step {run.step}: {warning}")
            run.warned_collapse = True


def _log_outputs(run: Run, images: torch.Tensor, probe_now: bool, bar) -> None:
    """After the checkpoint: debug images, the periodic probe (every rank), then the metrics line to
    each logger and the progress bar (rank 0). None of them can stop the run."""
    cfg, info, step, metrics = run.cfg, run.info, run.step, run.last_metrics
    if cfg.debug.save_debug_masks and run.model.has_gates and info.is_main:
        from ..analysis.debug_outputs import save_debug_outputs

        _guarded("debug outputs", step, save_debug_outputs, run.model, images, run.save_dir, step)
    if probe_now:  # every rank takes part (sharded features); a failure is the same on every rank
        from ..evaluation import periodic_probes  # (scikit-learn: imported when a probe is due)

        metrics.update(_guarded("periodic probe", step, periodic_probes, run.model, cfg, info) or {})
    if info.is_main:
        for logger in run.loggers:
            _guarded(logger.name, step, logger.log, metrics, step)
        bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()
                         if k in BAR_KEYS or k.startswith(("probe", "knn"))}, refresh=True)
    run.t_last, run.step_last = time.perf_counter(), step


def _finish(run: Run) -> dict:
    """End of the run: report unreadable images, check the replicas, plot, close; the summary."""
    step, save_dir = run.step, run.save_dir
    train_name, encoder_name = checkpoint_names(run.cfg.variant)
    if run.unreadable:
        log.warning(f"{run.unreadable} unreadable image(s) were replaced by black images in this run "
                    "(each file is named in a warning above); remove or fix them.")
    checksum = check_replicas_agree(run.model, run.info)
    if checksum is not None:
        log.info(f"Weights identical on all {run.info.world_size} ranks (checksum {checksum:.6f}).")
    if run.info.is_main and os.path.isfile(run.metrics_path):
        _guarded("plots", step, plot_run, save_dir)
    if run.save_failed and run.info.is_main:
        raise CheckpointError(
            f"Training reached step {step}, but its last checkpoint could not be written to {save_dir} (see the "
            f"error above); {run.newest}. Free space (or raise the file size limit), then rerun the same command "
            "with logging.ckpt_path=auto to redo the steps after it.")
    log.info(f"Done: {step} steps. Checkpoints in {save_dir}: {train_name}, {encoder_name}.")
    return {"step": step, "metrics": run.last_metrics, "save_dir": save_dir,
            "train_checkpoint": os.path.join(save_dir, train_name),
            "encoder_checkpoint": os.path.join(save_dir, encoder_name)}


def _guarded(what: str, step: int | None, fn, *args):
    """fn(*args), except that a failure logs one warning naming `what` (and the step, if any) and the
    reason, and returns None: probes, monitors, plots, debug images and loggers never stop a run."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - whatever went wrong, training goes on
        where = "" if step is None else f"step {step}: "
        log.warning(f"{where}{what} failed ({type(e).__name__}: {e}); training goes on without it.")
        return None


def _checkpoint(run: Run) -> None:
    """The full training state (rank 0) and the teacher encoder beside it, both written atomically.

    A failed write (no space, a file size limit, a read-only folder) leaves the previous checkpoint
    as it was, logs one error naming the folder, and training goes on: the next checkpoint retries.
    If the last one fails too, `_finish` stops with an error (the run stays resumable)."""
    if not run.info.is_main:
        return
    try:
        save_run_checkpoint(OmegaConf.to_container(run.cfg, resolve=True), run.model, run.train_step.optimizer,
                            run.train_step.scaler, run.step, run.steps_per_epoch, run.info.world_size,
                            run.collapse_ref, run.save_dir, run.identity["run_id"])
    except OSError as e:
        run.save_failed = True
        log.error(f"step {run.step}: could not write the checkpoint to {run.save_dir} ({e.strerror or e}); "
                  f"{run.newest}, intact. Training goes on and retries at the next checkpoint; free space or fix "
                  "the folder's permissions.")
        return
    run.save_failed, run.saved_step = False, run.step

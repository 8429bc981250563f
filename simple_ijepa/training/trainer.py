"""The training loop: one function, `train(cfg)`, for both variants, 1..N processes, CPU or GPU.

Per step: uint8 batch -> device -> batched crop/flip -> masks (baseline) -> forward under autocast
-> backward -> AdamW (LR warm-up + cosine) -> teacher copy/EMA. Every `logging.log_every_n_steps`:
metrics line, checkpoint, probes. Every source of randomness after start-up is seeded from
(seed, rank, step), and the sampler from (seed, epoch), so a resumed run replays exactly.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from ..analysis.collapse import collapse_stats, collapse_warning
from ..config import TrainConfig, resolve_precision, validate
from ..errors import CheckpointError, ConfigError
from ..data import build_dataset, collate_batch
from ..data.datasets import UNREADABLE, ImageFolderDataset
from ..export import save_encoder
from ..models import VARIANTS, build_model
from ..analysis.run_plots import plot_run
from ..presets import PRESETS
from .checkpoint import (SaveDirLock, checkpoint_names, find_latest, load_training_checkpoint,
                         save_training_checkpoint)
from . import wandb_logger
from ..utils.checkpoint_io import TRAIN_FORMAT, load_weights
from ..utils.distributed import DistInfo, all_reduce_mean, cleanup_distributed, setup_distributed
from .schedules import ema_momentum
from .step import TrainStep, compile_net, effective_precision

log = logging.getLogger("simple_ijepa")
BAR_KEYS = ("loss", "lr", "ema_momentum", "images_per_s", "open_frac", "teacher_pooled_std", "teacher_rankme")
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "stopped on request, rerun to continue"


class Preempted(SystemExit):
    def __init__(self):
        super().__init__(PREEMPTED_EXIT_CODE)


class NonFiniteLoss(RuntimeError):
    pass


def make_config(overrides: list[str] | None = None) -> DictConfig:
    """The TrainConfig with `key=value` overrides, outside Hydra (tests, demo, notebooks).

    As on the command line, `experiment=NAME` applies a preset first and the other overrides win.
    """
    cfg = OmegaConf.structured(TrainConfig)
    overrides = list(overrides or [])
    for item in [o for o in overrides if o.startswith("experiment=")]:
        overrides.remove(item)
        name = item.split("=", 1)[1]
        if name not in PRESETS:
            raise ConfigError(f"Invalid config `experiment`: no preset {name!r}; there are {sorted(PRESETS)}.")
        cfg = OmegaConf.merge(cfg, PRESETS[name])
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    return cfg


class SkipBatches(Sampler):
    """Yield a sampler's indices after the first `skip` (resume inside an epoch)."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return iter(list(self.sampler)[self.skip:])

    def __len__(self) -> int:
        return len(self.sampler) - self.skip


def epoch_sampler(dataset, info: DistInfo, seed: int, epoch: int, skip: int) -> Sampler:
    """This rank's shard of epoch `epoch` (a seeded shuffle, disjoint across ranks), minus `skip` samples."""
    sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    return SkipBatches(sampler, skip)


def check_replicas_agree(model, info: DistInfo) -> None:
    """Fail loudly if DDP replicas diverged: compare a checksum of the weights across ranks."""
    if not info.enabled:
        return
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    sums = [torch.zeros_like(checksum) for _ in range(info.world_size)]
    dist.all_gather(sums, checksum)
    if len({float(x) for x in sums}) != 1:
        raise RuntimeError(f"Model replicas diverged across ranks: weight checksums {[float(x) for x in sums]}.")
    log.info(f"Weights identical on all {info.world_size} ranks (checksum {float(checksum):.6f}).")


class StopSignal:
    """SIGTERM / SIGUSR1 set a flag; the loop finishes its step, saves and exits."""

    def __init__(self):
        self.requested = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _setup_logging(info: DistInfo) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s")
    log.setLevel(logging.INFO if info.is_main else logging.WARNING)


def _check_save_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"Invalid config `logging.save_model_dir`: cannot write to {path!r} ({e.strerror}). "
                          "Point it at a writable folder.") from None


def train(cfg) -> dict:
    """Run pretraining as configured; returns a summary (final step, last metrics, file paths)."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.structured(cfg)
    validate(cfg)
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 and not cfg.logging.ckpt_path:
        # torchrun --max-restarts restarted the workers after one died: continue from the last checkpoint.
        cfg.logging.ckpt_path = "auto"
    info = setup_distributed()
    _setup_logging(info)
    stop = StopSignal()
    lock = None
    try:
        if info.is_main:  # before any work: a folder we can write to and no other run writing there
            _check_save_dir(cfg.logging.save_model_dir)
            lock = SaveDirLock(cfg.logging.save_model_dir)
        return _train(cfg, info, stop)
    finally:
        if lock is not None:
            lock.release()
        stop.restore()
        wandb_logger.finish(sys.exc_info()[1])  # however the run ended: done, stop signal, error
        cleanup_distributed()


@dataclass
class Run:
    """One training run's parts, and what the loop carries from one log step to the next."""
    cfg: DictConfig
    info: DistInfo
    dataset: object
    model: torch.nn.Module
    train_step: TrainStep
    steps_per_epoch: int
    total_steps: int
    writer: object = None  # TensorBoard SummaryWriter (rank 0, logging.tensorboard)
    step: int = 0
    collapse_ref: dict | None = None  # the collapse monitors at init (before step 0, or from the checkpoint)
    warned_collapse: bool = False
    unreadable: int = 0  # images of this process's batches that could not be decoded (data/datasets.py)
    last_metrics: dict = field(default_factory=dict)
    step_last: int = 0  # the step of the last log line, and when it was written
    t_last: float = 0.0
    saved_step: int | None = None  # the step of the newest checkpoint on disk (None: none yet)
    save_failed: bool = False  # the latest checkpoint write failed (disk full, file size limit, ...)

    @property
    def save_dir(self) -> str:
        return self.cfg.logging.save_model_dir

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.save_dir, "metrics.jsonl")


def _train(cfg, info: DistInfo, stop: StopSignal) -> dict:
    """The loop: a step per batch; at log / checkpoint / probe steps, the jobs in named functions."""
    run = _start(cfg, info)
    _resume(run)
    rank, log_every = info.rank, cfg.logging.log_every_n_steps
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    if info.is_main:
        _cut_metrics(run.metrics_path, run.step)  # this run's curve: nothing after the step it starts from
    losses = torch.zeros(log_every, device=info.device)
    bar = tqdm(total=run.total_steps, initial=run.step, disable=not info.is_main, dynamic_ncols=True, desc="train")
    run.t_last, run.step_last = time.perf_counter(), run.step

    while run.step < run.total_steps:
        for images_u8, labels in _epoch_loader(run):
            run.unreadable += int((labels == UNREADABLE).sum())
            inputs = run.train_step.inputs(images_u8, run.step)
            if run.step == 0 and info.is_main:  # the teacher at init: what the collapse monitors compare with
                run.collapse_ref = collapse_stats(run.model.teacher_features(inputs[0]))
            loss, stats, lr = run.train_step(inputs, run.step)
            losses[run.step % log_every] = loss
            run.step += 1
            bar.update(1)

            stop_now = run.step % 10 == 0 and _stop_agreed(stop, info)  # same answer on every rank
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
                log.warning(f"Stop signal received: {_newest(run)}; rerun the same command with "
                            "logging.ckpt_path=auto to continue.")
                raise Preempted()
            if run.step >= run.total_steps:
                break
    bar.close()
    return _finish(run)


def _start(cfg, info: DistInfo) -> Run:
    """Check the save dir, the precision and the loggers, load the data, build the model and its step."""
    save_dir, world = cfg.logging.save_model_dir, info.world_size
    if info.is_main and not cfg.logging.ckpt_path:
        _claim_save_dir(save_dir, cfg.logging.overwrite)
    precision = effective_precision(resolve_precision(cfg.optim), info.device)
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("Invalid config `optim.precision`: bf16 is not supported on this GPU; use fp16 or fp32.")
    writer = _tensorboard(cfg, save_dir) if info.is_main else None
    if info.is_main:
        wandb_logger.start(cfg, save_dir)

    def load():  # rank 0 first (it may download), then the others
        return build_dataset(cfg.data.dataset_name, cfg.data.dataset_path, "unlabeled", download=cfg.data.download,
                             image_size=cfg.model.image_size, min_crop_scale=cfg.data.crop_scale[0], seed=cfg.seed)
    dataset = load() if info.is_main else None
    if info.enabled:
        dist.barrier()
    if dataset is None:
        dataset = load()
    B = cfg.dataloader.batch_size
    steps_per_epoch = len(dataset) // (B * world)
    if steps_per_epoch == 0:
        raise ConfigError(f"Invalid config `dataloader.batch_size`: {B} per process x {world} process(es) is more "
                          f"than the {len(dataset)} images of {cfg.data.dataset_name}; lower it.")
    total_steps = cfg.optim.max_steps or cfg.optim.num_epochs * steps_per_epoch

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_model(cfg).to(info.device)
    net = DDP(model, device_ids=[info.device.index] if info.device.type == "cuda" else None) if world > 1 else model
    if cfg.optim.compile:
        net = compile_net(net)
    train_step = TrainStep(cfg, model, info.device, precision, total_steps, info.rank, net)
    n_params = sum(p.numel() for p in model.encoder.parameters())
    log.info(f"simple-ijepa: variant={cfg.variant}, {n_params / 1e6:.2f}M encoder params, {len(dataset)} images, "
             f"{world} process(es) on {info.device.type}, batch {B}/process, {steps_per_epoch} steps/epoch, "
             f"{total_steps} steps, precision {precision}")
    return Run(cfg, info, dataset, model, train_step, steps_per_epoch, total_steps, writer)


def _resume(run: Run) -> None:
    """Load `logging.ckpt_path` (a path, or "auto" = the newest in the save dir) into the run, if any."""
    cfg, ckpt_path = run.cfg, run.cfg.logging.ckpt_path
    if ckpt_path == "auto":
        ckpt_path = find_latest(run.save_dir, cfg.variant)
        log.info(f"logging.ckpt_path=auto: {'resuming from ' + ckpt_path if ckpt_path else 'no checkpoint, fresh start'}")
    if not ckpt_path:
        return
    state = load_training_checkpoint(ckpt_path, OmegaConf.to_container(cfg, resolve=True),
                                     map_location=run.info.device)
    if state["config_changes"] and run.info.is_main:
        log.warning("Resuming with a configuration that differs from the checkpoint's: "
                    + "; ".join(state["config_changes"]) + ".")
    load_weights(run.model, state["model"], ckpt_path, "model")
    try:
        run.train_step.optimizer.load_state_dict(state["optimizer"])
        run.train_step.scaler.load_state_dict(state["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"Checkpoint {ckpt_path!r}: field `optimizer` / `scaler` does not fit this run's "
                              f"optimiser ({type(e).__name__}: {e}).") from None
    run.step, run.collapse_ref = state["step"], state.get("collapse_reference")
    run.saved_step = run.step
    log.info(f"Resumed from {ckpt_path} at step {run.step} (epoch {run.step // run.steps_per_epoch}).")


def _epoch_loader(run: Run) -> DataLoader:
    """The loader of the epoch `run.step` falls in, starting at that step's batch (exact resume)."""
    cfg, B = run.cfg, run.cfg.dataloader.batch_size
    epoch, skip = divmod(run.step, run.steps_per_epoch)
    if isinstance(run.dataset, ImageFolderDataset):
        run.dataset.set_epoch(epoch)  # where each image's square falls this epoch (a resume replays it)
    return DataLoader(run.dataset, batch_size=B, sampler=epoch_sampler(run.dataset, run.info, cfg.seed, epoch, skip * B),
                      drop_last=True, collate_fn=collate_batch, num_workers=cfg.dataloader.num_workers,
                      pin_memory=run.info.device.type == "cuda")


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
    speed = (run.step - run.step_last) * run.cfg.dataloader.batch_size * run.info.world_size / max(
        time.perf_counter() - run.t_last, 1e-9)
    run.last_metrics = _step_metrics(run.step, run.steps_per_epoch, run.total_steps, window, lr, stats, run.cfg, speed)
    if run.info.is_main:
        # (a checkpoint written before references were saved: compare with this first log step)
        run.collapse_ref = run.collapse_ref or collapse_stats(run.model.teacher_features(images))
        run.warned_collapse = _guarded("collapse monitors", run.step, _monitor_collapse, run.model, images,
                                       run.last_metrics, run.collapse_ref, run.warned_collapse) or run.warned_collapse


def _log_outputs(run: Run, images: torch.Tensor, probe_now: bool, bar) -> None:
    """After the checkpoint: debug images, the periodic probe (every rank), then the metrics line to
    metrics.jsonl, TensorBoard, W&B and the progress bar (rank 0). None of them can stop the run."""
    cfg, info, step, metrics = run.cfg, run.info, run.step, run.last_metrics
    if cfg.debug.save_debug_masks and run.model.has_gates and info.is_main:
        from ..analysis.debug_outputs import save_debug_outputs

        _guarded("debug outputs", step, save_debug_outputs, run.model, images, run.save_dir, step)
    if probe_now:  # every rank takes part (sharded features); a failure is the same on every rank
        metrics.update(_guarded("periodic probe", step, _probe, run.model, cfg, info) or {})
    if info.is_main:
        _guarded("metrics.jsonl writer", step, _append_line, run.metrics_path, json.dumps(metrics))
        if run.writer is not None:
            _guarded("TensorBoard writer", step, _write_scalars, run.writer, metrics, step)
        _guarded("W&B logger", step, wandb_logger.log_metrics, metrics, step)
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
    check_replicas_agree(run.model, run.info)
    if run.info.is_main and os.path.isfile(run.metrics_path):
        _guarded("plots", step, plot_run, save_dir)
    if run.writer is not None:
        _guarded("TensorBoard writer", step, run.writer.close)
    if run.save_failed and run.info.is_main:
        raise CheckpointError(
            f"Training reached step {step}, but its last checkpoint could not be written to {save_dir} (see the "
            f"error above); {_newest(run)}. Free space (or raise the file size limit), then rerun the same command "
            "with logging.ckpt_path=auto to redo the steps after it.")
    log.info(f"Done: {step} steps. Checkpoints in {save_dir}: {train_name}, {encoder_name}.")
    return {"step": step, "metrics": run.last_metrics, "save_dir": save_dir,
            "train_checkpoint": os.path.join(save_dir, train_name),
            "encoder_checkpoint": os.path.join(save_dir, encoder_name)}


def _step_metrics(step, steps_per_epoch, total_steps, window, lr, stats, cfg, images_per_s) -> dict:
    """One metrics.jsonl line: the step, the mean loss since the last log step, the schedule, speed
    and the model's own scalar stats."""
    return {"step": step, "epoch": step / steps_per_epoch, "loss": window.mean().item(), "lr": lr,
            "ema_momentum": ema_momentum(step, total_steps, cfg.ema.gamma, cfg.ema.gamma_end), "images_per_s": images_per_s,
            **{k: _scalar(v) for k, v in stats.items() if _is_scalar(v)}}


def _claim_save_dir(save_dir: str, overwrite: bool) -> None:
    """A fresh run (no logging.ckpt_path) must not write over another run's files: stop before any
    work, or with logging.overwrite=true remove that run's checkpoints, encoders and metrics."""
    found = [p for v in VARIANTS for p in [find_latest(save_dir, v)] if p]
    metrics = os.path.join(save_dir, "metrics.jsonl")
    if os.path.isfile(metrics):
        found.append(metrics)
    if not found:
        return
    if not overwrite:
        raise ConfigError(
            f"Invalid config `logging.save_model_dir`: {save_dir!r} already holds another run ({', '.join(found)}). "
            "Resume it with logging.ckpt_path=auto, write this run to a new logging.save_model_dir, or set "
            "logging.overwrite=true to replace it.")
    old = glob.glob(os.path.join(save_dir, "checkpoints", "*_step_*.pth")) + [metrics]
    old.append(os.path.join(save_dir, wandb_logger.RUN_ID_FILE))  # a resume must not continue that run's W&B
    for v in VARIANTS:
        train_file, encoder_file = checkpoint_names(v)
        old += [os.path.join(save_dir, f) for f in (train_file, encoder_file, encoder_file[:-4] + ".safetensors")]
    removed = [p for p in old if os.path.isfile(p)]
    for p in removed:
        os.remove(p)
    log.warning(f"logging.overwrite=true: removed the previous run's {len(removed)} file(s) from {save_dir}.")


def _cut_metrics(path: str, step: int) -> None:
    """Keep only metrics.jsonl lines up to `step` (the step a run starts from), written atomically,
    so that a resumed run's curve has no steps twice."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, path)


def _guarded(what: str, step: int, fn, *args):
    """fn(*args), except that a failure logs one warning naming `what` and the reason, and returns
    None: probes, monitors, plots, debug images and TensorBoard never stop a training run."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - whatever went wrong, training goes on
        log.warning(f"step {step}: {what} failed ({type(e).__name__}: {e}); training goes on without it.")
        return None


def _append_line(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def _write_scalars(writer, metrics: dict, step: int) -> None:
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and k != "step":
            writer.add_scalar(k, v, step)


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) or (torch.is_tensor(v) and v.numel() == 1)


def _scalar(v) -> float:
    return float(v.item() if torch.is_tensor(v) else v)


def _monitor_collapse(model, images: torch.Tensor, metrics: dict, reference: dict, warned: bool) -> bool:
    """Add the teacher's collapse monitors on this batch to `metrics` (teacher_pooled_std,
    teacher_token_std, teacher_rankme); warn once per run when one falls below its threshold
    relative to `reference` (the same monitors at init). Returns whether a warning has been given."""
    stats = collapse_stats(model.teacher_features(images))
    metrics.update({f"teacher_{k}": v for k, v in stats.items()})
    message = None if warned else collapse_warning(stats, reference)
    if message:
        log.warning(f"step {metrics['step']}: {message}")
    return warned or message is not None


def _stop_agreed(stop: StopSignal, info: DistInfo) -> bool:
    """True on every rank if any rank got a stop signal (one tiny all-reduce, every 10 steps)."""
    if not info.enabled:
        return stop.requested
    flag = torch.tensor([1.0 if stop.requested else 0.0], device=info.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    stop.requested = bool(flag.item())
    return stop.requested


def _checkpoint(run: Run) -> None:
    """The full training state (rank 0) and the teacher encoder beside it, both written atomically.

    A failed write (no space, a file size limit, a read-only folder) leaves the previous checkpoint
    as it was, logs one error naming the folder, and training goes on: the next checkpoint retries.
    If the last one fails too, `_finish` stops with an error (the run stays resumable)."""
    if not run.info.is_main:
        return
    try:
        _write_checkpoint(run)
    except OSError as e:
        run.save_failed = True
        log.error(f"step {run.step}: could not write the checkpoint to {run.save_dir} ({e.strerror or e}); "
                  f"{_newest(run)}, intact. Training goes on and retries at the next checkpoint; free space or fix "
                  "the folder's permissions.")
        return
    run.save_failed, run.saved_step = False, run.step


def _newest(run: Run) -> str:
    """Where the run's newest checkpoint on disk stands, for messages."""
    if run.saved_step is None:
        return f"there is no checkpoint of this run in {run.save_dir} yet"
    return f"the newest checkpoint in {run.save_dir} is from step {run.saved_step}"


def _write_checkpoint(run: Run) -> None:
    cfg, model, step = run.cfg, run.model, run.step
    state = {
        "format": TRAIN_FORMAT, "variant": cfg.variant, "config": OmegaConf.to_container(cfg, resolve=True),
        "vit_config": asdict(model.encoder.config), "model": model.state_dict(),
        "optimizer": run.train_step.optimizer.state_dict(), "scaler": run.train_step.scaler.state_dict(),
        "step": step, "epoch": step // run.steps_per_epoch, "batch_in_epoch": step % run.steps_per_epoch,
        # All randomness after start-up is re-seeded from (seed, rank, step) and (seed, epoch).
        "rng": {"scheme": "per-step seeds from (seed, rank, step)", "seed": cfg.seed},
        "world_size": run.info.world_size, "collapse_reference": run.collapse_ref,
    }
    save_training_checkpoint(state, run.save_dir, cfg.variant, cfg.logging.keep_last)
    save_encoder(model.target_encoder, os.path.join(run.save_dir, checkpoint_names(cfg.variant)[1]),
                 extra={"variant": cfg.variant, "step": step})


def _tensorboard(cfg, save_dir: str):
    if not cfg.logging.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("Invalid config `logging.tensorboard`: the `tensorboard` package is not installed; "
                          "`pip install tensorboard` (or `pip install -e '.[tensorboard]'`), or set it to false.") from None
    return SummaryWriter(os.path.join(save_dir, "tensorboard"))


def _probe(model, cfg, info) -> dict:
    from ..evaluation import periodic_probes

    results = periodic_probes(model, cfg, info)
    if results:
        log.info("probe @ step: " + ", ".join(f"{k}={v:.4f}" for k, v in results.items()))
    return results

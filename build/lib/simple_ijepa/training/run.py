"""A training run: what `train()` builds before the loop (data, model, optimisation step, loggers),
what it restores from a checkpoint, and what the loop carries from one log step to the next.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ..checkpoints import find_latest, load_training_checkpoint, restore_training_state
from ..config import resolve_precision
from ..data import build_dataset, collate_batch
from ..data.samplers import epoch_sampler
from ..errors import ConfigError
from ..models import build_model
from ..utils.distributed import DistInfo
from .init_from import init_from
from .loggers import build_loggers
from .loggers.jsonl import METRICS_FILE
from .loggers.run_record import RECORD_FILES, RunRecordLogger
from .loggers.wandb import RUN_ID_FILE
from .save_dir import claim_for_run
from .step import TrainStep, compile_net, effective_precision

log = logging.getLogger("simple_ijepa")


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
    loggers: list = field(default_factory=list)  # rank 0: metrics.jsonl, TensorBoard, W&B (training/loggers)
    step: int = 0
    collapse_ref: dict | None = None  # the collapse monitors at init (before step 0, or from the checkpoint)
    warned_collapse: bool = False
    unreadable: int = 0  # images of this process's batches that could not be decoded (data/datasets.py)
    last_metrics: dict = field(default_factory=dict)
    step_last: int = 0  # the step of the last log line, and when it was written
    t_last: float = 0.0
    resume_from: str | None = None  # the checkpoint this run continues (logging.ckpt_path, `auto` resolved)
    identity: dict | None = None  # save_dir's run.json (rank 0; save_dir.py): its run_id goes into every checkpoint
    record: RunRecordLogger | None = None  # rank 0: config.yaml, env.json, train.log (written by record.start())
    saved_step: int | None = None  # the step of the newest checkpoint on disk (None: none yet)
    save_failed: bool = False  # the latest checkpoint write failed (disk full, file size limit, ...)

    @property
    def save_dir(self) -> str:
        return self.cfg.logging.save_model_dir

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.save_dir, METRICS_FILE)

    @property
    def newest(self) -> str:
        """Where the newest checkpoint on disk stands, for messages."""
        if self.saved_step is None:
            return f"there is no checkpoint of this run in {self.save_dir} yet"
        return f"the newest checkpoint in {self.save_dir} is from step {self.saved_step}"


def start_run(cfg, info: DistInfo, loggers: list) -> Run:
    """Claim the save dir, check the precision, start the loggers, load the data, build the model and its step."""
    save_dir, world = cfg.logging.save_model_dir, info.world_size
    resume_from = cfg.logging.ckpt_path or None
    if resume_from == "auto":
        resume_from = find_latest(save_dir, cfg.variant)
        found = f"resuming from {resume_from}" if resume_from else f"no checkpoint of a {cfg.variant} run, fresh start"
        log.info(f"logging.ckpt_path=auto: {found}")
    identity = None
    if info.is_main:  # before anything is written: the folder holds no other run (save_dir.py)
        identity, removed = claim_for_run(cfg, resume_from, (METRICS_FILE, RUN_ID_FILE) + RECORD_FILES)
        if removed:
            log.warning(f"logging.overwrite=true: removed the previous run's {len(removed)} file(s) from {save_dir}.")
    precision = effective_precision(resolve_precision(cfg.optim), info.device)
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("Invalid config `optim.precision`: bf16 is not supported on this GPU; use fp16 or fp32.")
    record = None
    if info.is_main:
        record = RunRecordLogger(cfg, save_dir)  # holds the messages until the run is under way (record.start)
        loggers += [record] + build_loggers(cfg, save_dir)

    def load():  # rank 0 first (it may download), then the others
        return build_dataset(cfg.data.dataset_name, cfg.data.dataset_path, "unlabeled", download=cfg.data.download,
                             image_size=cfg.model.image_size, min_crop_scale=cfg.data.crop_scale[0], seed=cfg.seed,
                             cache_mb=cfg.data.decode_cache_mb)
    dataset = load() if info.is_main else None
    if info.enabled:
        dist.barrier()
    if dataset is None:
        dataset = load()
    B, accum = cfg.dataloader.batch_size, cfg.optim.accum_steps
    steps_per_epoch = len(dataset) // (B * world * accum)
    if steps_per_epoch == 0:
        raise ConfigError(f"Invalid config `dataloader.batch_size`: {B} per process x {world} process(es)"
                          + (f" x {accum} micro-batches (optim.accum_steps)" if accum > 1 else "")
                          + f" is more than the {len(dataset)} images of {cfg.data.dataset_name}; lower it.")
    total_steps = cfg.optim.max_steps or cfg.optim.num_epochs * steps_per_epoch

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_model(cfg).to(info.device)
    net = DDP(model, device_ids=[info.device.index] if info.device.type == "cuda" else None) if world > 1 else model
    if cfg.optim.compile:
        net = compile_net(net)
    train_step = TrainStep(cfg, model, info.device, precision, total_steps, info.rank, net)
    n_params = sum(p.numel() for p in model.encoder.parameters())
    log.info(f"simple-ijepa: variant={cfg.variant}, {n_params / 1e6:.2f}M encoder params, {len(dataset)} images, "
             f"{world} process(es) on {info.device.type}, batch {B}/process"
             + (f" x {accum} micro-batches" if accum > 1 else "") + f", {steps_per_epoch} steps/epoch, "
             f"{total_steps} steps, precision {precision}")
    return Run(cfg, info, dataset, model, train_step, steps_per_epoch, total_steps, loggers,
               resume_from=resume_from, identity=identity, record=record)


def resume_run(run: Run) -> None:
    """Load the checkpoint the run continues (`logging.ckpt_path`, `auto` resolved by start_run) into
    the run, if any; a fresh run starts from `logging.init_from`'s weights, if set (training/init_from.py)."""
    cfg, ckpt_path = run.cfg, run.resume_from
    if not ckpt_path:
        if cfg.logging.init_from:
            init_from(run.model, cfg)
        return
    state = load_training_checkpoint(ckpt_path, OmegaConf.to_container(cfg, resolve=True),
                                     map_location=run.info.device)
    if state["config_changes"] and run.info.is_main:
        log.warning("Resuming with a configuration that differs from the checkpoint's: "
                    + "; ".join(state["config_changes"]) + ".")
    restore_training_state(state, ckpt_path, run.model, run.train_step.optimizer, run.train_step.scaler)
    run.step, run.collapse_ref = state["step"], state.get("collapse_reference")
    run.saved_step = run.step
    log.info(f"Resumed from {ckpt_path} at step {run.step} (epoch {run.step // run.steps_per_epoch}).")


def epoch_loader(run: Run) -> DataLoader:
    """The loader of the epoch `run.step` falls in, starting at that step's batch (exact resume)."""
    cfg = run.cfg
    B = cfg.dataloader.batch_size * cfg.optim.accum_steps  # a step's images; TrainStep splits them (accum_steps)
    epoch, skip = divmod(run.step, run.steps_per_epoch)
    if hasattr(run.dataset, "set_epoch"):  # e.g. folders: where each image's square falls (a resume replays it)
        run.dataset.set_epoch(epoch)
    sampler = epoch_sampler(run.dataset, run.info.rank, run.info.world_size, cfg.seed, epoch, skip * B)
    return DataLoader(run.dataset, batch_size=B, sampler=sampler,
                      drop_last=True, collate_fn=collate_batch, num_workers=cfg.dataloader.num_workers,
                      pin_memory=run.info.device.type == "cuda")

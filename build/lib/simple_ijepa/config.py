"""The whole training configuration: one Hydra structured-config tree rooted at `TrainConfig`.

Every key of the original Gated I-JEPA README keeps its name and default; the others are additions.
`validate(cfg)` checks values before any work starts and raises `ConfigError` naming the key.
"""
from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from .data.datasets import DATASETS
from .errors import UNKNOWN_KEY, ConfigError
from .masks import MASKS, build_masks
from .models import VARIANTS, model_class
from .models.gate_locations import GATE_LOCATIONS
from .models.layers import POS_ORDERS
from .presets import PRESETS

LOSSES = ("mse", "smooth_l1")
SEED_LIMIT = 2**32  # numpy's seeds: each rank uses seed + rank
MAX_LOG_EVERY = 1_000_000  # the trainer's loss buffer holds this many steps (4 MB)
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class IJEPAConfig:
    image_size: int = 96
    patch_size: int = 8
    hidden_dim: int = 512
    depth: int = 6
    heads: int = 6
    head_dim: int = 64  # per-head width; 6 x 64 = 384 inner attention width, ~11.2M params
    mlp_ratio: float = 2.0  # MLP width = mlp_ratio * hidden_dim (Gated I-JEPA README: 2x)
    predictor_dim: int = 384  # predictor width; projects in from and out to hidden_dim
    predictor_depth: int = 6
    predictor_heads: int = 6
    predictor_head_dim: Optional[int] = None  # predictor per-head width; null = head_dim (official I-JEPA: 24)
    predictor_mlp_ratio: Optional[float] = None  # null = mlp_ratio (official ViT-g: 4 here, 48/11 in the encoder)
    pos_order: str = "row_col"  # 2-D sin-cos channel halves: row then column; "col_row" = the official I-JEPA's
    num_targets: int = 4
    loss: str = "mse"  # "mse" (Gated I-JEPA README's results) or "smooth_l1" (the I-JEPA code)
    sigreg_weight: float = 0.0  # weight of the SIGReg anti-collapse term (LeJEPA); 0 = plain I-JEPA
    sigreg_slices: int = 256  # random directions per step for SIGReg
    target_layers: int = 1  # target = the last k blocks, instance-normed, averaged, layer-normed (data2vec 2.0)
    target_center: bool = False  # remove each position's mean over the global batch (position alone predicts nothing)
    global_weight: float = 0.0  # weight of the pooled target (LN of the mean teacher token, from the context); 0 = off
    predictor_shared_context: bool = False  # baseline: the predictor's context once for all target blocks
    # Gated I-JEPA (variant=gated)
    lambda_gates: float = 1.0
    gate_exp_alpha: float = 4.0
    gate_layer_index: Optional[int] = None
    gate_location: str = "post"
    gate_beta: float = 2.0 / 3.0
    gate_gamma: float = -0.1  # used: the hard-concrete stretch interval's lower end
    gate_zeta: float = 1.1  # used: the hard-concrete stretch interval's upper end
    gate_lr_scale: float = 50.0  # the gate head's learning rate = optim.learning_rate * this
    gate_target_open: Optional[float] = 0.5  # open fraction the penalty centres on; null = the original form


@dataclass
class MaskConfig:
    """Masking for variant=baseline (Assran et al. 2023, Sec. 3); defaults are the paper's."""
    kind: str = "multiblock"  # "multiblock" (the paper's) or "random" (its ablation); see simple_ijepa/masks
    target_scale: List[float] = field(default_factory=lambda: [0.15, 0.2])
    target_aspect_ratio: List[float] = field(default_factory=lambda: [0.75, 1.5])
    context_scale: List[float] = field(default_factory=lambda: [0.85, 1.0])
    min_context: int = 4  # floor on the number of context patches
    # Every sample keeps exactly round(context_budget * N) context patches (static shapes; the official
    # code's effective share is ~0.25); null = all of the context block minus the targets (~46%).
    context_budget: Optional[float] = None


@dataclass
class DataConfig:
    dataset_path: str = "./data"
    dataset_name: str = "stl10"
    download: bool = False  # let torchvision download STL-10 / CIFAR-10 / Fashion-MNIST
    crop_scale: List[float] = field(default_factory=lambda: [0.3, 1.0])
    hflip: bool = True
    decode_cache_mb: float = 1024.0  # folder: decode every image once into memory when they fit in this (0: never)


@dataclass
class OptimConfig:
    num_epochs: int = 100
    learning_rate: float = 3e-4
    weight_decay: float = 1e-5
    weight_decay_end: Optional[float] = None  # cosine from weight_decay to this (I-JEPA: 0.04 -> 0.4); null: constant
    fp16_precision: bool = True
    precision: Optional[str] = None  # fp32 | fp16 | bf16; overrides fp16_precision when set
    warmup_fraction: float = 0.05  # share of all steps spent in linear LR warm-up
    min_lr: float = 1e-6  # LR at the end of the cosine decay
    decay_fraction: Optional[float] = None  # cosine over only this last share of steps; null: all after warm-up
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    accum_steps: int = 1  # micro-batches of dataloader.batch_size per update: global batch = batch x ranks x this
    max_steps: Optional[int] = None  # stop after this many steps (schedules use it as the end)
    compile: bool = False  # torch.compile the model


@dataclass
class DataloaderConfig:
    batch_size: int = 1024
    num_workers: int = 8


@dataclass
class EMAConfig:
    gamma: float = 0.996
    gamma_end: float = 1.0  # the cosine momentum ramp ends here (1.0 = the teacher freezes at the end)
    update_gamma_after_step: int = 1
    update_gamma_every_n_steps: int = 1


@dataclass
class LoggingConfig:
    save_model_dir: str = "./models"
    log_every_n_steps: int = 98
    ckpt_path: Optional[str] = None  # a path, or "auto" = latest checkpoint in save_model_dir
    init_from: Optional[str] = None  # a fresh run starts from these weights (official I-JEPA or ours)
    keep_last: int = 3  # step-numbered training checkpoints kept beside the latest
    ckpt_every_n_steps: Optional[int] = None  # null = at every log step (as the Gated I-JEPA README says)
    overwrite: bool = False  # a fresh run may replace another run's files in save_model_dir
    tensorboard: bool = False  # also write TensorBoard scalars (needs `tensorboard`)
    wandb: bool = False  # also log to Weights & Biases (needs `wandb`); resumes continue the run
    wandb_project: str = "simple-ijepa"  # the W&B project


@dataclass
class EvalConfig:
    """Linear probe + k-NN during training."""
    enabled: bool = True
    every_n_steps: Optional[int] = None  # null = logging.log_every_n_steps
    classifier: str = "calibrated"  # "calibrated" (Gated I-JEPA README), "logistic" or "torch" (on the device)
    max_train_samples: Optional[int] = None  # subsample the probe's train split (speed); null = all, folder: 10k
    max_test_samples: Optional[int] = None  # likewise the test split
    knn_k: int = 20
    batch_size: int = 256


@dataclass
class DebugConfig:
    save_debug_masks: bool = False


@dataclass
class TrainConfig:
    variant: str = "baseline"
    seed: int = 0  # base seed; each rank uses seed + rank
    model: IJEPAConfig = field(default_factory=IJEPAConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    dataloader: DataloaderConfig = field(default_factory=DataloaderConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)


TRAIN_HELP = """ijepa-train / python -m simple_ijepa.train: I-JEPA and Gated I-JEPA pretraining (Hydra overrides).

Usage:  ijepa-train [key=value ...]
        ijepa-train experiment=cpu_small data.dataset_name=fashion_mnist
        torchrun --standalone --nproc_per_node=4 -m simple_ijepa.train experiment=stl10_gpu

Every key, its default and what it does: docs/configuration.md. Presets (experiment=NAME):
$APP_CONFIG_GROUPS
The resolved configuration, without training: add --cfg job. A run writes everything into
logging.save_model_dir (checkpoints, metrics.jsonl, config.yaml, env.json, train.log).
Hydra's own flags (--cfg, --multirun, ...): --hydra-help.
"""


@dataclass
class HydraTrainConfig(TrainConfig):
    """TrainConfig plus Hydra's defaults list, so that `experiment=NAME` picks a preset (the
    `experiment` group) and any other `key=value` still overrides it. Hydra drops `defaults`."""
    defaults: List[Any] = field(default_factory=lambda: [
        "_self_", {"experiment": None}, {"override hydra/job_logging": "stdout"}])
    # Hydra writes nothing of its own (no ./outputs/): the run folder records itself (training/loggers/run_record.py)
    hydra: Any = field(default_factory=lambda: {"run": {"dir": "."}, "output_subdir": None,
                                                "help": {"template": TRAIN_HELP}})


_store = ConfigStore.instance()
_store.store(name="train_config", node=HydraTrainConfig)
for _name, _overrides in PRESETS.items():
    _store.store(group="experiment", name=_name, node=_overrides, package="_global_")


def make_config(overrides: list[str] | None = None):
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


def resolve_precision(optim) -> str:
    """`optim.precision` if set, else `optim.fp16_precision` (true -> fp16)."""
    if optim.precision is not None:
        return optim.precision
    return "fp16" if optim.fp16_precision else "fp32"


def _check(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"Invalid config `{key}`: {msg}")


def _check_range(values, key: str, lo: float, hi: float) -> None:
    _check(len(values) == 2 and lo < values[0] <= values[1] <= hi, key,
           f"expected [low, high] with {lo} < low <= high <= {hi}, got {list(values)}. "
           f"Set it like {key}=[{lo + (hi - lo) / 2:.2f},{hi}].")


def _unknown_keys(cfg, reference, prefix: str = "") -> list[str]:
    """Keys in cfg that TrainConfig does not have (e.g. added with Hydra's `+key=value`)."""
    unknown = []
    for key in cfg.keys():
        if key not in reference:
            unknown.append(prefix + str(key))
        elif OmegaConf.is_dict(cfg[key]) and OmegaConf.is_dict(reference[key]):
            unknown += _unknown_keys(cfg[key], reference[key], f"{prefix}{key}.")
    return unknown


def _non_finite(cfg, prefix: str = "") -> list[str]:
    """Keys whose value is a float NaN or +-inf (no key of TrainConfig can work with one)."""
    bad = []
    for key, value in cfg.items():
        if OmegaConf.is_dict(value):
            bad += _non_finite(value, f"{prefix}{key}.")
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(f"{prefix}{key}")
        elif OmegaConf.is_list(value) and any(isinstance(v, float) and not math.isfinite(v) for v in value):
            bad.append(f"{prefix}{key}")
    return bad


def _check_seed(seed: int) -> None:
    """Each rank seeds numpy with seed + rank, which must be below 2**32 (WORLD_SIZE: torchrun's ranks)."""
    world = max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))
    top = SEED_LIMIT - world
    _check(0 <= seed <= top, "seed", f"must be in [0, {top}] (each of the {world} rank(s) seeds numpy with "
           f"seed + rank, below 2**32), got {seed}.")


def _check_mlp_widths(m) -> None:
    """The encoder's and the predictor's MLPs are int(width x ratio) wide: at least 1."""
    for key, dim, ratio in (("model.mlp_ratio", m.hidden_dim, m.mlp_ratio),
                            ("model.predictor_mlp_ratio" if m.predictor_mlp_ratio is not None else "model.mlp_ratio",
                             m.predictor_dim, m.predictor_mlp_ratio or m.mlp_ratio)):
        _check(int(dim * ratio) >= 1, key, f"{ratio} gives an MLP of int({dim} x {ratio}) = {int(dim * ratio)} units; "
               f"use a ratio of at least 1/{dim}.")


def validate(cfg) -> None:
    """Check every value that could fail later; raise ConfigError naming the key and the fix."""
    unknown = _unknown_keys(cfg, OmegaConf.structured(TrainConfig))
    _check(not unknown, ", ".join(unknown), UNKNOWN_KEY)
    bad = _non_finite(cfg)
    _check(not bad, ", ".join(bad), "NaN or infinity cannot work here; give a finite number.")
    m, d, o = cfg.model, cfg.data, cfg.optim
    _check_seed(cfg.seed)
    _check(cfg.variant in VARIANTS, "variant", f"{cfg.variant!r} is not one of {tuple(VARIANTS)}.")
    _check(d.dataset_name in DATASETS, "data.dataset_name",
           f"{d.dataset_name!r} is not one of {tuple(DATASETS)}.")
    for key in ("image_size", "patch_size", "hidden_dim", "depth", "heads", "head_dim",
                "predictor_dim", "predictor_depth", "predictor_heads", "num_targets"):
        _check(int(getattr(m, key)) >= 1, f"model.{key}", f"must be a positive integer, got {getattr(m, key)}.")
    _check(m.image_size % m.patch_size == 0, "model.image_size",
           f"{m.image_size} is not a multiple of model.patch_size={m.patch_size}; "
           f"use e.g. model.image_size={max(1, m.image_size // m.patch_size) * m.patch_size}.")
    for key in ("hidden_dim", "predictor_dim"):  # both carry 2-D sin-cos positions: 4 sin/cos quarters
        value = getattr(m, key)
        _check(value % 4 == 0, f"model.{key}", f"2-D sin-cos positions need a multiple of 4, got {value}; "
               f"use e.g. model.{key}={max(4, value // 4 * 4)}.")
    _check(m.predictor_head_dim is None or m.predictor_head_dim >= 1, "model.predictor_head_dim",
           f"must be a positive integer, or null for model.head_dim; got {m.predictor_head_dim}.")
    _check(m.mlp_ratio > 0, "model.mlp_ratio", f"must be > 0, got {m.mlp_ratio}.")
    _check(m.predictor_mlp_ratio is None or m.predictor_mlp_ratio > 0, "model.predictor_mlp_ratio",
           f"must be > 0, or null for model.mlp_ratio; got {m.predictor_mlp_ratio}.")
    _check_mlp_widths(m)
    _check(m.pos_order in POS_ORDERS, "model.pos_order", f"{m.pos_order!r} is not one of {POS_ORDERS} "
           "(col_row: the official I-JEPA checkpoints').")
    _check(m.loss in LOSSES, "model.loss", f"{m.loss!r} is not one of {LOSSES}.")
    _check(m.gate_location in GATE_LOCATIONS, "model.gate_location",
           f"{m.gate_location!r} is not one of {tuple(GATE_LOCATIONS)}.")
    if m.gate_layer_index is not None:
        _check(0 <= m.gate_layer_index < m.depth, "model.gate_layer_index",
               f"{m.gate_layer_index} is outside the encoder's blocks 0..{m.depth - 1} "
               "(model.depth); use null to gate the final tokens.")
    _check(m.gate_beta > 0, "model.gate_beta", f"the temperature must be > 0, got {m.gate_beta}.")
    _check(m.gate_gamma < 0, "model.gate_gamma",
           f"hard-concrete needs gate_gamma < 0 < 1 < gate_zeta, got gate_gamma={m.gate_gamma}.")
    _check(m.gate_zeta > 1, "model.gate_zeta",
           f"hard-concrete needs gate_gamma < 0 < 1 < gate_zeta, got gate_zeta={m.gate_zeta}.")
    _check(m.sigreg_weight >= 0, "model.sigreg_weight", f"must be >= 0 (0 = off), got {m.sigreg_weight}.")
    _check(m.sigreg_slices >= 1, "model.sigreg_slices", f"must be >= 1, got {m.sigreg_slices}.")
    _check(1 <= m.target_layers <= m.depth, "model.target_layers",
           f"must be in [1, model.depth={m.depth}] (teacher blocks averaged into the target), got {m.target_layers}.")
    _check(m.sigreg_weight == 0 or cfg.variant == "baseline", "model.sigreg_weight",
           "SIGReg is implemented for variant=baseline only; set it to 0 for variant=gated.")
    _check(m.global_weight >= 0, "model.global_weight", f"must be >= 0 (0 = off), got {m.global_weight}.")
    _check(m.global_weight == 0 or cfg.variant == "baseline", "model.global_weight",
           "the pooled target is implemented for variant=baseline only; set it to 0 for variant=gated.")
    _check(m.lambda_gates >= 0, "model.lambda_gates", f"must be >= 0, got {m.lambda_gates}.")
    _check(m.gate_exp_alpha > 0, "model.gate_exp_alpha",
           f"must be > 0: the penalty's steepness (the batch hold divides by its square), got {m.gate_exp_alpha}.")
    _check(m.gate_lr_scale > 0, "model.gate_lr_scale", f"must be > 0, got {m.gate_lr_scale}.")
    _check(m.gate_target_open is None or 0 < m.gate_target_open < 1, "model.gate_target_open",
           f"must be in (0, 1), or null for the original Gated I-JEPA penalty that pushes every gate shut; "
           f"got {m.gate_target_open}.")

    mk = cfg.mask
    _check_range(mk.target_scale, "mask.target_scale", 0.0, 1.0)
    _check_range(mk.context_scale, "mask.context_scale", 0.0, 1.0)
    _check(len(mk.target_aspect_ratio) == 2 and 0 < mk.target_aspect_ratio[0] <= mk.target_aspect_ratio[1],
           "mask.target_aspect_ratio",
           f"expected [low, high] with 0 < low <= high, got {list(mk.target_aspect_ratio)}.")
    grid = m.image_size // m.patch_size
    n = grid * grid
    _check(1 <= mk.min_context < n, "mask.min_context", f"must be in [1, {n - 1}] for a {grid}x{grid} grid.")
    _check(mk.kind in MASKS, "mask.kind", f"{mk.kind!r} is not one of {tuple(MASKS)}.")
    if mk.context_budget is not None:
        k = round(mk.context_budget * n)
        _check(0 < mk.context_budget < 1 and 1 <= k < n, "mask.context_budget",
               f"a share in (0, 1) that keeps 1..{n - 1} of the {n} patches ({grid}x{grid} grid), or null; "
               f"got {mk.context_budget} ({k} patches). The official code's effective share is about 0.25.")
    if model_class(cfg.variant).needs_masks:
        try:  # each strategy checks its own fit to the grid
            build_masks(mk.kind, grid, m.num_targets, mk)
        except ValueError as e:
            key = "mask.context_budget" if "budget" in str(e) else "model.num_targets"
            raise ConfigError(f"Invalid config `{key}`: {e} on a {grid}x{grid} grid (mask.kind="
                              f"{mk.kind}); lower model.num_targets, mask.target_scale, mask.min_context or "
                              "mask.context_budget, or use more patches.") from None

    _check(len(d.crop_scale) == 2 and 0 < d.crop_scale[0] <= d.crop_scale[1] <= 1, "data.crop_scale",
           f"expected [low, high] with 0 < low <= high <= 1, got {list(d.crop_scale)}.")
    _check(d.decode_cache_mb >= 0, "data.decode_cache_mb",
           f"must be >= 0 (0 = decode on read), got {d.decode_cache_mb}.")
    _check(o.num_epochs >= 1, "optim.num_epochs", f"must be >= 1, got {o.num_epochs}.")
    _check(o.learning_rate > 0, "optim.learning_rate", f"must be > 0, got {o.learning_rate}.")
    _check(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}.")
    _check(o.weight_decay_end is None or o.weight_decay_end >= 0, "optim.weight_decay_end",
           f"must be >= 0, or null for a constant optim.weight_decay; got {o.weight_decay_end}.")
    _check(0 <= o.min_lr <= o.learning_rate, "optim.min_lr", "must be in [0, optim.learning_rate].")
    _check(0 <= o.warmup_fraction < 1, "optim.warmup_fraction", f"must be in [0, 1), got {o.warmup_fraction}.")
    _check(o.decay_fraction is None or 0 < o.decay_fraction <= 1 - o.warmup_fraction, "optim.decay_fraction",
           f"must be in (0, 1 - optim.warmup_fraction = {1 - o.warmup_fraction:g}] (the decay follows the warm-up), "
           f"or null for a cosine over every step after the warm-up; got {o.decay_fraction}.")
    _check(o.grad_clip >= 0, "optim.grad_clip", f"must be >= 0 (0 = off), got {o.grad_clip}.")
    _check(o.precision is None or o.precision in PRECISIONS, "optim.precision",
           f"{o.precision!r} is not one of {PRECISIONS} (or null to follow optim.fp16_precision).")
    _check(o.max_steps is None or o.max_steps >= 1, "optim.max_steps", f"must be >= 1 or null, got {o.max_steps}.")
    _check(cfg.dataloader.batch_size >= 1, "dataloader.batch_size", "must be >= 1.")
    _check(isinstance(o.accum_steps, int) and o.accum_steps >= 1, "optim.accum_steps",
           f"must be a whole number >= 1 (micro-batches per update), got {o.accum_steps!r}.")
    _check(not m.target_center or cfg.dataloader.batch_size >= 2, "model.target_center",
           "centres the targets over the batch, which needs dataloader.batch_size >= 2.")
    _check(cfg.dataloader.num_workers >= 0, "dataloader.num_workers", "must be >= 0.")
    e = cfg.ema
    _check(0 <= e.gamma <= 1, "ema.gamma", f"must be in [0, 1], got {e.gamma}.")
    _check(e.gamma <= e.gamma_end <= 1, "ema.gamma_end",
           f"must be in [ema.gamma={e.gamma}, 1] (the momentum ramps up to it), got {e.gamma_end}.")
    _check(e.update_gamma_after_step >= 0, "ema.update_gamma_after_step", "must be >= 0.")
    _check(e.update_gamma_every_n_steps >= 1, "ema.update_gamma_every_n_steps", "must be >= 1.")
    _check(1 <= cfg.logging.log_every_n_steps <= MAX_LOG_EVERY, "logging.log_every_n_steps",
           f"must be in [1, {MAX_LOG_EVERY:,}] (the trainer keeps each step's loss until the next log line; "
           f"the last step always logs), got {cfg.logging.log_every_n_steps}.")
    _check(cfg.logging.keep_last >= 0, "logging.keep_last", "must be >= 0.")
    init_from = cfg.logging.init_from
    _check(init_from is None or os.path.isfile(init_from), "logging.init_from",
           f"{init_from!r}: no such file; pass an official I-JEPA checkpoint, an encoder file or a training "
           "checkpoint (or null).")
    _check(cfg.logging.ckpt_every_n_steps is None or cfg.logging.ckpt_every_n_steps >= 1,
           "logging.ckpt_every_n_steps", "must be >= 1, or null to checkpoint at every log step.")
    _check(not cfg.logging.tensorboard or importlib.util.find_spec("tensorboard") is not None, "logging.tensorboard",
           "the `tensorboard` package is not installed; `pip install tensorboard` (or "
           "`pip install 'simple-ijepa[tensorboard]'`), or set it to false.")
    _check(not cfg.logging.wandb or importlib.util.find_spec("wandb") is not None, "logging.wandb",
           "the `wandb` package is not installed; `pip install 'simple-ijepa[wandb]'` (or `pip install wandb`), "
           "or set it to false.")
    _check(bool(cfg.logging.wandb_project.strip()), "logging.wandb_project", "must name a W&B project.")
    ev = cfg.eval
    _check(ev.classifier in ("calibrated", "logistic", "torch"), "eval.classifier",
           f"{ev.classifier!r} is not 'calibrated', 'logistic' or 'torch'.")
    _check(ev.every_n_steps is None or ev.every_n_steps >= 1, "eval.every_n_steps", "must be >= 1 or null.")
    _check(ev.knn_k >= 1, "eval.knn_k", "must be >= 1.")
    _check(ev.batch_size >= 1, "eval.batch_size", "must be >= 1.")
    for key in ("max_train_samples", "max_test_samples"):
        value = getattr(ev, key)
        _check(value is None or value >= 2, f"eval.{key}",
               f"must be >= 2 (a probe needs images), or null; got {value}.")

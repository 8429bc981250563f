"""Where the metrics of a log step go: one small protocol, one file per logger, one registry
(and the run's own record, run_record.py: config.yaml, env.json, train.log).

A logger is built on rank 0 as `Logger(cfg, save_dir)` when `Logger.wanted(cfg)` holds, gets
`log(metrics, step)` at every log step (the scalars of a metrics.jsonl line: loss, LR, monitors,
probe_* / knn_*), and `close(error)` however the run ends (None, a stop signal's SystemExit, or the
exception). A failing logger never stops training: the trainer guards every call. To add one, write
a class with these three methods in a file here and add it to LOGGERS.
"""
from __future__ import annotations

from typing import Protocol

from .jsonl import JSONLLogger
from .tensorboard import TensorBoardLogger
from .wandb import WandbLogger


class Logger(Protocol):
    name: str

    @classmethod
    def wanted(cls, cfg) -> bool: ...

    def log(self, metrics: dict, step: int) -> None: ...

    def close(self, error: BaseException | None = None) -> None: ...


LOGGERS: tuple[type[Logger], ...] = (JSONLLogger, TensorBoardLogger, WandbLogger)


def build_loggers(cfg, save_dir: str) -> list[Logger]:
    """The loggers this configuration asks for, in LOGGERS order."""
    return [logger(cfg, save_dir) for logger in LOGGERS if logger.wanted(cfg)]


def metrics_line(step: int, epoch: float, loss: float, lr: float, ema_momentum: float, images_per_s: float,
                 stats: dict) -> dict:
    """One log step's metrics (a metrics.jsonl line): the step, the mean loss since the last log step,
    the schedule, the speed, and the model's own scalar stats (tensors of one element as floats)."""
    extra = {k: float(v.item() if hasattr(v, "item") else v) for k, v in stats.items()
             if isinstance(v, (int, float)) or (hasattr(v, "numel") and v.numel() == 1)}
    return {"step": step, "epoch": epoch, "loss": loss, "lr": lr, "ema_momentum": ema_momentum,
            "images_per_s": images_per_s, **extra}


def scalars(metrics: dict) -> dict[str, float]:
    """The plottable numbers of a metrics line (no step)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k != "step"}


__all__ = ["LOGGERS", "JSONLLogger", "Logger", "TensorBoardLogger", "WandbLogger", "build_loggers",
           "metrics_line", "scalars"]

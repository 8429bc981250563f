"""TensorBoard scalars in save_model_dir/tensorboard/ (`logging.tensorboard=true`; needs `tensorboard`,
which config.validate checks)."""
from __future__ import annotations

import os


class TensorBoardLogger:
    name = "TensorBoard writer"

    @classmethod
    def wanted(cls, cfg) -> bool:
        return bool(cfg.logging.tensorboard)

    def __init__(self, cfg, save_dir: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(os.path.join(save_dir, "tensorboard"))

    def log(self, metrics: dict, step: int) -> None:
        from . import scalars

        for k, v in scalars(metrics).items():
            self.writer.add_scalar(k, v, step)

    def close(self, error: BaseException | None = None) -> None:
        self.writer.close()

"""Pretraining from the command line (Hydra): `torchrun --standalone --nproc_per_node=N run_ddp.py key=value ...`,
plain `python run_ddp.py key=value ...` for one process, or `ijepa-train key=value ...`.

Relative paths (data.dataset_path, logging.save_model_dir, logging.ckpt_path) are resolved against
the directory the command was started from (Hydra may change into its own output folder).
"""
import os

import hydra
from hydra.utils import get_original_cwd
from omegaconf import DictConfig

from ..config import TrainConfig  # noqa: F401  (registers "train_config")
from ..errors import run_command
from ..training.trainer import train


@hydra.main(version_base=None, config_name="train_config")
def main(cfg: DictConfig) -> None:
    cwd = get_original_cwd()
    cfg.data.dataset_path = os.path.normpath(os.path.join(cwd, os.path.expanduser(cfg.data.dataset_path)))
    cfg.logging.save_model_dir = os.path.normpath(os.path.join(cwd, os.path.expanduser(cfg.logging.save_model_dir)))
    if cfg.logging.ckpt_path not in (None, "auto"):
        cfg.logging.ckpt_path = os.path.normpath(os.path.join(cwd, os.path.expanduser(cfg.logging.ckpt_path)))
    run_command(lambda: train(cfg))


if __name__ == "__main__":
    main()

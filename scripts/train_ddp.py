"""Hydra entry point: `torchrun --standalone --nproc_per_node=N run_ddp.py key=value ...`
(or plain `python run_ddp.py key=value ...` for one process)."""
import os

import hydra
from hydra.utils import get_original_cwd
from omegaconf import DictConfig

from simple_ijepa.config import TrainConfig  # noqa: F401  (registers "train_config")
from simple_ijepa.errors import run_command
from simple_ijepa.training.trainer import train


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

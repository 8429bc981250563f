"""Pretraining from the command line (Hydra): `torchrun --standalone --nproc_per_node=N run_ddp.py key=value ...`,
plain `python run_ddp.py key=value ...` for one process, or `ijepa-train key=value ...`.

Relative paths (data.dataset_path, logging.save_model_dir, logging.ckpt_path) are resolved against
the directory the command was started from (Hydra may change into its own output folder).

A user error (an override of the wrong type or an unknown key, a value `validate` refuses, a bad
dataset or checkpoint, a loss that became non-finite) prints one line, `error: <message>`, and
exits with status 2, as the other tools do; HYDRA_FULL_ERROR=1 shows Hydra's own report instead.
"""
import os

import hydra
from hydra.utils import get_original_cwd
from omegaconf import DictConfig

from ..config import TrainConfig  # noqa: F401  (registers "train_config")
from ..errors import run_command
from ..training.trainer import train


@hydra.main(version_base=None, config_name="train_config")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task: resolve the relative paths, then train (a user error exits here, before Hydra
    would add its "Error executing job" line)."""
    cwd = get_original_cwd()
    cfg.data.dataset_path = os.path.normpath(os.path.join(cwd, os.path.expanduser(cfg.data.dataset_path)))
    cfg.logging.save_model_dir = os.path.normpath(os.path.join(cwd, os.path.expanduser(cfg.logging.save_model_dir)))
    if cfg.logging.ckpt_path not in (None, "auto"):
        cfg.logging.ckpt_path = os.path.normpath(os.path.join(cwd, os.path.expanduser(cfg.logging.ckpt_path)))
    run_command(lambda: train(cfg))


def main() -> None:
    """Run Hydra with its errors raised rather than reported (HYDRA_FULL_ERROR), so that
    `run_command` prints a bad override as one line and exits 2; any other error keeps its traceback."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":  # the user asked for Hydra's full report
        hydra_main()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        run_command(hydra_main)
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)


if __name__ == "__main__":
    main()

"""Weights & Biases logging (logging.wandb=true), offline: the run file, resuming the same run, a clear
error without the package."""
import sys

import pytest
from helpers import TINY_MODEL

from simple_ijepa.errors import ConfigError
from simple_ijepa.training.trainer import make_config, train

RUN = TINY_MODEL + ["data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                    "dataloader.batch_size=32", "dataloader.num_workers=0", "logging.log_every_n_steps=2",
                    "eval.classifier=logistic", "eval.max_train_samples=100", "eval.max_test_samples=50",
                    "logging.wandb=true"]


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def offline_runs(save_dir) -> dict[str, bytes]:
    """{run directory name: the bytes of its run-<id>.wandb file} under save_dir/wandb/.

    `run.finish()` can return before W&B's service process has flushed the file (wandb 0.31 under load:
    CI once read the 7-byte header alone), so wait for the service first, as the process's exit would."""
    import wandb

    wandb.teardown()
    return {f.parent.name: f.read_bytes() for f in sorted((save_dir / "wandb").glob("offline-run-*/run-*.wandb"))}


def test_offline_run_file_and_resume_continues_the_same_run(tmp_path, wandb_offline):
    save = tmp_path / "run"
    train(make_config(RUN + ["optim.max_steps=2", f"logging.save_model_dir={save}"]))
    run_id = (save / "wandb_run_id").read_text().strip()
    (first, data), = offline_runs(save).items()
    assert first.endswith(f"-{run_id}") and run_id.encode() in data
    for key in (b"loss", b"teacher_rankme", b"probe_teacher", b"knn_student", b"max_train_samples"):
        assert key in data, key  # scalars, probe results and the configuration
    out = train(make_config(RUN + ["optim.max_steps=4", f"logging.save_model_dir={save}", "logging.ckpt_path=auto"]))
    assert out["step"] == 4 and (save / "wandb_run_id").read_text().strip() == run_id
    runs = offline_runs(save)
    assert len(runs) == 2 and all(f"-{run_id}" in name for name in runs)  # both runs log under one id
    resumed = runs[max(runs)]  # offline-run-<time>-<id>[-1]: the later one
    assert b"loss" in resumed and b"probe_teacher" in resumed
    train(make_config(RUN + ["optim.max_steps=2", f"logging.save_model_dir={save}", "logging.overwrite=true",
                             "eval.enabled=false"]))
    assert (save / "wandb_run_id").read_text().strip() != run_id  # a fresh run is a new W&B run


def test_missing_wandb_is_a_clear_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(ConfigError, match=r"logging.wandb.*pip install 'simple-ijepa\[wandb\]'"):
        train(make_config(RUN + ["optim.max_steps=2", f"logging.save_model_dir={tmp_path}"]))
    assert not (tmp_path / "training_model_ddp.pth").exists() and not (tmp_path / "metrics.jsonl").exists()

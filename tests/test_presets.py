"""`experiment=NAME` presets: the values land, any other key still wins, the README command works."""
import json

import numpy as np
import pytest
import torch
from helpers import PYTHON, RUN_DDP, run_cli
from omegaconf import OmegaConf
from PIL import Image

from simple_ijepa.config import validate
from simple_ijepa.errors import ConfigError
from simple_ijepa.presets import PRESETS
from simple_ijepa.training.trainer import make_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_preset_gives_the_same_config_on_the_command_line_and_in_python(name):
    """`experiment=NAME` goes through Hydra's config group on the command line and through
    make_config in Python: both must give one configuration, and it must be valid."""
    from hydra import compose, initialize

    with initialize(version_base=None, config_path=None):
        hydra_cfg = compose(config_name="train_config", overrides=[f"experiment={name}", "seed=3"])
    ours = make_config([f"experiment={name}", "seed=3"])
    assert OmegaConf.to_container(hydra_cfg) == OmegaConf.to_container(ours)
    validate(ours)


def test_overrides_win_over_the_preset_in_any_order():
    for overrides in (["experiment=cpu_small", "model.depth=2"], ["model.depth=2", "experiment=cpu_small"]):
        cfg = make_config(overrides)
        assert cfg.model.depth == 2 and cfg.model.image_size == PRESETS["cpu_small"]["model"]["image_size"]
    with pytest.raises(ConfigError, match="`experiment`.*cpu_small"):
        make_config(["experiment=cpu_tiny"])


def write_image_folder(root, classes: int = 2, per_class: int = 24, size: int = 20) -> None:
    """Class sub-folders of small PNGs (a bright square whose position depends on the class)."""
    rng = np.random.RandomState(0)
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True)
        for i in range(per_class):
            img = rng.randint(0, 60, (size, size), dtype=np.uint8)
            img[c * 8: c * 8 + 8, 4:12] = 230
            Image.fromarray(img).save(root / f"class_{c}" / f"{i}.png")


@pytest.mark.slow
def test_readme_cpu_small_command_on_a_folder_then_evaluate(tmp_path):
    """The README's command, exactly, but for a smaller step count and batch (CI time); then the
    evaluate CLI on the encoder it wrote."""
    data = tmp_path / "images"
    write_image_folder(data)
    run = run_cli([PYTHON, RUN_DDP, "experiment=cpu_small", "data.dataset_name=folder", f"data.dataset_path={data}",
                   "optim.max_steps=4", "dataloader.batch_size=8"], cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    state = torch.load(tmp_path / "models" / "training_model_ddp.pth", weights_only=False)
    assert state["step"] == 4
    assert state["config"]["model"]["image_size"] == PRESETS["cpu_small"]["model"]["image_size"]  # the preset
    assert state["config"]["dataloader"]["batch_size"] == 8  # the override
    rows = [json.loads(line) for line in open(tmp_path / "models" / "metrics.jsonl")]
    assert "probe_teacher" in rows[-1] and "teacher_rankme" in rows[-1]
    ev = run_cli([PYTHON, "-m", "simple_ijepa.evaluate", "--ckpt_path", "models/encoder_ddp.pth",
                  "--dataset_name", "folder", "--dataset_path", str(data), "--classifier", "logistic"], cwd=tmp_path)
    assert ev.returncode == 0, ev.stdout[-3000:]
    assert "random init" in ev.stdout and "pretrained" in ev.stdout


def test_cpu_long_is_cpu_small_for_longer():
    small, long = (OmegaConf.to_container(make_config([f"experiment={n}"])) for n in ("cpu_small", "cpu_long"))
    assert long["optim"].pop("max_steps") == 2 * small["optim"].pop("max_steps") == 6000
    assert long["eval"].pop("every_n_steps") == 3000 and small["eval"].pop("every_n_steps") == 1500
    assert long == small
    # cpu_small keeps learning to its last step: constant rate after the warm-up, constant EMA momentum.
    assert small["optim"]["min_lr"] == small["optim"]["learning_rate"]
    assert small["ema"]["gamma_end"] == small["ema"]["gamma"]

"""`experiment=NAME` presets: the values land, any other key still wins, the README command works."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from simple_ijepa.config import validate
from simple_ijepa.errors import ConfigError
from simple_ijepa.presets import PRESETS
from simple_ijepa.training.trainer import make_config

from helpers import PYTHON, RUN_DDP, run_cli


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_config(name):
    cfg = make_config([f"experiment={name}"])
    validate(cfg)
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            assert cfg[section][key] == value, f"{section}.{key}"


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

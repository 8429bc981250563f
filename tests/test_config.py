import os

import pytest
import yaml
from helpers import REPO
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from simple_ijepa.config import validate
from simple_ijepa.errors import ConfigError
from simple_ijepa.training.trainer import make_config


def documented_defaults() -> dict[str, str]:
    """key -> the default column of every table row `| key | `default` | ... |` in docs/configuration.md."""
    rows = {}
    for line in open(os.path.join(REPO, "docs", "configuration.md")):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and "." in cells[0] or cells[0] in ("variant", "seed"):
            if cells[1].startswith("`"):
                rows[cells[0]] = cells[1].strip("`")
    return rows


def parse_default(text: str):
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if "/" in text and not text.startswith(("[", '"', ".")):
        num, den = text.split("/")
        return float(num) / float(den)
    try:
        return float(text) if any(c in text for c in ".e") else int(text)
    except ValueError:
        return yaml.safe_load(text)


def test_every_key_and_default_in_the_docs_is_the_code_s():
    """docs/configuration.md lists every key of TrainConfig with the default the code has (including
    the original README's: image_size 96, hidden_dim 512, lambda_gates 1.0, batch 1024, ...)."""
    cfg = make_config()
    documented = documented_defaults()
    flat = {}

    def walk(node, prefix=""):
        for k, v in node.items():
            if OmegaConf.is_dict(v):
                walk(v, f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = OmegaConf.to_container(v) if OmegaConf.is_list(v) else v
    walk(cfg)
    assert sorted(flat) == sorted(documented), set(flat) ^ set(documented)
    for key, value in flat.items():
        want = parse_default(documented[key])
        if isinstance(value, float) or isinstance(want, float):
            assert value == pytest.approx(want), key
        else:
            assert value == want, key
    m = cfg.model  # and the original README's numbers, spelled out
    assert (m.image_size, m.patch_size, m.hidden_dim, m.depth, m.heads) == (96, 8, 512, 6, 6)
    assert (cfg.dataloader.batch_size, cfg.ema.gamma, cfg.logging.log_every_n_steps) == (1024, 0.996, 98)
    validate(cfg)


@pytest.mark.parametrize("override,key", [
    ("variant=gatd", "variant"),
    ("data.dataset_name=imagenet", "data.dataset_name"),
    ("model.image_size=100", "model.image_size"),
    ("mask.target_scale=[0.1,1.5]", "mask.target_scale"),
    ("mask.context_scale=[0.0,1.0]", "mask.context_scale"),
    ("data.crop_scale=[0.9,0.5]", "data.crop_scale"),
    ("data.crop_scale=[0.0,1.0]", "data.crop_scale"),
    ("model.num_targets=40", "model.num_targets"),
    ("mask.kind=grid", "mask.kind"),
    ("mask.kind=random model.num_targets=6", "model.num_targets"),
    ("model.gate_layer_index=6", "model.gate_layer_index"),
    ("model.gate_location=pre", "model.gate_location"),
    ("optim.precision=fp8", "optim.precision"),
    ("ema.gamma=1.5", "ema.gamma"),
    ("model.loss=l1", "model.loss"),
    ("dataloader.batch_size=0", "dataloader.batch_size"),
    ("optim.warmup_fraction=0.1 optim.decay_fraction=0.95", "optim.decay_fraction"),
])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"`{key}`"):
        validate(make_config(override.split()))


def test_unknown_key_and_wrong_type_are_rejected():
    with pytest.raises(ConfigKeyError, match="not_a_key"):
        make_config(["model.not_a_key=1"])
    with pytest.raises(ValidationError, match="image_size"):
        make_config(["model.image_size=big"])

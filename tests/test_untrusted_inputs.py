"""Files and settings from someone else: crafted pickles run no code, malformed files and NaN-making
values are clear errors naming the file or the key, never a traceback."""
import math
import os

import pytest
import torch
from helpers import PYTHON, TINY_MODEL, run_cli
from omegaconf import OmegaConf

import simple_ijepa
from simple_ijepa import evaluate, visualize
from simple_ijepa.analysis.gate_analysis import load_gated_model
from simple_ijepa.checkpoints import ENCODER_FORMAT, TRAIN_FORMAT
from simple_ijepa.cli import export as export_cli
from simple_ijepa.config import TrainConfig, validate
from simple_ijepa.errors import CheckpointError, ConfigError
from simple_ijepa.training.trainer import make_config, train

DIGITS = TINY_MODEL + ["data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                       "dataloader.batch_size=32", "dataloader.num_workers=0", "eval.enabled=false"]


class Payload:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    train(make_config(DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=2", f"logging.save_model_dir={d}"]))
    return d


def crafted(tmp_path, name: str, template: dict) -> tuple[str, str]:
    """A file of ours with a payload in one field; returns (its path, the marker the payload would create)."""
    marker = str(tmp_path / f"{name}.ran")
    path = str(tmp_path / f"{name}.pth")
    torch.save({**template, "vit_config": Payload(marker)}, path)
    return path, marker


def every_loader(path: str, tmp_path):
    """Each way a user hands a file to the project, as a callable."""
    data = ["--dataset_name", "digits", "--max_train_samples", "50", "--device", "cpu"]
    return {
        "load_encoder": lambda: simple_ijepa.load_encoder(path),
        "evaluate": lambda: evaluate.main(["--ckpt_path", path, *data, "--max_test_samples", "50"]),
        "visualize": lambda: visualize.main(["--ckpt_path", path, "--out_dir", str(tmp_path / "vis"), *data]),
        "export": lambda: export_cli.main(["--ckpt_path", path, "--timm", str(tmp_path / "t.safetensors")]),
        "gate tools": lambda: load_gated_model(path),
        "resume": lambda: train(make_config(DIGITS + ["optim.max_steps=3", f"logging.ckpt_path={path}",
                                                      f"logging.save_model_dir={tmp_path / 'resumed'}"])),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["encoder", "training"])
def test_a_crafted_pickle_is_refused_by_every_loader_and_never_runs(run_dir, tmp_path, kind):
    name = "encoder_ddp.pth" if kind == "encoder" else "training_model_ddp.pth"
    template = torch.load(run_dir / name, weights_only=True)
    path, marker = crafted(tmp_path, kind, template)
    for loader, load in every_loader(path, tmp_path).items():
        with pytest.raises(CheckpointError, match="refused") as e:
            load()
        assert path in str(e.value) and "posix.system" in str(e.value), loader
        assert not os.path.exists(marker), f"{loader} ran the payload"
    run = run_cli([PYTHON, "-m", "simple_ijepa.evaluate", "--ckpt_path", path, "--dataset_name", "digits"],
                  cwd=tmp_path)
    assert run.returncode == 2 and "refused" in run.stdout and "Traceback" not in run.stdout
    assert not os.path.exists(marker)


def test_every_file_the_project_writes_loads_without_unpickling_code(run_dir):
    for name in ("encoder_ddp.pth", "encoder_ddp.safetensors", "training_model_ddp.pth"):
        assert isinstance(simple_ijepa.load_encoder(str(run_dir / name)), simple_ijepa.VisionTransformer)
    steps = sorted((run_dir / "checkpoints").glob("*.pth"))
    assert steps and all(torch.load(p, weights_only=True)["format"] == TRAIN_FORMAT for p in steps)


def malformed(run_dir, tmp_path):
    """(name, path, field the error must name): our files with one field broken."""
    enc = torch.load(run_dir / "encoder_ddp.pth", weights_only=True)
    tr = torch.load(run_dir / "training_model_ddp.pth", weights_only=True)
    vc = enc["vit_config"]
    cases = {
        "no vit_config": ({k: v for k, v in enc.items() if k != "vit_config"}, "vit_config"),
        "vit_config missing keys": ({**enc, "vit_config": {"image_size": 16}}, "vit_config"),
        "vit_config a list": ({**enc, "vit_config": [16, 4]}, "vit_config"),
        "vit_config a string dim": ({**enc, "vit_config": {**vc, "dim": "32"}}, "vit_config.dim"),
        "vit_config zero depth": ({**enc, "vit_config": {**vc, "depth": 0}}, "vit_config.depth"),
        "state_dict not tensors": ({**enc, "state_dict": {"w": [1, 2]}}, "state_dict"),
        "state_dict wrong shape": ({**enc, "vit_config": {**vc, "dim": 48}}, "state_dict"),
        "state_dict missing keys": ({**enc, "state_dict": {}}, "state_dict"),
        "training: config a string": ({**tr, "config": "x"}, "config"),
        "training: model wrong shape": ({**tr, "model": {k: v[..., :1] if v.ndim else v
                                                         for k, v in tr["model"].items()}}, "model"),
        "training: unknown variant": ({**tr, "variant": "other"}, "variant"),
        "training: step negative": ({**tr, "step": -3}, "step"),
        "training: optimizer missing": ({k: v for k, v in tr.items() if k != "optimizer"}, "optimizer"),
    }
    out = []
    for name, (blob, field) in cases.items():
        path = str(tmp_path / (name.replace(" ", "_").replace(":", "") + ".pth"))
        torch.save(blob, path)
        out.append((name, path, field))
    return out


def test_malformed_files_name_the_file_and_the_field(run_dir, tmp_path):
    for name, path, field in malformed(run_dir, tmp_path):
        loaders = every_loader(path, tmp_path)
        for loader in ("load_encoder", "resume", "export") if "training" in name else ("load_encoder", "export"):
            with pytest.raises(CheckpointError) as e:
                loaders[loader]()
            assert path in str(e.value) and f"`{field}" in str(e.value), (name, loader, str(e.value))
    path = str(tmp_path / "encoder_ddp.pth")
    os.mkdir(path)
    with pytest.raises(CheckpointError, match="is a directory; pass a checkpoint file inside it"):
        simple_ijepa.load_encoder(path)


def test_a_safetensors_file_with_bad_metadata_is_a_clear_error(run_dir, tmp_path):
    from safetensors.torch import save_file

    path = str(tmp_path / "bad.safetensors")
    save_file({"w": torch.zeros(1)}, path, metadata={"format": ENCODER_FORMAT, "vit_config": '{"dim": 3}'})
    with pytest.raises(CheckpointError, match="vit_config"):
        simple_ijepa.load_encoder(path)


def numeric_keys(cfg, prefix=""):
    for key, value in cfg.items():
        if OmegaConf.is_dict(value):
            yield from numeric_keys(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


# Keys where 0 works (an "off" switch, a floor, an index) and where -1 works (gate_gamma must be negative).
ZERO_WORKS = {"seed", "model.sigreg_weight", "model.global_weight", "model.lambda_gates", "optim.weight_decay",
              "optim.warmup_fraction",
              "optim.min_lr", "optim.grad_clip", "dataloader.num_workers", "ema.gamma",
              "ema.update_gamma_after_step", "logging.keep_last", "data.decode_cache_mb"}
NEGATIVE_WORKS = {"model.gate_gamma"}


def test_every_numeric_key_rejects_values_that_cannot_work():
    """0, -1, NaN and infinity for every number of TrainConfig: a ConfigError naming the key, unless
    the value is listed above as one that works."""
    keys = dict(numeric_keys(OmegaConf.structured(TrainConfig)))
    keys.update({"model.gate_layer_index": 0, "optim.weight_decay_end": 0.4, "mask.context_budget": 0.25})
    assert len(keys) >= 40
    for key, default in keys.items():  # (an integer key refuses NaN itself: OmegaConf's type check names it)
        for bad in (0, -1) + ((math.nan, math.inf) if isinstance(default, float) else ()):
            works = (bad == 0 and key in ZERO_WORKS | {"model.gate_layer_index", "optim.weight_decay_end"}) or (
                bad == -1 and key in NEGATIVE_WORKS)
            if works:
                validate(make_config([f"{key}={bad}"]))
                continue
            with pytest.raises(ConfigError) as e:
                validate(make_config([f"{key}={bad}"]))
            assert f"`{key}`" in str(e.value), (key, bad, str(e.value))


def test_nan_making_gate_and_target_settings_are_config_errors():
    for overrides, key in ((["variant=gated", "model.gate_exp_alpha=0"], "model.gate_exp_alpha"),
                           (["variant=gated", "model.gate_exp_alpha=0", "model.gate_target_open=null"],
                            "model.gate_exp_alpha"),
                           (["model.target_center=true", "dataloader.batch_size=1"], "model.target_center"),
                           (["mask.context_budget=1.0"], "mask.context_budget"),
                           (["ema.gamma=0.99", "ema.gamma_end=0.9"], "ema.gamma_end")):
        with pytest.raises(ConfigError, match=f"`{key}`"):
            validate(make_config(overrides))


def test_safetensors_files_get_the_same_mode_as_other_files(tmp_path):
    """safetensors writes 0600; an exported .safetensors is as readable as a .pth beside it (umask 022: 0644)."""
    import stat

    import torch

    from simple_ijepa.checkpoints import atomic_save, save_safetensors

    old = os.umask(0o022)
    try:
        save_safetensors({"w": torch.zeros(2)}, str(tmp_path / "a.safetensors"), {})
        atomic_save({"w": torch.zeros(2)}, str(tmp_path / "a.pth"))
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.safetensors": 0o644, "a.pth": 0o644}

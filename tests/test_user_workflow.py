"""What a new user does after `pip install`: train with `python -m simple_ijepa.train` from any folder,
find everything in the run folder, probe with defaults from the encoder file, read results as JSON,
use the Python API and the examples."""
import json
import os

import pytest
import torch
from helpers import PYTHON, REPO, TINY_MODEL, run_cli

from simple_ijepa.cli import checks
from simple_ijepa.cli.evaluate import parse_args as evaluate_args
from simple_ijepa.training.trainer import make_config, train

DIGITS = TINY_MODEL + ["data.dataset_name=digits", "dataloader.batch_size=16", "dataloader.num_workers=0",
                       "eval.enabled=false", "optim.precision=fp32"]
EXAMPLES = os.path.join(REPO, "examples")


@pytest.mark.slow
def test_train_module_from_another_folder_records_the_run_and_evaluate_writes_json(tmp_path):
    """`python -m simple_ijepa.train`: the run folder holds config.yaml, env.json, train.log beside
    the checkpoints and metrics; nothing else is written where the command ran (no ./outputs/).
    `evaluate` without --dataset_name takes the encoder's training set and writes --output JSON."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    run = run_cli([PYTHON, "-m", "simple_ijepa.train", *DIGITS, "optim.max_steps=2", "logging.save_model_dir=run"],
                  cwd=cwd)
    assert run.returncode == 0, run.stdout
    assert os.listdir(cwd) == ["run"]  # no outputs/, no .hydra/, no train.log outside the run folder
    folder = cwd / "run"
    for name in ("config.yaml", "env.json", "train.log", "run.json", "metrics.jsonl", "encoder_ddp.pth"):
        assert (folder / name).is_file(), name
    env = json.loads((folder / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["world_size"] == 1 and "simple_ijepa.train" in env["command"]
    assert {"simple_ijepa", "git_commit", "python", "cuda", "devices"} <= set(env)
    assert "max_steps: 2" in (folder / "config.yaml").read_text()
    assert "Done: 2 steps" in (folder / "train.log").read_text()

    out = run_cli([PYTHON, "-m", "simple_ijepa.evaluate", "--ckpt-path", "run/encoder_ddp.safetensors",
                   "--max_train_samples", "200", "--output", "results.json"], cwd=cwd)
    assert out.returncode == 0, out.stdout
    result = json.loads((cwd / "results.json").read_text())
    assert result["dataset_name"] == "digits" and result["train_images"] == 200
    assert set(result["results"]) == {"pretrained", "random init", "raw pixels"}
    assert all(0 <= r["probe_acc"] <= 1 and 0 <= r["knn_acc"] <= 1 for r in result["results"].values())


def test_a_resumed_run_keeps_its_earlier_start_in_env_json(tmp_path):
    base = DIGITS + ["logging.log_every_n_steps=1", f"logging.save_model_dir={tmp_path}"]
    train(make_config(base + ["optim.max_steps=1"]))
    train(make_config(base + ["optim.max_steps=2", "logging.ckpt_path=auto"]))
    env = json.loads((tmp_path / "env.json").read_text())
    assert len(env["earlier_starts"]) == 1 and "earlier_starts" not in env["earlier_starts"][0]
    log = (tmp_path / "train.log").read_text()
    assert log.count("Done: 1 steps") == 1 and "Resumed from" in log and log.count("Done: 2 steps") == 1


def test_the_encoder_file_records_its_training_data_and_the_tools_default_to_it(tmp_path):
    from simple_ijepa.checkpoints import training_data
    from simple_ijepa.cli.evaluate import dataset_defaults

    out = train(make_config(DIGITS + ["optim.max_steps=1", f"logging.save_model_dir={tmp_path}"]))
    for path in (out["encoder_checkpoint"], out["encoder_checkpoint"][:-4] + ".safetensors", out["train_checkpoint"]):
        assert training_data(path) == {"dataset_name": "digits", "dataset_path": "./data"}, path
        args = dataset_defaults(evaluate_args(["--ckpt_path", path]))
        assert (args.dataset_name, args.dataset_path) == ("digits", "./data")
    args = dataset_defaults(evaluate_args(["--ckpt_path", out["encoder_checkpoint"], "--dataset_name", "stl10"]))
    assert (args.dataset_name, args.dataset_path) == ("stl10", "./data")  # another set: its own default folder


def test_flags_take_hyphens_too_and_help_shows_defaults(capsys):
    args = evaluate_args(["--ckpt-path", "x.pth", "--max-train-samples=50", "--knn_k", "5"])
    assert (args.ckpt_path, args.max_train_samples, args.knn_k) == ("x.pth", 50, 5)
    with pytest.raises(SystemExit):
        evaluate_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # (argparse wraps the lines)
    assert "(default: 256)" in text and "(default: calibrated)" in text and "--output FILE.json" in text


def test_json_output_is_checked_before_work_and_written_atomically(tmp_path):
    from simple_ijepa.errors import ConfigError

    with pytest.raises(ConfigError, match="--output"):
        checks.json_output(str(tmp_path))  # a folder
    with pytest.raises(ConfigError, match="does not exist"):
        checks.json_output(str(tmp_path / "missing" / "r.json"))
    path = tmp_path / "r.json"
    checks.write_json(str(path), {"a": torch.tensor(0.5), "b": [1, 2]})
    checks.write_json(str(path), {"a": 1.0})  # replaced
    assert json.loads(path.read_text()) == {"a": 1.0} and os.listdir(tmp_path) == ["r.json"]


def test_a_text_file_that_fails_to_write_leaves_the_old_one_whole(tmp_path):
    from simple_ijepa.utils.atomic import write_text_atomic

    path = tmp_path / "run.json"
    write_text_atomic(str(path), "old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(str(path), "half written \ud800")  # fails inside the write
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["run.json"]


def test_demo_writes_its_figures_as_json(tmp_path, monkeypatch):
    from simple_ijepa.cli.demo import main as demo

    monkeypatch.chdir(tmp_path)
    results = demo(["--output", "demo.json", *TINY_MODEL, "optim.max_steps=2", "dataloader.batch_size=16",
                    "model.image_size=16", "model.patch_size=4"])
    written = json.loads((tmp_path / "demo.json").read_text())
    assert written["steps"] == 2 and written["dataset_name"] == "digits"
    assert set(written["results"]) == {"EMA teacher", "student", "random init", "raw pixels"}
    assert written["results"]["raw pixels"] == pytest.approx(results["raw pixels"])


def test_the_python_api_exports_what_the_readme_uses():
    import simple_ijepa

    for name in ("make_config", "train", "load_encoder", "save_encoder", "build_model", "build_masks",
                 "build_dataset", "IJEPA", "GatedIJEPA", "VisionTransformer", "LinearProbe"):
        assert callable(getattr(simple_ijepa, name)), name
    import simple_ijepa.train  # noqa: F401  (the module of `python -m simple_ijepa.train`, in the function's name)

    assert callable(simple_ijepa.train)


@pytest.mark.slow
def test_the_examples_run(tmp_path):
    train_loop = run_cli([PYTHON, os.path.join(EXAMPLES, "own_training_loop.py"), "--steps", "2",
                          "--out", "enc.pth"], cwd=tmp_path)
    assert train_loop.returncode == 0 and "step 2: loss" in train_loop.stdout, train_loop.stdout
    from PIL import Image

    for i in range(3):
        Image.fromarray((torch.rand(20, 30, 3) * 255).byte().numpy()).save(tmp_path / f"im{i}.png")
    features = run_cli([PYTHON, os.path.join(EXAMPLES, "encoder_features.py"), "enc.pth", "im0.png", "im1.png",
                        "im2.png", "--out", "f.npz"], cwd=tmp_path)
    assert features.returncode == 0, features.stdout
    import numpy as np

    f = np.load(tmp_path / "f.npz")
    assert f["features"].shape == (3, 192) and np.isfinite(f["features"]).all()


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    """README's ```python block, as written, with a smaller model and 2 steps in a tmp folder."""
    import re

    import simple_ijepa

    with open(os.path.join(REPO, "README.md")) as f:
        code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
    make_config_as_written = simple_ijepa.make_config
    small = ["model.hidden_dim=32", "model.depth=2", "model.heads=2", "model.head_dim=16", "model.predictor_dim=32",
             "model.predictor_depth=1", "optim.max_steps=2", "dataloader.batch_size=16", "eval.enabled=false"]
    monkeypatch.setattr(simple_ijepa, "make_config", lambda overrides: make_config_as_written(overrides + small))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["summary"]["step"] == 2 and (tmp_path / "runs" / "api" / "env.json").is_file()
    assert namespace["features"].shape == (8, 32)


def test_a_run_record_that_cannot_be_written_does_not_stop_the_run(tmp_path, monkeypatch, caplog):
    from simple_ijepa.training.loggers import run_record

    def no_space(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_record, "write_text_atomic", no_space)
    out = train(make_config(DIGITS + ["optim.max_steps=1", f"logging.save_model_dir={tmp_path}"]))
    assert out["step"] == 1 and (tmp_path / "encoder_ddp.pth").is_file()
    assert "run record (config.yaml, env.json, train.log) failed" in caplog.text

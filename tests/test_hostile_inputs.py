"""Hostile inputs to every tool and entry point: each is refused before any work, with exit status 2
and one line, `error: ...`, that names the argument or key; never a traceback."""
import os

import pytest
from helpers import PYTHON, RUN_DDP, TINY_MODEL, run_cli

from simple_ijepa.checkpoints import save_encoder
from simple_ijepa.cli import demo, evaluate, export, finetune, gates, visualize
from simple_ijepa.config import make_config, validate
from simple_ijepa.errors import ConfigError, run_command, user_error_message
from simple_ijepa.models.vit import VisionTransformer, ViTConfig

TINY = dict(image_size=32, patch_size=8, dim=32, depth=2, heads=2, head_dim=16, mlp_ratio=2.0)
DIGITS = TINY_MODEL + ["data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                       "dataloader.batch_size=32", "dataloader.num_workers=0", "eval.enabled=false"]
PROC = "/proc/simple-ijepa-cannot-write-here"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux's /proc (no file can be made there)")


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("encoder") / "encoder_ddp.pth")
    save_encoder(VisionTransformer(ViTConfig(**TINY)), path)
    return path


@pytest.fixture
def no_work(monkeypatch):
    """Every loader and worker of the tools fails the test if called: the checks come first."""
    def never(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    for module, names in ((evaluate, ("load_checkpoint", "LinearProbe")), (finetune, ("load_encoder", "finetune")),
                          (visualize, ("load_checkpoint", "build_dataset")), (gates, ("build_dataset",)),
                          (export, ("load_encoder", "from_official", "save_timm", "save_hf", "save_encoder"))):
        for name in names:
            monkeypatch.setattr(module, name, never)
    import simple_ijepa.analysis.gate_analysis as gate_analysis

    monkeypatch.setattr(gate_analysis, "load_gated_model", never)


def refused(main, argv: list[str], capsys) -> str:
    """Run a tool's main as its console script does; assert exit status 2 and one line; return it."""
    with pytest.raises(SystemExit) as e:
        run_command(lambda: main(argv))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- argument values: refused while parsing ------------------------------------------------------
SOURCE = ["--ckpt_path", "x.pth", "--dataset_name", "digits"]
ARGUMENTS = [
    (evaluate, SOURCE, "--batch_size", "0"), (evaluate, SOURCE, "--max_train_samples", "-5"),
    (evaluate, SOURCE, "--max_test_samples", "1"), (evaluate, SOURCE, "--num_workers", "-1"),
    (evaluate, SOURCE, "--device", "tpu9"), (evaluate, SOURCE, "--device", "cuda:99"),
    (evaluate, SOURCE, "--dataset_name", "bogus"), (evaluate, SOURCE, "--seed", "4294967296"),
    (evaluate, SOURCE, "--knn_k", "many"), (evaluate, SOURCE, "--n_last_blocks", "0"),
    (visualize, SOURCE, "--batch_size", "0"), (visualize, SOURCE, "--max_train_samples", "-5"),
    (visualize, SOURCE, "--device", "tpu9"), (visualize, SOURCE, "--k", "0"),
    (finetune, SOURCE, "--batch_size", "0"), (finetune, SOURCE, "--max_train_samples", "-5"),
    (finetune, SOURCE, "--epochs", "0"), (finetune, SOURCE, "--device", "tpu9"), (finetune, SOURCE, "--seed", "-1"),
    (finetune, SOURCE, "--lr", "nan"), (finetune, SOURCE, "--weight_decay", "nan"),
    (finetune, SOURCE, "--layer_decay", "2"),
    (gates, ["--ckpt_path", "x.pth"], "--num_batches", "0"), (gates, ["--ckpt_path", "x.pth"], "--batch_size", "0"),
    (gates, ["--ckpt_path", "x.pth"], "--num_workers", "-1"), (gates, ["--ckpt_path", "x.pth"], "--device", "tpu9"),
    (gates, ["--ckpt_path", "x.pth"], "--dataset_name", "bogus"),
    (export, ["--from_official", "x.pth.tar", "--out", "y.pth"], "--heads", "0"),
]


@pytest.mark.parametrize("tool,base,flag,value", ARGUMENTS,
                         ids=[f"{t.__name__.split('.')[-1]} {f} {v}" for t, _, f, v in ARGUMENTS])
def test_a_bad_argument_value_is_one_line_naming_it(tool, base, flag, value, capsys, no_work):
    line = refused(tool.main, base + [flag, value], capsys)
    assert f"argument {flag}" in line and "--help" in line


def test_a_missing_argument_is_one_line_too(capsys, no_work):
    assert "--ckpt_path" in refused(evaluate.main, ["--dataset_name", "digits"], capsys)
    assert "--ckpt_path" in refused(gates.main, [], capsys)


# --- output paths: checked before anything is loaded --------------------------------------------
@needs_proc
@pytest.mark.parametrize("tool", [finetune, gates, visualize], ids=lambda t: t.__name__.split(".")[-1])
def test_an_output_folder_that_cannot_be_written_is_refused_first(tool, encoder_file, tmp_path, capsys, no_work):
    line = refused(tool.main, ["--ckpt_path", encoder_file, "--out_dir", PROC], capsys)
    assert "--out_dir" in line and "cannot write" in line
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out_dir in (blocker, blocker / "below"):
        line = refused(tool.main, ["--ckpt_path", encoder_file, "--out_dir", str(out_dir)], capsys)
        assert "--out_dir" in line and "file" in line
    assert blocker.read_text() == "x"


@needs_proc
def test_export_outputs_are_checked_before_the_encoder_is_read(encoder_file, tmp_path, capsys, no_work):
    existing = tmp_path / "taken.safetensors"
    existing.write_text("x")
    cases = [(["--timm", f"{PROC}.safetensors"], "--timm", "cannot write"),
             (["--out", str(tmp_path / "missing" / "x.pth")], "--out", "does not exist"),
             (["--hf", str(existing)], "--hf", "existing file"),
             (["--timm", str(existing)], "--timm", "--overwrite"),
             (["--out", encoder_file], "--out", "input file"),
             (["--out", str(tmp_path / "x.pth"), "--timm", str(tmp_path / "x.safetensors")], "--out", "--timm")]
    for args, flag, why in cases:
        line = refused(export.main, ["--ckpt_path", encoder_file] + args, capsys)
        assert flag in line and why in line, line
    assert existing.read_text() == "x" and not (tmp_path / "missing").exists()


def test_export_replaces_a_file_with_overwrite_only(encoder_file, tmp_path, capsys):
    out = str(tmp_path / "copy.pth")
    export.main(["--ckpt_path", encoder_file, "--out", out])
    assert "--overwrite" in refused(export.main, ["--ckpt_path", encoder_file, "--out", out], capsys)
    export.main(["--ckpt_path", encoder_file, "--out", out, "--overwrite"])


def test_export_hf_into_a_folder_with_other_files_or_an_earlier_export(encoder_file, tmp_path, capsys, no_work):
    """--hf never mixes its files with others: a folder with other files is refused, an earlier export is
    replaced only with --overwrite (nothing is read before the refusal: no_work)."""
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "pytorch_model.bin").write_text("another model")
    assert "other files (pytorch_model.bin)" in refused(export.main, ["--ckpt_path", encoder_file, "--hf", str(stale)],
                                                        capsys)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "config.json").write_text("{}")
    assert "--overwrite" in refused(export.main, ["--ckpt_path", encoder_file, "--hf", str(earlier)], capsys)
    assert (earlier / "config.json").read_text() == "{}" and (stale / "pytorch_model.bin").exists()


def test_student_of_an_encoder_file_is_an_error(encoder_file, tmp_path, capsys, monkeypatch, no_work):
    monkeypatch.chdir(tmp_path)
    for path in (encoder_file, encoder_file.replace(".pth", ".safetensors")):
        for tool in (evaluate, visualize, finetune):
            line = refused(tool.main, ["--ckpt_path", path, "--dataset_name", "digits", "--student"], capsys)
            assert "--student" in line and "no student" in line


# --- configuration values that validate used to accept -----------------------------------------
@pytest.mark.parametrize("override,key", [
    ("seed=4294967296", "seed"), ("seed=-1", "seed"), ("model.mlp_ratio=0.001", "model.mlp_ratio"),
    ("model.predictor_mlp_ratio=0.001", "model.predictor_mlp_ratio"),
    ("logging.log_every_n_steps=10000000000", "logging.log_every_n_steps"),
    ("logging.log_every_n_steps=0", "logging.log_every_n_steps")])
def test_validate_bounds_what_would_fail_later(override, key):
    with pytest.raises(ConfigError, match=f"`{key}`"):
        validate(make_config([override]))


def test_the_seed_bound_counts_every_rank(monkeypatch):
    validate(make_config(["seed=4294967295", "logging.log_every_n_steps=1000000"]))  # numpy's largest seed
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="`seed`.*4294967292"):
        validate(make_config(["seed=4294967295"]))


def test_config_errors_of_omegaconf_read_as_ours(capsys):
    line = refused(demo.main, ["model.depth=two"], capsys)
    assert line.startswith("error: Invalid config `model.depth`: ") and "two" in line
    line = refused(demo.main, ["model.not_a_key=1"], capsys)
    assert line.startswith("error: Invalid config `model.not_a_key`: no such key")


def test_the_non_finite_loss_guard_is_a_user_error():
    from simple_ijepa.training.trainer import NonFiniteLoss

    assert user_error_message(NonFiniteLoss("Loss is nan at step 3: training diverged.")).startswith("Loss is nan")
    assert user_error_message(RuntimeError("a bug")) is None


# --- the entry points, as users start them --------------------------------------------------------
def one_line(run) -> str:
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stdout and lines[-1].startswith("error: "), run.stdout
    assert len(lines) == 1, run.stdout
    return lines[0]


@pytest.mark.slow
def test_every_training_entry_point_prints_the_same_line(tmp_path):
    """run_ddp.py (Hydra) and the demo (make_config) give one and the same line, for a bad override and
    for a value validate refuses."""
    for override, expected in (("model.depth=two", "`model.depth`: Value 'two'"),
                               ("model.not_a_key=1", "`model.not_a_key`: no such key"),
                               ("experiment=bogus", "`experiment`: no preset 'bogus'"),
                               ("seed=4294967296", "`seed`: must be in [0, 4294967295]")):
        lines = {one_line(run_cli(args + [override], cwd=tmp_path, timeout=120))
                 for args in ([PYTHON, RUN_DDP], [PYTHON, "-m", "simple_ijepa.demo"])}
        assert len(lines) == 1 and expected in lines.pop(), lines
    # Hydra's own parse errors name the override (python -m simple_ijepa.train, the documented command)
    for override in ("optim.learning_rate", "data.crop_scale=[0.3"):
        line = one_line(run_cli([PYTHON, "-m", "simple_ijepa.train", override], cwd=tmp_path, timeout=120))
        assert line.startswith(f"error: Invalid override {override!r}"), line
    assert not os.listdir(tmp_path)  # nothing written where the commands ran


POISONED = """
import sys
from simple_ijepa.cli.train import main
from simple_ijepa.models.ijepa import IJEPA
forward = IJEPA.forward
IJEPA.forward = lambda self, *args: (lambda loss, stats: (loss * float("nan"), stats))(*forward(self, *args))
main()
"""


@pytest.mark.slow
def test_a_non_finite_loss_is_one_line_from_the_training_command(tmp_path):
    run = run_cli([PYTHON, "-c", POISONED] + DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=1",
                                                        "logging.save_model_dir=run"], cwd=tmp_path, timeout=180)
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stdout, run.stdout
    assert lines[-1].startswith("error: Loss is nan at step 1") and sum("error" in x.lower() for x in lines) == 1
    log = (tmp_path / "run" / "train.log").read_text()  # the run's own log keeps how it ended
    assert "the run ended with an error: NonFiniteLoss: Loss is nan at step 1" in log


@needs_proc
@pytest.mark.slow
def test_the_tool_modules_refuse_in_one_line(tmp_path):
    run = run_cli([PYTHON, "-m", "simple_ijepa.export", "--ckpt_path", "x.pth", "--timm", f"{PROC}.safetensors"],
                  cwd=tmp_path, timeout=120)
    assert "--timm" in one_line(run)
    run = run_cli([PYTHON, "-m", "simple_ijepa.gate_experiments", "--ckpt_path", "x.pth", "--num_batches", "0"],
                  cwd=tmp_path, timeout=120)
    assert "argument --num_batches" in one_line(run)

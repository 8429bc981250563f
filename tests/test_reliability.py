"""Preemption, atomic checkpoints, the loss guard, multi-node, bad inputs, encoder export, plots."""
import os
import signal
import socket
import subprocess
import time

import pytest
import torch
from helpers import PYTHON, REPO, RUN_DDP, TINY_MODEL, TORCHRUN, run_cli

import simple_ijepa
from simple_ijepa.errors import CheckpointError, ConfigError
from simple_ijepa.models.ijepa import IJEPA
from simple_ijepa.training import checkpoint as ckpt_mod
from simple_ijepa.training.trainer import PREEMPTED_EXIT_CODE, NonFiniteLoss, make_config, train

DIGITS = TINY_MODEL + ["data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                       "dataloader.batch_size=32", "dataloader.num_workers=0", "eval.enabled=false"]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(make_config(DIGITS + ["optim.max_steps=4", "logging.log_every_n_steps=2", f"logging.save_model_dir={run_dir}"]))
    return run_dir


def test_sigterm_saves_a_checkpoint_and_auto_resumes(tmp_path):
    args = [PYTHON, RUN_DDP] + DIGITS + ["optim.max_steps=100000", "logging.log_every_n_steps=100000",
                                          "logging.save_model_dir=run"]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while "simple-ijepa: variant" not in (tmp_path / "log.txt").read_text() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == PREEMPTED_EXIT_CODE
    state = torch.load(tmp_path / "run" / "training_model_ddp.pth", weights_only=False)
    assert state["step"] > 0 and state["step"] % 10 == 0  # the step in flight finished, then saved
    resumed = run_cli(args[:-3] + [f"optim.max_steps={state['step'] + 2}", "logging.log_every_n_steps=1000",
                                   "logging.save_model_dir=run", "logging.ckpt_path=auto"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"at step {state['step']}" in resumed.stdout


def test_a_write_killed_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "training_model_ddp.pth")
    ckpt_mod.atomic_save({"step": 1}, path)

    def dying_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", dying_save)
    with pytest.raises(OSError):
        ckpt_mod.atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1
    assert os.listdir(tmp_path) == ["training_model_ddp.pth"]  # no temporary left behind


def test_non_finite_loss_stops_naming_the_step(tmp_path, monkeypatch):
    forward, calls = IJEPA.forward, []

    def poisoned(self, *args):
        loss, stats = forward(self, *args)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), stats

    monkeypatch.setattr(IJEPA, "forward", poisoned)
    with pytest.raises(NonFiniteLoss, match="at step 3"):
        train(make_config(DIGITS + ["optim.max_steps=8", "logging.log_every_n_steps=4",
                                    f"logging.save_model_dir={tmp_path}"]))
    assert not (tmp_path / "training_model_ddp.pth").exists()  # nothing corrupt was saved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_rendezvous_and_finish_with_identical_weights(fake_stl10, tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    launchers = []
    for node in (0, 1):
        args = [TORCHRUN, "--nnodes=2", f"--node_rank={node}", "--nproc_per_node=1", "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=test", RUN_DDP, f"data.dataset_path={fake_stl10}",
                "dataloader.batch_size=16", "dataloader.num_workers=0", "optim.max_steps=3",
                "logging.log_every_n_steps=3", "eval.enabled=false", f"logging.save_model_dir=node{node}"] + TINY_MODEL
        launchers.append(subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    assert "Weights identical on all 2 ranks" in outs[0]
    assert "2 process(es) on cpu" in outs[0]
    assert (tmp_path / "node0" / "training_model_ddp.pth").is_file()  # global rank 0 writes


def test_bad_checkpoints_are_clear_errors(baseline_run, tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    base = DIGITS + ["optim.max_steps=5", f"logging.save_model_dir={tmp_path / 'out'}"]
    with pytest.raises(CheckpointError, match="corrupt"):
        train(make_config(base + [f"logging.ckpt_path={corrupt}"]))
    good = baseline_run / "training_model_ddp.pth"
    with pytest.raises(CheckpointError, match="variant=baseline"):
        train(make_config(base + ["variant=gated", f"logging.ckpt_path={good}"]))
    with pytest.raises(CheckpointError, match="model.hidden_dim: checkpoint 32 vs run 48"):
        train(make_config(base + ["model.hidden_dim=48", f"logging.ckpt_path={good}"]))
    with pytest.raises(CheckpointError, match="encoder file"):
        train(make_config(base + [f"logging.ckpt_path={baseline_run / 'encoder_ddp.pth'}"]))
    with pytest.raises(CheckpointError, match="no such file"):
        train(make_config(base + [f"logging.ckpt_path={tmp_path / 'missing.pth'}"]))


def test_bad_run_settings_are_clear_errors(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="logging.save_model_dir"):
        train(make_config(DIGITS + [f"logging.save_model_dir={blocker / 'models'}"]))
    with pytest.raises(ConfigError, match="dataloader.batch_size"):
        train(make_config(DIGITS + ["dataloader.batch_size=5000", f"logging.save_model_dir={tmp_path}"]))
    for override, key in (("variant=jepa", "variant"), ("data.dataset_name=mnist", "data.dataset_name"),
                          ("mask.target_scale=[0.5,0.2]", "mask.target_scale")):
        run = run_cli([PYTHON, RUN_DDP, override], cwd=tmp_path)
        assert run.returncode == 2 and f"`{key}`" in run.stdout and "Traceback" not in run.stdout
    for override in ("model.not_a_key=1", "model.depth=six"):  # Hydra's own messages name the key
        run = run_cli([PYTHON, RUN_DDP, override], cwd=tmp_path)
        assert run.returncode == 1 and override.split("=")[0] in run.stdout
    run = run_cli([PYTHON, RUN_DDP, "+model.not_a_key=1"], cwd=tmp_path)
    assert run.returncode == 2 and "model.not_a_key" in run.stdout


def test_tensorboard_logging_or_a_clear_error(tmp_path):
    cfg = make_config(DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=1", "logging.tensorboard=true",
                                f"logging.save_model_dir={tmp_path}"])
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install tensorboard"):
            train(cfg)
    else:
        train(cfg)
        assert os.listdir(tmp_path / "tensorboard")


def test_load_encoder_from_every_file_kind(baseline_run):
    state = torch.load(baseline_run / "training_model_ddp.pth", weights_only=False)
    images = torch.randn(2, 3, 16, 16)
    ref = None
    for name in ("encoder_ddp.pth", "encoder_ddp.safetensors", "training_model_ddp.pth"):
        encoder = simple_ijepa.load_encoder(str(baseline_run / name))
        assert isinstance(encoder, simple_ijepa.VisionTransformer) and not encoder.training
        assert encoder.config.image_size == 16 and encoder.config.dim == 32
        with torch.no_grad():
            out = encoder(images)
        ref = out if ref is None else ref
        assert torch.equal(out, ref)
    teacher = {k[len("target_encoder."):]: v for k, v in state["model"].items() if k.startswith("target_encoder.")}
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in teacher.items())
    student = simple_ijepa.load_encoder(str(baseline_run / "training_model_ddp.pth"), teacher=False)
    assert not all(torch.equal(student.state_dict()[k], v) for k, v in teacher.items())


def test_plots_written_at_the_end_and_on_demand(baseline_run, tmp_path):
    assert (baseline_run / "loss.png").stat().st_size > 1000
    os.remove(baseline_run / "loss.png")
    run = run_cli([PYTHON, "-m", "simple_ijepa.plots", str(baseline_run)], cwd=tmp_path)
    assert run.returncode == 0 and (baseline_run / "loss.png").is_file()

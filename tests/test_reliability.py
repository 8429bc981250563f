"""Preemption, atomic checkpoints, the loss guard, multi-node, bad inputs, encoder export, plots."""
import json
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import torch
from helpers import PYTHON, REPO, RUN_DDP, TINY_MODEL, TORCHRUN, run_cli

import simple_ijepa
from simple_ijepa import checkpoints as ckpt_mod
from simple_ijepa.errors import CheckpointError, ConfigError
from simple_ijepa.models.ijepa import IJEPA
from simple_ijepa.training.trainer import PREEMPTED_EXIT_CODE, NonFiniteLoss, make_config, train

DIGITS = TINY_MODEL + ["data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                       "dataloader.batch_size=32", "dataloader.num_workers=0", "eval.enabled=false"]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(make_config(DIGITS + ["optim.max_steps=4", "logging.log_every_n_steps=2",
                                f"logging.save_model_dir={run_dir}"]))
    return run_dir


def start_training(args: list[str], cwd, log_name: str) -> subprocess.Popen:
    """Start `args` in `cwd`, logging to cwd/log_name, and return once the run has started training."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    with open(cwd / log_name, "w") as log:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while "simple-ijepa: variant" not in (cwd / log_name).read_text() and time.time() < deadline:
        time.sleep(0.2)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_saves_a_checkpoint_and_auto_resumes(tmp_path, sig):
    args = [PYTHON, RUN_DDP] + DIGITS + ["optim.max_steps=100000", "logging.log_every_n_steps=100000",
                                          "logging.save_model_dir=run"]
    proc = start_training(args, tmp_path, "log.txt")
    time.sleep(1.0)
    proc.send_signal(sig)
    if sig == signal.SIGINT:
        proc.send_signal(sig)  # torchrun's agent passes the terminal's Ctrl-C on: the same stop, not a second
    assert proc.wait(timeout=120) == PREEMPTED_EXIT_CODE
    log = (tmp_path / "log.txt").read_text()
    assert "Traceback" not in log and "logging.ckpt_path=auto to continue" in log
    assert ("Ctrl-C: saving a checkpoint" in log) == (sig == signal.SIGINT)
    state = torch.load(tmp_path / "run" / "training_model_ddp.pth", weights_only=False)
    assert state["step"] > 0 and state["step"] % 10 == 0  # the step in flight finished, then saved
    resumed = run_cli(args[:-3] + [f"optim.max_steps={state['step'] + 2}", "logging.log_every_n_steps=1000",
                                   "logging.save_model_dir=run", "logging.ckpt_path=auto"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"at step {state['step']}" in resumed.stdout


def test_a_second_ctrl_c_stops_at_once_unless_it_is_the_first_passed_on(monkeypatch):
    from simple_ijepa.utils import preemption

    clock = [100.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    stop = preemption.StopSignal()
    try:
        stop._handle(signal.SIGINT, None)
        assert stop.requested
        clock[0] += 0.01
        stop._handle(signal.SIGINT, None)  # torchrun's agent passing the same Ctrl-C on: still a graceful stop
        clock[0] += preemption.SECOND_CTRL_C_AFTER_S + 1
        with pytest.raises(KeyboardInterrupt):
            stop._handle(signal.SIGINT, None)
    finally:
        stop.restore()


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


@pytest.mark.slow
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
    with pytest.raises(CheckpointError, match="model.hidden_dim: checkpoint 32, this run 48"):
        train(make_config(base + ["model.hidden_dim=48", f"logging.ckpt_path={good}"]))
    with pytest.raises(CheckpointError, match="encoder file"):
        train(make_config(base + [f"logging.ckpt_path={baseline_run / 'encoder_ddp.pth'}"]))
    with pytest.raises(CheckpointError, match="no such file"):
        train(make_config(base + [f"logging.ckpt_path={tmp_path / 'missing.pth'}"]))


@pytest.mark.slow
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
    for override in ("model.not_a_key=1", "model.depth=six"):  # Hydra's errors, in our one line
        run = run_cli([PYTHON, RUN_DDP, override], cwd=tmp_path)
        assert run.returncode == 2 and f"`{override.split('=')[0]}`" in run.stdout and "Traceback" not in run.stdout
    run = run_cli([PYTHON, RUN_DDP, "+model.not_a_key=1"], cwd=tmp_path)
    assert run.returncode == 2 and "model.not_a_key" in run.stdout


def test_tensorboard_logging_and_a_clear_error_without_it(tmp_path, monkeypatch):
    import importlib.util

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_config(DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=1", "logging.tensorboard=true",
                                f"logging.save_model_dir={tmp_path}"])
    train(cfg)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2]
    find_spec = importlib.util.find_spec

    def without_tensorboard(name, *args):
        return None if name == "tensorboard" else find_spec(name, *args)
    monkeypatch.setattr(importlib.util, "find_spec", without_tensorboard)
    with pytest.raises(ConfigError, match="`logging.tensorboard`.*pip install tensorboard"):
        train(cfg)


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


@pytest.mark.slow
def test_plots_written_at_the_end_and_on_demand(baseline_run, tmp_path):
    assert (baseline_run / "loss.png").stat().st_size > 1000
    os.remove(baseline_run / "loss.png")
    run = run_cli([PYTHON, "-m", "simple_ijepa.analysis.run_plots", str(baseline_run)], cwd=tmp_path)
    assert run.returncode == 0 and (baseline_run / "loss.png").is_file()
    missing = run_cli([PYTHON, "-m", "simple_ijepa.analysis.run_plots", str(tmp_path / "nope")], cwd=tmp_path)
    assert missing.returncode == 2 and "no metrics.jsonl" in missing.stdout and "Traceback" not in missing.stdout


# --- issue 11: monitors never stop a run; bad images; save dirs; resume checks; intervals -----------
def _png_folder(root, classes: int = 3, per_class: int = 3, size: int = 20) -> None:
    """class_k/img_i.png: small images with a per-class colour, so that a probe has something to find."""
    from PIL import Image

    rng = np.random.RandomState(0)
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.randint(0, 60, (size, size, 3)).astype(np.uint8)
            a[..., c % 3] += 150
            Image.fromarray(a).save(root / f"class_{c}" / f"img_{i}.png")


FOLDER = TINY_MODEL + ["data.dataset_name=folder", "model.image_size=16", "model.patch_size=4",
                       "dataloader.batch_size=4", "dataloader.num_workers=0", "optim.max_steps=2",
                       "logging.log_every_n_steps=2"]


def test_calibrated_probe_falls_back_when_a_class_has_too_few_samples(caplog):
    from simple_ijepa.evaluation.probe import linear_probe_accuracy

    rng = np.random.RandomState(0)
    y2, y1 = np.repeat(np.arange(3), 2), np.arange(3)
    x2, x1 = rng.randn(6, 5) + y2[:, None], rng.randn(3, 5) + y1[:, None]
    assert 0 <= linear_probe_accuracy(x2, y2, x2, y2, "calibrated") <= 1
    assert "2-fold calibration" in caplog.text
    assert 0 <= linear_probe_accuracy(x1, y1, x1, y1, "calibrated") <= 1
    assert "plain logistic regression" in caplog.text


def test_periodic_probe_on_a_tiny_labelled_folder_does_not_stop_training(tmp_path):
    _png_folder(tmp_path / "data", classes=3, per_class=3)  # ~2 training images per class
    out = train(make_config(FOLDER + [f"data.dataset_path={tmp_path / 'data'}", "eval.classifier=calibrated",
                                      f"logging.save_model_dir={tmp_path / 'run'}"]))
    assert out["step"] == 2 and 0 <= out["metrics"]["probe_teacher"] <= 1


def test_failing_monitors_warn_and_training_goes_on(tmp_path, monkeypatch, caplog):
    import simple_ijepa.evaluation
    from simple_ijepa.training import trainer

    def broken(*args):
        raise RuntimeError("disk full")

    for name in ("monitor_collapse", "plot_run"):
        monkeypatch.setattr(trainer, name, broken)
    monkeypatch.setattr(simple_ijepa.evaluation, "periodic_probes", broken)
    out = train(make_config(DIGITS + ["optim.max_steps=4", "logging.log_every_n_steps=2", "eval.enabled=true",
                                      "eval.max_train_samples=50", "eval.max_test_samples=20",
                                      f"logging.save_model_dir={tmp_path}"]))
    assert out["step"] == 4 and (tmp_path / "training_model_ddp.pth").is_file()
    for what in ("periodic probe", "collapse monitors", "plots"):
        assert f"{what} failed (RuntimeError: disk full); training goes on" in caplog.text


def test_bad_and_unusual_images_never_crash_a_run(tmp_path, caplog):
    from PIL import Image

    data = tmp_path / "data"  # no class folders: pretraining reads every file
    data.mkdir()
    rng = np.random.RandomState(1)
    for i in range(8):
        Image.fromarray((rng.rand(20, 20, 3) * 255).astype(np.uint8)).save(data / f"good_{i}.png")
    (data / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "empty.png").write_bytes(b"")
    rgb = (rng.rand(20, 20, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("P").save(data / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(data / "cmyk.jpg")
    Image.fromarray(rgb).convert("RGBA").save(data / "alpha.png")
    Image.fromarray((np.arange(400).reshape(20, 20) * 160).astype(np.uint16)).save(data / "deep.png")
    out = train(make_config(FOLDER + [f"data.dataset_path={data}", "dataloader.batch_size=14", "eval.enabled=false",
                                      f"logging.save_model_dir={tmp_path / 'run'}"]))
    assert out["step"] == 2
    assert "corrupt.jpg" in caplog.text and "empty.png" in caplog.text
    assert "4 unreadable image(s) were replaced by black images" in caplog.text  # 2 files x 2 epochs
    for name in ("palette.png", "cmyk.jpg", "alpha.png", "deep.png"):
        assert name not in caplog.text


def test_deep_and_exif_rotated_images_decode_as_they_look(tmp_path):
    from PIL import Image

    from simple_ijepa.data.datasets import decode_image

    ramp = (np.tile(np.arange(20), (20, 1)) * 3000).astype(np.uint16)  # 16-bit: 0 .. 57000
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    deep = decode_image(str(tmp_path / "deep.png"), 20)
    assert deep[0, 10, 0] < 20 and 200 < deep[0, 10, 19] < 230  # scaled, not clipped to white
    wide = np.zeros((10, 20, 3), np.uint8)
    wide[:, :10, 0], wide[:, 10:, 2] = 255, 255  # left red, right blue
    im = Image.fromarray(wide)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    shown = decode_image(str(tmp_path / "rotated.jpg"), 10)  # displayed: red on top, blue below
    assert shown[0, 1, 5] > 150 and shown[2, 1, 5] < 100 and shown[2, 8, 5] > 150 and shown[0, 8, 5] < 100


def test_a_run_folder_belongs_to_one_run(tmp_path):
    """run.json records the run; `auto` with another variant and an explicit checkpoint of another run
    are refused, naming both, and leave the folder's files as they were; a run continued in an empty
    folder keeps its run id; a metrics line cut off by a crash is dropped, not fatal."""
    a, b = tmp_path / "a", tmp_path / "b"
    run = DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=1"]
    train(make_config(run + [f"logging.save_model_dir={a}"]))
    train(make_config(run + [f"logging.save_model_dir={b}"]))
    ident_a, ident_b = (json.loads((d / "run.json").read_text()) for d in (a, b))
    assert ident_a["variant"] == "baseline" and ident_a["model"]["hidden_dim"] == 32
    assert ident_a["run_id"] != ident_b["run_id"]
    assert torch.load(a / "training_model_ddp.pth", weights_only=False)["run_id"] == ident_a["run_id"]
    before = {p: p.read_bytes() for p in b.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=f"holds run {ident_b['run_id']} \\(baseline"):
        train(make_config(run + [f"logging.save_model_dir={b}", "variant=gated", "logging.ckpt_path=auto"]))
    with pytest.raises(ConfigError, match=f"belongs to run {ident_a['run_id']}.*holds run {ident_b['run_id']}"):
        train(make_config(run + [f"logging.save_model_dir={b}", "optim.max_steps=3",
                                 f"logging.ckpt_path={a / 'training_model_ddp.pth'}"]))
    assert {p: p.read_bytes() for p in b.rglob("*") if p.is_file()} == before  # untouched

    c = tmp_path / "c"  # A continued in a new, empty folder: the same run
    out = train(make_config(run + [f"logging.save_model_dir={c}", "optim.max_steps=3",
                                   f"logging.ckpt_path={a / 'training_model_ddp.pth'}"]))
    assert out["step"] == 3 and json.loads((c / "run.json").read_text())["run_id"] == ident_a["run_id"]

    with open(a / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss": 0.')  # a write cut off by a crash
    out = train(make_config(run + [f"logging.save_model_dir={a}", "optim.max_steps=3", "logging.ckpt_path=auto"]))
    assert out["step"] == 3 and [json.loads(x)["step"] for x in (a / "metrics.jsonl").read_text().splitlines()] == [
        1, 2, 3]


def test_a_fresh_run_never_reuses_another_runs_save_dir(tmp_path):
    run = DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=1", f"logging.save_model_dir={tmp_path}"]
    train(make_config(run))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="logging.ckpt_path=auto.*new logging.save_model_dir.*logging.overwrite=true"):
        train(make_config(run + ["optim.max_steps=3"]))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # untouched
    out = train(make_config(run + ["optim.max_steps=3", "logging.overwrite=true"]))
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert out["step"] == 3 and steps == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "baseline_step_00000001.pth", "baseline_step_00000002.pth", "baseline_step_00000003.pth"]


def test_resume_names_every_changed_key(baseline_run, tmp_path, caplog):
    good = baseline_run / "checkpoints" / "baseline_step_00000002.pth"
    base = DIGITS + [f"logging.save_model_dir={tmp_path}", f"logging.ckpt_path={good}"]
    with pytest.raises(CheckpointError, match="data.dataset_name: checkpoint 'digits', this run 'fashion_mnist'"):
        train(make_config(base + ["data.dataset_name=fashion_mnist", "optim.max_steps=4"]))
    out = train(make_config(base + ["optim.max_steps=6", "logging.log_every_n_steps=3"]))
    assert out["step"] == 6
    assert "optim.max_steps: checkpoint 4, this run 6" in caplog.text
    assert "logging.log_every_n_steps: checkpoint 2, this run 3" in caplog.text


def test_resume_cuts_the_metrics_back_and_checkpoints_keep_their_own_interval(tmp_path):
    run = DIGITS + ["optim.max_steps=7", "logging.log_every_n_steps=2", "logging.ckpt_every_n_steps=3",
                    "logging.keep_last=10", f"logging.save_model_dir={tmp_path}"]
    train(make_config(run))
    assert sorted(p.name[-12:-4] for p in (tmp_path / "checkpoints").iterdir()) == ["00000003", "00000006", "00000007"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 7]
    ckpt3 = tmp_path / "checkpoints" / "baseline_step_00000003.pth"
    train(make_config(run + [f"logging.ckpt_path={ckpt3}"]))
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 7]  # steps 4.. of the first pass were cut, then written again once


def test_predictor_width_is_checked_with_the_other_keys():
    from simple_ijepa.config import validate

    with pytest.raises(ConfigError, match="model.predictor_dim.*multiple of 4, got 18"):
        validate(make_config(["model.predictor_dim=18"]))


def _encoder_weights(path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_a_killed_rank_is_restarted_by_torchrun_and_resumes_to_the_same_weights(tmp_path):
    """torchrun --max-restarts=1: SIGKILL one of two workers after a checkpoint; the restarted workers
    resume from the newest checkpoint with no flag added and end with an uninterrupted run's weights."""
    steps = ["optim.max_steps=80", "logging.log_every_n_steps=5"]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")

    def launch(save_dir: str, log):
        return subprocess.Popen([TORCHRUN, "--standalone", "--nproc_per_node=2", "--max-restarts=1", RUN_DDP]
                                + DIGITS + steps + [f"logging.save_model_dir={save_dir}"],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    with open(tmp_path / "killed.txt", "w") as log:
        proc = launch("killed", log)
        first = tmp_path / "killed" / "checkpoints" / "baseline_step_00000010.pth"
        deadline = time.time() + 180
        while not first.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2 and first.exists(), (tmp_path / "killed.txt").read_text()[-3000:]
        os.kill(int(workers[1]), signal.SIGKILL)
        assert proc.wait(timeout=300) == 0, (tmp_path / "killed.txt").read_text()[-3000:]
    out = (tmp_path / "killed.txt").read_text()
    resumed_at = [int(s) for s in __import__("re").findall(r"Resumed from \S+ at step (\d+)", out)]
    assert resumed_at and 10 <= resumed_at[0] < 80, out[-3000:]
    with open(tmp_path / "clean.txt", "w") as log:
        assert launch("clean", log).wait(timeout=300) == 0
    killed, clean = _encoder_weights(tmp_path / "killed" / "encoder_ddp.pth"), _encoder_weights(
        tmp_path / "clean" / "encoder_ddp.pth")
    assert all(torch.equal(killed[k], clean[k]) for k in clean)


@pytest.mark.slow
def test_a_checkpoint_write_that_fails_keeps_the_previous_one_and_the_run_resumable(tmp_path):
    """Under `ulimit -f` the checkpoint no longer fits: one error naming the folder per failed write,
    the previous checkpoint intact, training to the end, then exit 2 saying how to resume."""
    first = run_cli([PYTHON, RUN_DDP] + DIGITS + ["optim.max_steps=4", "logging.log_every_n_steps=4",
                                                   "logging.save_model_dir=run"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-2000:]
    ckpt = tmp_path / "run" / "training_model_ddp.pth"
    limit_kb = ckpt.stat().st_size // 1024 // 2  # big files fail, logs and metrics still fit
    cmd = " ".join([f"ulimit -f {limit_kb};", PYTHON, RUN_DDP] + DIGITS + [
        "optim.max_steps=12", "logging.log_every_n_steps=4", "logging.save_model_dir=run", "logging.ckpt_path=auto"])
    limited = run_cli(["bash", "-c", cmd], cwd=tmp_path)
    assert limited.returncode == 2, limited.stdout[-3000:]
    assert limited.stdout.count(f"could not write the checkpoint to {tmp_path / 'run'}") == 2  # steps 8 and 12
    assert f"newest checkpoint in {tmp_path / 'run'} is from step 4" in limited.stdout
    assert "Traceback" not in limited.stdout
    assert torch.load(ckpt, weights_only=True)["step"] == 4
    assert not [p for p in (tmp_path / "run").rglob("*.tmp-*")]  # no half-written file left
    again = run_cli([PYTHON, RUN_DDP] + DIGITS + ["optim.max_steps=12", "logging.log_every_n_steps=4",
                                                   "logging.save_model_dir=run", "logging.ckpt_path=auto"],
                    cwd=tmp_path)
    assert again.returncode == 0 and "at step 4" in again.stdout
    assert torch.load(ckpt, weights_only=True)["step"] == 12


def test_a_read_only_save_dir_fails_each_write_and_training_goes_on(tmp_path, monkeypatch, caplog):
    def no_space(obj, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "atomic_save", no_space)
    with pytest.raises(CheckpointError, match="no checkpoint of this run .* yet.*logging.ckpt_path=auto"):
        train(make_config(DIGITS + ["optim.max_steps=6", "logging.log_every_n_steps=3",
                                    f"logging.save_model_dir={tmp_path}"]))
    assert caplog.text.count("could not write the checkpoint") == 2
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2  # training went on to the end


@pytest.mark.slow
def test_two_runs_side_by_side_in_one_save_dir(tmp_path):
    """The second run stops before any work while the first holds the folder; a lock left by a
    killed run is taken over."""
    args = [PYTHON, RUN_DDP] + DIGITS + ["optim.max_steps=100000", "logging.log_every_n_steps=100000",
                                          "logging.save_model_dir=run"]
    first = start_training(args, tmp_path, "first.txt")
    second = run_cli(args + ["logging.ckpt_path=auto"], cwd=tmp_path)
    assert second.returncode == 2 and "another run" in second.stdout and f"pid {first.pid}" in second.stdout
    first.kill()
    first.wait()
    assert (tmp_path / "run" / ".run.lock").exists()  # SIGKILL left it behind
    third = run_cli([PYTHON, RUN_DDP] + DIGITS + ["optim.max_steps=2", "logging.log_every_n_steps=2",
                                             "logging.save_model_dir=run", "logging.overwrite=true"], cwd=tmp_path)
    assert third.returncode == 0, third.stdout[-2000:]
    assert not (tmp_path / "run" / ".run.lock").exists()

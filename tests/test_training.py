"""End-to-end training on the CPU: loss falls, checkpoints, exact resume, the README's commands."""
import json
import os

import pytest
import torch
from helpers import PYTHON, RUN_DDP, TINY_MODEL, TORCHRUN, run_cli

from simple_ijepa.checkpoints import find_latest
from simple_ijepa.data.samplers import epoch_sampler
from simple_ijepa.training.trainer import make_config, train

DIGITS = TINY_MODEL + [
    "data.dataset_name=digits", "model.image_size=16", "model.patch_size=2", "model.hidden_dim=32",
    "mask.min_context=4", "model.num_targets=4", "dataloader.batch_size=64", "dataloader.num_workers=0",
    "optim.learning_rate=1e-3", "ema.gamma=0.99", "data.crop_scale=[0.6,1.0]", "data.hflip=false",
    "eval.enabled=false",
]


def metrics(save_dir):
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_training_lowers_the_loss_and_writes_checkpoints(tmp_path):
    out = train(make_config(DIGITS + ["optim.max_steps=40", "logging.log_every_n_steps=10",
                                      f"logging.save_model_dir={tmp_path}"]))
    assert out["step"] == 40
    rows = metrics(tmp_path)
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]
    assert rows[-1]["ema_momentum"] == 1.0
    for key in ("teacher_pooled_std", "teacher_token_std", "teacher_rankme"):  # collapse monitors, every row
        assert all(r[key] > 0 for r in rows), key
    assert os.path.isfile(tmp_path / "collapse.png")
    for name in ("training_model_ddp.pth", "encoder_ddp.pth", "encoder_ddp.safetensors"):
        assert os.path.isfile(tmp_path / name)
    state = torch.load(tmp_path / "training_model_ddp.pth", weights_only=False)
    assert state["step"] == 40 and state["variant"] == "baseline"
    assert {"model", "optimizer", "scaler", "config", "epoch"} <= set(state)
    assert any(k.startswith("target_encoder.") for k in state["model"])


def test_random_masking_trains(tmp_path):
    out = train(make_config(DIGITS + ["mask.kind=random", "optim.max_steps=20", "logging.log_every_n_steps=10",
                                      f"logging.save_model_dir={tmp_path}"]))
    rows = metrics(tmp_path)
    assert out["step"] == 20 and rows[-1]["loss"] < rows[0]["loss"]


@pytest.mark.parametrize("recipe", [[], ["mask.context_budget=0.25", "optim.weight_decay=0.04",
                                           "optim.weight_decay_end=0.4", "ema.gamma_end=0.999",
                                           "model.target_center=true", "model.target_layers=2",
                                           "optim.decay_fraction=0.5"],
                                    ["optim.accum_steps=2", "dataloader.batch_size=32"]])
def test_resumed_run_continues_at_the_saved_step_and_matches(tmp_path, recipe):
    """8 steps straight vs 4 steps + resume for 4 more: same losses, same final weights (the
    schedules of weight decay and EMA momentum come from the step alone)."""
    base = DIGITS + ["optim.max_steps=8", "logging.log_every_n_steps=2", "logging.keep_last=10"] + recipe
    train(make_config(base + [f"logging.save_model_dir={tmp_path / 'full'}"]))
    ckpt4 = tmp_path / "full" / "checkpoints" / "baseline_step_00000004.pth"
    assert ckpt4.is_file()
    out = train(make_config(base + [f"logging.save_model_dir={tmp_path / 'resumed'}", f"logging.ckpt_path={ckpt4}"]))
    assert out["step"] == 8
    full, resumed = metrics(tmp_path / "full"), metrics(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == [6, 8]  # continued at step 4, not from 0
    # Same process, same kernels: the replay is bit for bit (every draw is seeded from the step).
    assert [r["loss"] for r in full[2:]] == [r["loss"] for r in resumed]
    wa = torch.load(tmp_path / "full" / "training_model_ddp.pth", weights_only=False)["model"]
    wb = torch.load(tmp_path / "resumed" / "training_model_ddp.pth", weights_only=False)["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_resume_auto_and_keep_last(tmp_path):
    base = DIGITS + ["optim.max_steps=6", "logging.log_every_n_steps=1", "logging.keep_last=2",
                     f"logging.save_model_dir={tmp_path}"]
    train(make_config(base))
    kept = sorted(os.listdir(tmp_path / "checkpoints"))
    assert kept == ["baseline_step_00000005.pth", "baseline_step_00000006.pth"]
    assert find_latest(str(tmp_path), "baseline").endswith("step_00000006.pth")
    out = train(make_config(base + ["optim.max_steps=7", "logging.ckpt_path=auto"]))
    assert out["step"] == 7 and metrics(tmp_path)[-1]["step"] == 7
    # keep_last=0 keeps no step files: the latest file (step 9) is newer than the kept step 7, and auto takes it
    train(make_config(base + ["optim.max_steps=9", "logging.ckpt_path=auto", "logging.keep_last=0"]))
    assert "baseline_step_00000007.pth" in os.listdir(tmp_path / "checkpoints")
    assert find_latest(str(tmp_path), "baseline").endswith("training_model_ddp.pth")
    out = train(make_config(base + ["optim.max_steps=10", "logging.ckpt_path=auto", "logging.keep_last=0"]))
    assert out["step"] == 10 and [m["step"] for m in metrics(tmp_path)] == list(range(1, 11))


def test_ranks_get_disjoint_shards_and_resume_skips_seen_samples():
    data = list(range(100))
    shards = [list(epoch_sampler(data, r, 2, 0, 3, 0)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 50 and not set(shards[0]) & set(shards[1])
    assert shards[0] != list(epoch_sampler(data, 0, 2, 0, 4, 0))  # reshuffled
    assert list(epoch_sampler(data, 1, 2, 0, 3, 20)) == shards[1][20:]


STL_TINY = TINY_MODEL + ["dataloader.batch_size=16", "dataloader.num_workers=0", "optim.max_steps=3",
                         "logging.log_every_n_steps=2", "eval.enabled=false"]


@pytest.mark.slow
def test_readme_baseline_commands_run_on_cpu(fake_stl10, tmp_path):
    """The seed README's baseline commands, unchanged but for the CPU-size overrides."""
    data = [f"data.dataset_path={fake_stl10}"]
    run = run_cli([PYTHON, RUN_DDP, "variant=baseline"] + STL_TINY + data, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "models" / "training_model_ddp.pth").is_file()
    assert "training in fp32" in run.stdout  # fp16 requested by default, CPU falls back, said once
    assert os.listdir(tmp_path) == ["models"]  # no Hydra outputs/: the run folder records itself
    assert {"config.yaml", "env.json", "train.log"} <= set(os.listdir(tmp_path / "models"))
    resume = run_cli([PYTHON, RUN_DDP, "logging.ckpt_path=./models/training_model_ddp.pth", "optim.max_steps=5"]
                     + STL_TINY[:-3] + ["logging.log_every_n_steps=2", "eval.enabled=false"] + data, cwd=tmp_path)
    assert resume.returncode == 0, resume.stdout[-3000:]
    assert "Resumed from" in resume.stdout and "at step 3" in resume.stdout
    # stderr is a pipe here (as under nohup / SLURM): plain progress lines, no bar redrawn with \r
    assert "\r" not in resume.stdout and "train: 5/5 (100%)" in resume.stdout
    fp32 = run_cli([PYTHON, RUN_DDP, "variant=baseline", "optim.fp16_precision=false"] + STL_TINY + data,
                   cwd=tmp_path / "models")
    assert fp32.returncode == 0 and "training in fp32" not in fp32.stdout


@pytest.mark.slow
def test_torchrun_two_processes_on_gloo(fake_stl10, tmp_path):
    run = run_cli([TORCHRUN, "--standalone", "--nproc_per_node=2", RUN_DDP, "variant=baseline",
                   "dataloader.batch_size=16", "optim.num_epochs=1", "optim.learning_rate=1e-4",
                   f"data.dataset_path={fake_stl10}"] + STL_TINY[:-3] + ["logging.log_every_n_steps=4",
                                                                        "eval.enabled=false"], cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "2 process(es) on cpu" in run.stdout and "8 steps/epoch" in run.stdout
    assert "Weights identical on all 2 ranks" in run.stdout
    state = torch.load(tmp_path / "models" / "training_model_ddp.pth", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == 8


@pytest.mark.slow
def test_bad_input_is_a_clear_error_before_work(fake_stl10, tmp_path):
    run = run_cli([PYTHON, RUN_DDP, "model.image_size=100"], cwd=tmp_path)
    assert run.returncode == 2 and "model.image_size" in run.stdout and "Traceback" not in run.stdout
    run = run_cli([PYTHON, RUN_DDP, f"data.dataset_path={tmp_path}/nowhere"] + STL_TINY, cwd=tmp_path)
    assert run.returncode == 2 and "data.download=true" in run.stdout
    assert not (tmp_path / "models" / "training_model_ddp.pth").exists()


@pytest.mark.slow
def test_probes_run_at_their_own_interval_and_land_in_the_metrics(tmp_path):
    train(make_config(DIGITS[:-1] + ["optim.max_steps=6", "logging.log_every_n_steps=4", "eval.every_n_steps=3",
                                     "eval.classifier=logistic", "eval.max_train_samples=200",
                                     "eval.max_test_samples=100", f"logging.save_model_dir={tmp_path}"]))
    rows = {r["step"]: r for r in metrics(tmp_path)}
    assert sorted(rows) == [3, 4, 6]
    for step in (3, 6):
        assert {"probe_teacher", "knn_teacher", "probe_student", "knn_student"} <= set(rows[step])
        assert 0.0 <= rows[step]["probe_teacher"] <= 1.0
    assert "probe_teacher" not in rows[4]
    assert (tmp_path / "probe.png").is_file()


def test_progress_in_a_log_file_is_a_plain_line_every_interval(caplog, monkeypatch):
    import logging

    from simple_ijepa.utils import progress as progress_mod

    clock = iter(range(0, 10_000, 2))  # 2 s per step
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: next(clock))
    caplog.set_level(logging.INFO, logger="simple_ijepa")
    bar = progress_mod.progress(500, "train", every_s=60)  # pytest's stderr is not a terminal
    assert isinstance(bar, progress_mod.PlainProgress)
    for _ in range(500):
        bar.update(1)
        bar.set_postfix({"loss": "0.1"})
    bar.close()
    lines = [r.message for r in caplog.records if r.message.startswith("train:")]
    assert 10 <= len(lines) <= 20  # ~1,000 s at one line per 60 s, and the last one (not 500 redrawn bars)
    assert lines[-1].startswith("train: 500/500 (100%), 0.4") and lines[-1].endswith("it/s, loss=0.1")


@pytest.mark.parametrize("recipe", [[], ["mask.context_budget=0.25"], ["optim.grad_clip=0.05"]])
def test_gradient_accumulation_gives_the_update_of_the_larger_batch(recipe):
    """optim.accum_steps=3 on one batch of 9 (micro-batches 3 + 3 + 3): the same loss and the same
    weights after 3 updates as one step on the batch of 9: padded and packed contexts, a budget, clipping."""
    import copy

    from simple_ijepa.models import build_model
    from simple_ijepa.training.step import TrainStep

    common = TINY_MODEL + ["optim.precision=fp32", "mask.target_scale=[0.1,0.2]", *recipe]
    whole = make_config(common + ["dataloader.batch_size=9"])
    micro = make_config(common + ["dataloader.batch_size=3", "optim.accum_steps=3"])
    torch.manual_seed(0)
    model = build_model(whole)
    models, init = [model, copy.deepcopy(model)], copy.deepcopy(model)
    steps = [TrainStep(cfg, m, torch.device("cpu"), "fp32", total_steps=10) for cfg, m in zip((whole, micro), models)]
    g = torch.Generator().manual_seed(0)
    for s in range(3):
        images = torch.randint(0, 256, (9, 3, 40, 40), dtype=torch.uint8, generator=g)
        inputs = [step.inputs(images, s) for step in steps]
        torch.testing.assert_close(inputs[0][:4], inputs[1][:4])  # the same crops and masks
        if inputs[0][3] is not None:  # padded context: one count of real tokens per micro-batch
            assert sum(inputs[1][4]) == inputs[0][4] and len(inputs[1][4]) == 3
        losses = [step(x, s)[0] for step, x in zip(steps, inputs)]
        torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    assert not torch.equal(models[1].encoder.blocks[0].attn.qkv.weight, init.encoder.blocks[0].attn.qkv.weight)


def test_gradient_accumulation_counts_steps_in_updates(tmp_path):
    """With accum_steps=2 a step takes two batches: the epoch has half the steps, images/s counts both."""
    out = train(make_config(DIGITS + ["dataloader.batch_size=32", "optim.accum_steps=2", "optim.num_epochs=1",
                                      "logging.log_every_n_steps=100", f"logging.save_model_dir={tmp_path}"]))
    from simple_ijepa.data import build_dataset

    n = len(build_dataset("digits", "./data", "unlabeled"))
    assert out["step"] == n // 64
    assert metrics(tmp_path)[-1]["epoch"] == 1.0

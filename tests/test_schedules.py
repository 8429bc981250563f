import math

import pytest

from simple_ijepa.config import EMAConfig
from simple_ijepa.training.schedules import ema_momentum, learning_rate, teacher_update, weight_decay


def test_ema_momentum_known_values():
    assert ema_momentum(0, 1000, 0.996) == pytest.approx(0.996)
    assert ema_momentum(500, 1000, 0.996) == pytest.approx(0.998)
    assert ema_momentum(1000, 1000, 0.996) == 1.0  # exactly 1.0 at the end of training
    values = [ema_momentum(k, 1000, 0.996) for k in range(1001)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_teacher_update_copy_then_ema_every_n():
    ema = EMAConfig(gamma=0.99, update_gamma_after_step=2, update_gamma_every_n_steps=3)
    actions = [teacher_update(s, 100, ema)[0] for s in range(1, 10)]
    assert actions == ["copy", "copy", "skip", "skip", "ema", "skip", "skip", "ema", "skip"]
    # an update every n steps uses m^n: the same teacher time constant as n = 1
    assert teacher_update(5, 100, ema)[1] == pytest.approx(ema_momentum(5, 100, 0.99) ** 3)
    assert teacher_update(1, 100, EMAConfig(update_gamma_after_step=0))[0] == "ema"


def test_learning_rate_warmup_then_cosine():
    lr = [learning_rate(s, 100, 1e-3, 1e-6, 10) for s in range(100)]
    assert lr[0] == pytest.approx(1e-4) and lr[9] == pytest.approx(1e-3)
    assert lr[10] == pytest.approx(1e-3)
    assert lr[55] == pytest.approx(1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + math.cos(math.pi * 0.5)))
    assert learning_rate(100, 100, 1e-3, 1e-6, 10) == pytest.approx(1e-6)
    assert all(a >= b for a, b in zip(lr[10:], lr[11:]))


def test_learning_rate_warmup_stable_decay():
    lr = [learning_rate(s, 100, 1e-3, 1e-6, 10, decay_steps=20) for s in range(101)]
    assert lr[9] == pytest.approx(1e-3) and all(v == pytest.approx(1e-3) for v in lr[10:81])
    assert lr[90] == pytest.approx(1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + math.cos(math.pi * 0.5)))
    assert lr[100] == pytest.approx(1e-6) and all(a >= b for a, b in zip(lr[80:], lr[81:]))
    # a decay as long as everything after the warm-up is the plain cosine
    assert [learning_rate(s, 100, 1e-3, 1e-6, 10, decay_steps=90) for s in range(100)] == \
        [learning_rate(s, 100, 1e-3, 1e-6, 10) for s in range(100)]


def test_ema_momentum_can_end_below_one():
    assert ema_momentum(0, 1000, 0.99, 0.999) == pytest.approx(0.99)
    assert ema_momentum(500, 1000, 0.99, 0.999) == pytest.approx(0.9945)
    assert ema_momentum(1000, 1000, 0.99, 0.999) == pytest.approx(0.999)
    assert ema_momentum(2000, 1000, 0.99, 0.999) == pytest.approx(0.999)
    ema = EMAConfig(gamma=0.99, gamma_end=0.999)
    assert teacher_update(1000, 1000, ema)[1] == pytest.approx(0.999)


def test_weight_decay_cosine_ramp_as_the_official_code():
    """CosineWDSchedule of the official I-JEPA code: wd(k) = end + (start - end) * (1 + cos(pi k / K)) / 2."""
    assert weight_decay(0, 100, 0.04, 0.4) == pytest.approx(0.04)
    assert weight_decay(50, 100, 0.04, 0.4) == pytest.approx(0.22)
    assert weight_decay(100, 100, 0.04, 0.4) == pytest.approx(0.4)
    assert weight_decay(70, 100, 0.05, None) == 0.05  # no end: constant
    values = [weight_decay(k, 100, 0.04, 0.4) for k in range(101)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_the_optimiser_follows_the_weight_decay_schedule_on_matrices_only():
    import torch
    from helpers import TINY_MODEL

    from simple_ijepa.models import build_model
    from simple_ijepa.training.step import TrainStep
    from simple_ijepa.training.trainer import make_config

    cfg = make_config(TINY_MODEL + ["optim.weight_decay=0.04", "optim.weight_decay_end=0.4", "optim.precision=fp32"])
    torch.manual_seed(0)
    model = build_model(cfg)
    step = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=10)
    for s in (0, 5, 9):
        step(step.inputs(torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8), s), s)
        decays = sorted({g["weight_decay"] for g in step.optimizer.param_groups})
        assert decays == [0.0, pytest.approx(weight_decay(s, 10, 0.04, 0.4))]

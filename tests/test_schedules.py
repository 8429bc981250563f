import math

import pytest

from simple_ijepa.config import EMAConfig
from simple_ijepa.training.schedules import ema_momentum, learning_rate, teacher_update


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

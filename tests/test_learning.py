"""Learning is shown, not assumed: the digits demo (experiment=cpu_small as it is, 3,000 steps of 32
real images; 6-9 minutes here) must give a teacher and a student that beat the same encoder at
random initialisation.

Robust to the seed: run it on other seeds with `LEARNING_TEST_SEED=3 python -m pytest tests/test_learning.py`.
Measured on seed 0 of this exact config (data2vec target over 2 blocks, EMA 0.998, crops 85-100%): teacher
minus random init +11.9 points linear and +38.0 20-NN, last logged loss 0.47x the first, RankMe 21 against 11
at init (`python bench/demo_check.py 0`; with crops of 60-100%: +11.9 / +37.5, 0.48x);
with the last block's target (EMA 0.9993), seeds 0-2: +9.1 to +10.8 and +31.7 to +35.1
(`SEEDS="0 1 2" bash bench/demo_seeds.sh`). The margins asserted are the learning issue's targets, +5
linear and +15 20-NN. The loss bound is 0.6x: data2vec's instance-normed targets leave a higher floor
than the last block's (0.48x on seed 0, where the last block's target gave below 0.5x)."""
import json
import os

import pytest
import torch

from simple_ijepa.cli.demo import DEMO_OVERRIDES, compare_with_random_init
from simple_ijepa.training.trainer import make_config, train

SEED = int(os.environ.get("LEARNING_TEST_SEED", "0"))
MIN_TEACHER_GAIN = {"probe_acc": 0.05, "knn_acc": 0.15}


@pytest.mark.slow
def test_pretrained_teacher_and_student_beat_random_init_on_digits(tmp_path):
    cfg = make_config(DEMO_OVERRIDES + [f"logging.save_model_dir={tmp_path}", f"seed={SEED}"])
    out = train(cfg)
    results = compare_with_random_init(out["train_checkpoint"], cfg, seed=SEED)
    teacher, student, random_init = results["EMA teacher"], results["student"], results["random init"]
    for metric, margin in MIN_TEACHER_GAIN.items():
        assert teacher[metric] >= random_init[metric] + margin, (metric, results)
    assert student["probe_acc"] >= random_init["probe_acc"], results  # the student never falls below its init
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]  # the prediction task is learned
    reference = torch.load(out["train_checkpoint"], weights_only=False)["collapse_reference"]  # at init
    assert rows[-1]["teacher_rankme"] > 0.5 * reference["rankme"]  # and the features did not collapse

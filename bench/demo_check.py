"""Benchmark (not a test): tests/test_learning.py's demo run on one seed, printing every figure it asserts on.

    python bench/demo_check.py 0 >> bench/results/demo_targets.jsonl        # seed 0, the demo as it is
    python bench/demo_check.py 1 model.target_layers=1 ema.gamma=0.9993 ema.gamma_end=0.9993   # overrides

Trains the demo (`DEMO_OVERRIDES`: experiment=cpu_small on the embedded digits) into a temporary folder,
probes the teacher, student, random init and raw pixels as the demo does, and prints one JSON line: the
probes, the training seconds, the first and last logged loss, and the teacher's RankMe at the end and
at init (the test asserts last loss < 0.6x first, RankMe > 0.5x init).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time

import torch

from simple_ijepa.cli.demo import DEMO_OVERRIDES, compare_with_random_init
from simple_ijepa.training.trainer import make_config, train


def main(seed: int, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as work:
        cfg = make_config(DEMO_OVERRIDES + [f"logging.save_model_dir={work}", f"seed={seed}"] + overrides)
        start = time.time()
        out = train(cfg)
        seconds = time.time() - start
        results = compare_with_random_init(out["train_checkpoint"], cfg, seed=seed)
        rows = [json.loads(line) for line in open(f"{work}/metrics.jsonl")]
        reference = torch.load(out["train_checkpoint"], weights_only=False)["collapse_reference"]
    return {"seed": seed, "extra": overrides, "train_seconds": round(seconds), "results": results,
            "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"], "rankme_last": rows[-1]["teacher_rankme"],
            "rankme_init": reference["rankme"]}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2:])))

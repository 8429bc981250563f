"""Benchmark (not a test): does a short CPU pretraining on Fashion-MNIST beat its own random init?

    python bench/fashion_mnist_probe.py --minutes 10

1. Times a few training steps, then pretrains a small I-JEPA (32 px, 8x8 patches of 4 px, encoder
   192 x 4, predictor 128 x 3, batch 128, lr 1e-3, EMA from 0.99) for as many steps as fit the budget
   (or exactly --steps, for figures that do not depend on the machine's load). If the machine slows
   down, training is stopped (and saved) 5% past the budget.
2. Probes (linear + k-NN) on 10k train images, scored on the 10k test images: the EMA teacher, the
   student, the same encoder at its initial weights, and raw 28x28 pixels (same subsets).
Data: Fashion-MNIST as the Debian package `dataset-fashion-mnist` installs it, or under --data.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simple_ijepa.evaluation import STL10Eval  # noqa: E402
from simple_ijepa.export import load_encoder  # noqa: E402
from simple_ijepa.models.vit import VisionTransformer  # noqa: E402
from simple_ijepa.training.checkpoint import checkpoint_names  # noqa: E402
from simple_ijepa.training.trainer import Preempted, make_config, train  # noqa: E402

MODEL = [
    "data.dataset_name=fashion_mnist", "model.image_size=32", "model.patch_size=4", "model.hidden_dim=192",
    "model.depth=4", "model.heads=3", "model.predictor_dim=128", "model.predictor_depth=3",
    "model.predictor_heads=2", "dataloader.batch_size=128", "dataloader.num_workers=0",
    "optim.learning_rate=1e-3", "ema.gamma=0.99", "eval.enabled=false",
]


def config(args, save_dir: str, max_steps: int, log_every: int):
    return make_config(MODEL + [f"data.dataset_path={args.data}", f"seed={args.seed}",
                                f"logging.save_model_dir={save_dir}", f"optim.max_steps={max_steps}",
                                f"logging.log_every_n_steps={log_every}"])


def plan_steps(args, work: str) -> tuple[int, float]:
    """Run 30 steps; return (steps that fit the rest of the budget, seconds per step)."""
    t0 = time.perf_counter()
    out = train(config(args, os.path.join(work, "timing"), 30, 10))
    spent = time.perf_counter() - t0
    per_step = 128 / out["metrics"]["images_per_s"]  # over the last 10 steps: warm
    overhead = spent - 30 * per_step  # start-up, data loading, checkpoints
    return max(1, int((args.minutes * 60 - spent - overhead) / per_step)), per_step


def train_until(cfg, seconds: float | None) -> dict:
    """train(cfg), stopped by SIGUSR1 if still running after `seconds` (the machine slowed down):
    the trainer then saves its current step and exits. Returns the last line of metrics.jsonl."""
    signal.signal(signal.SIGUSR1, lambda *_: None)  # a late signal, after train() returns, is harmless
    timer = threading.Timer(seconds or 0, os.kill, (os.getpid(), signal.SIGUSR1))
    if seconds is not None:
        timer.start()
    try:
        train(cfg)
    except Preempted:
        print("budget reached: stopped early (cosine LR / EMA schedules cut short)", flush=True)
    finally:
        timer.cancel()
    with open(os.path.join(cfg.logging.save_model_dir, "metrics.jsonl")) as f:
        return json.loads(f.read().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget for pretraining")
    p.add_argument("--data", default="./data", help="data root (the system copy is found on its own)")
    p.add_argument("--steps", type=int, default=None, help="fixed step count instead of the time budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train_samples", type=int, default=10000, help="probe's train subset (of 60k)")
    p.add_argument("--classifier", default="calibrated", choices=("calibrated", "logistic"))
    p.add_argument("--out_dir", default=None, help="keep checkpoints here (default: a temporary folder)")
    args = p.parse_args()

    work = args.out_dir or tempfile.mkdtemp(prefix="fmnist_bench_")
    t0 = time.perf_counter()
    if args.steps:
        steps = args.steps
    else:
        steps, per_step = plan_steps(args, work)
        print(f"timing: {per_step:.3f} s/step -> {steps} steps for a {args.minutes:g}-minute budget", flush=True)
    run = os.path.join(work, "run")
    cfg = config(args, run, steps, 100)
    deadline = None if args.steps else 1.05 * args.minutes * 60 - (time.perf_counter() - t0)  # 5% grace
    last = train_until(cfg, deadline)
    minutes = (time.perf_counter() - t0) / 60
    note = "" if args.steps else " (timing run included)"
    print(f"pretrained {last['step']} steps ({last['step'] * 128 / 60000:.1f} epochs) in {minutes:.1f} min{note}; "
          f"last loss {last['loss']:.4f}", flush=True)

    ckpt = os.path.join(run, checkpoint_names("baseline")[0])
    teacher, student = load_encoder(ckpt, teacher=True), load_encoder(ckpt, teacher=False)
    torch.manual_seed(args.seed)  # the trainer seeds the same way: this is the run's starting encoder
    random_init = VisionTransformer(teacher.config).eval()

    kw = dict(dataset_path=args.data, dataset_name="fashion_mnist", classifier=args.classifier,
              max_train_samples=args.train_samples, device="cpu")
    evaluator = STL10Eval(32, **kw)
    raw = STL10Eval(28, **kw)  # 28 px = no resize: the raw pixels
    rows = {"EMA teacher": evaluator.evaluate(teacher, name="teacher"),
            "student": evaluator.evaluate(student, name="student"),
            f"random init (seed {args.seed})": evaluator.evaluate(random_init, name="random init"),
            "raw pixels": raw.evaluate(lambda x: x[:, 0].flatten(1), name="raw pixels")}
    n_train, n_test = len(evaluator.train_set), len(evaluator.test_set)
    print(f"\nFashion-MNIST: {min(args.train_samples, n_train)} train / {n_test} test images, "
          f"{args.classifier} linear probe, {evaluator.knn_k}-NN")
    print(f"{'features':<24}{'linear probe':>14}{'k-NN':>10}")
    for name, r in rows.items():
        print(f"{name:<24}{r['probe_acc']:>14.4f}{r['knn_acc']:>10.4f}")


if __name__ == "__main__":
    main()

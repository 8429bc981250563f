"""Peer adapter: simple-ijepa itself, `experiment=cpu_small` as it is, on Fashion-MNIST.

    python bench/peers/ours.py --seed 0 --marks 300 900 --out /tmp/ours   # usually through bench/peers/run.py
    python bench/peers/ours.py --seed 0 --marks 300 --out /tmp/o ema.gamma=0.99   # any TrainConfig override

The model, masks, augmentation, optimiser, schedules and EMA are the library's (`build_model`,
`TrainStep`: the same step `train()` runs), at `experiment=cpu_small`: 28 px, patch 4, encoder 192 x 4,
predictor 128 x 4 (shared context), data2vec target over 2 blocks, batch 32, AdamW 3e-4, EMA 0.998. What
differs from `train()`: no checkpoints, logs or periodic probes (time the others do not spend either), and
batches from a seeded per-epoch shuffle of the 60k images, as every adapter draws them (our sampler does
the same).

The preset's length, `optim.max_steps=3000`, enters its schedules only through the warm-up (10% of
the steps; the LR and EMA momentum are constant after it). Here the run is as long as the time
budget: after 10 steps the speed so far sets `total_steps` to the steps that fit in the budget
(`TrainClock.horizon`), so the warm-up is 10% of the whole run, as in the preset.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import main  # noqa: E402

CALIBRATION_STEPS = 10


def train(images: np.ndarray, clock, seed: int, *overrides: str):
    from simple_ijepa.config import make_config
    from simple_ijepa.data.augment import eval_transform
    from simple_ijepa.models import build_model
    from simple_ijepa.training.step import TrainStep

    cfg = make_config(["experiment=cpu_small", "data.dataset_name=fashion_mnist", f"seed={seed}", *overrides])
    torch.manual_seed(seed)
    model = build_model(cfg)
    step_fn = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=cfg.optim.max_steps)
    batch, size = cfg.dataloader.batch_size, cfg.model.image_size
    data = torch.from_numpy(np.array(images))[:, None]  # uint8 [N, 1, 28, 28] (a writable copy)
    rng = np.random.RandomState(seed)

    @torch.no_grad()
    def feature_fn(x: np.ndarray) -> torch.Tensor:  # the EMA teacher, as the library saves it
        return model.target_encoder.eval()(eval_transform(torch.from_numpy(np.array(x))[:, None], size))

    step = 0
    while True:
        order = rng.permutation(len(data))
        for i in range(0, len(order) - batch + 1, batch):
            clock.start()
            loss, _, _ = step_fn(step_fn.inputs(data[order[i:i + batch]], step), step)
            clock.stop()
            step += 1
            if step == CALIBRATION_STEPS:
                step_fn.total_steps = clock.horizon(step)
                step_fn.warmup_steps = int(cfg.optim.warmup_fraction * step_fn.total_steps)
            if step % 100 == 0:
                print(f"step {step}: loss {loss.item():.4f}", file=sys.stderr, flush=True)
            if clock.due():
                yield step, step * batch, feature_fn
                if clock.finished():
                    return


if __name__ == "__main__":
    main(train, __doc__.split("\n\n")[0])

"""The quick demo: pretrain I-JEPA on scikit-learn's digits (embedded, no download) on a CPU, then
compare a linear probe and k-NN of the pretrained encoder with the same encoder at random init.

    python -m simple_ijepa.demo                      # a few minutes on a 2-core CPU
    python -m simple_ijepa.demo optim.max_steps=100  # any TrainConfig override

The demo's settings are the defaults of a small-image run: 8x8 digits upsampled to 16 px and cut
into 2 px patches (an 8x8 grid), a 128-wide encoder, EMA momentum from 0.99 (0.996 barely moves the
teacher in a run this short), crops of 60-100% and no flips (digits are not mirror-symmetric).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .evaluate import probe_with_random_init
from .evaluation import STL10Eval
from .evaluation.probe import linear_probe_accuracy
from .export import load_encoder
from .training.trainer import make_config, train

DEMO_OVERRIDES = [
    "data.dataset_name=digits", "model.image_size=16", "model.patch_size=2", "model.hidden_dim=128",
    "model.depth=4", "model.heads=4", "model.head_dim=32", "model.predictor_dim=96", "model.predictor_depth=3",
    "model.predictor_heads=3", "dataloader.batch_size=128", "dataloader.num_workers=0", "optim.max_steps=300",
    "optim.learning_rate=1e-3", "optim.warmup_fraction=0.1", "ema.gamma=0.99", "data.crop_scale=[0.6,1.0]",
    "data.hflip=false", "logging.log_every_n_steps=100", "logging.save_model_dir=./runs/demo",
    "eval.enabled=false",
]


def compare_with_random_init(encoder_path: str, cfg, seed: int = 0) -> dict[str, dict[str, float]]:
    """Probe + k-NN accuracy of the saved teacher, the same architecture at random init, raw pixels."""
    evaluator = STL10Eval(image_size=cfg.model.image_size, dataset_path=cfg.data.dataset_path,
                          dataset_name=cfg.data.dataset_name, classifier=cfg.eval.classifier, knn_k=cfg.eval.knn_k)
    results = probe_with_random_init(load_encoder(encoder_path), evaluator, seed)
    results["pretrained (EMA teacher)"] = results.pop("pretrained")
    results["random init"] = results.pop("random init")  # keep the printed order
    pixels = [evaluator.train_set.images.reshape(len(evaluator.train_set), -1).astype(np.float32),
              evaluator.test_set.images.reshape(len(evaluator.test_set), -1).astype(np.float32)]
    results["raw pixels"] = {"probe_acc": linear_probe_accuracy(pixels[0], evaluator.train_set.labels, pixels[1],
                                                                evaluator.test_set.labels, cfg.eval.classifier),
                             "knn_acc": float("nan")}
    return results


def main(argv: list[str] | None = None) -> dict:
    overrides = DEMO_OVERRIDES + list(sys.argv[1:] if argv is None else argv)
    cfg = make_config(overrides)
    t0 = time.perf_counter()
    out = train(cfg)
    seconds = time.perf_counter() - t0
    results = compare_with_random_init(out["encoder_checkpoint"], cfg, cfg.seed)
    print(f"\nI-JEPA on {cfg.data.dataset_name}: {out['step']} steps of {cfg.dataloader.batch_size} images "
          f"in {seconds:.0f} s; loss {out['metrics'].get('loss', float('nan')):.4f}; run in {out['save_dir']}")
    print(f"{'encoder':<26}{'linear probe':>14}{'20-NN':>10}")
    for name, r in results.items():
        knn = "" if np.isnan(r["knn_acc"]) else f"{r['knn_acc']:.3f}"
        print(f"{name:<26}{r['probe_acc']:>14.3f}{knn:>10}")
    return results


if __name__ == "__main__":
    main()

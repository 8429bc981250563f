"""The quick demo: pretrain I-JEPA on scikit-learn's digits (embedded, no download) on a CPU, then
compare a linear probe and k-NN of the pretrained encoder with the same encoder at random init.

    python -m simple_ijepa.demo                      # 6-9 minutes on a 2-core CPU
    python -m simple_ijepa.demo optim.max_steps=100  # any TrainConfig override
    python -m simple_ijepa.demo --output demo.json   # the figures printed, also as JSON

The demo is the `experiment=cpu_small` preset as it is (presets.py; docs/experiments/) on the 8x8
digits upsampled to its 28 px: a 7x7 grid of patches, a 192-wide encoder, a 4-block predictor that
computes the context once for all target blocks, data2vec 2.0's target over the teacher's last 2
blocks, a constant learning rate after the warm-up, an EMA momentum of 0.998, crops of 85-100% and no
flips (digits are not mirror-symmetric), 3,000 steps of 32 images (6-9 minutes on 2 cores). Over seeds
0-2 its teacher beat random init by +11.1 +- 0.7 points linear and +36.0 +- 2.9 20-NN
(bench/results/demo_crops.jsonl);
with the last block's target at EMA 0.9993, over seeds 0-2, by +9.1 to +10.8 and +31.7 to +35.1
(bench/results/demo_seeds_batch32.jsonl). It prints the
linear probe and k-NN of the EMA teacher and of the student next to the same encoder at random init.
"""
from __future__ import annotations

import sys
import time

from ..checkpoints import load_encoder
from ..config import make_config
from ..errors import ConfigError, run_command
from ..evaluation import LinearProbe
from ..evaluation.reference import probe_with_random_init, raw_pixels
from ..training.trainer import train
from . import checks

DEMO_OVERRIDES = [
    "experiment=cpu_small", "data.dataset_name=digits", "eval.enabled=false", "eval.classifier=calibrated",
    "logging.save_model_dir=./runs/demo", "logging.overwrite=true",
]


def compare_with_random_init(checkpoint_path: str, cfg, seed: int = 0) -> dict[str, dict[str, float]]:
    """Probe + k-NN accuracy of the saved EMA teacher and student (from the training checkpoint),
    the same architecture at random init (seeded as the run), and raw pixels."""
    evaluator = LinearProbe(image_size=cfg.model.image_size, dataset_path=cfg.data.dataset_path,
                          dataset_name=cfg.data.dataset_name, classifier=cfg.eval.classifier, knn_k=cfg.eval.knn_k)
    results = probe_with_random_init(load_encoder(checkpoint_path, teacher=True), evaluator, seed)
    results = {"EMA teacher": results["pretrained"],
               "student": evaluator.evaluate(load_encoder(checkpoint_path, teacher=False), name="student"),
               "random init": results["random init"]}
    results["raw pixels"] = evaluator.evaluate(raw_pixels, name="raw pixels")
    return results


def pop_output(argv: list[str]) -> tuple[list[str], str | None]:
    """(the overrides, the FILE of `--output FILE` / `--output=FILE`, or None)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--output="):
            return argv[:i] + argv[i + 1:], arg.split("=", 1)[1]
        if arg == "--output":
            if i + 1 == len(argv):
                raise ConfigError("--output needs a file name: --output demo.json")
            return argv[:i] + argv[i + 2:], argv[i + 1]
    return argv, None


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return {}
    argv, output = pop_output(argv)
    checks.json_output(output)
    cfg = make_config(DEMO_OVERRIDES + argv)
    t0 = time.perf_counter()
    out = train(cfg)
    seconds = time.perf_counter() - t0
    results = compare_with_random_init(out["train_checkpoint"], cfg, cfg.seed)
    print(f"\nI-JEPA on {cfg.data.dataset_name}: {out['step']} steps of {cfg.dataloader.batch_size} images "
          f"in {seconds:.0f} s; loss {out['metrics'].get('loss', float('nan')):.4f}; run in {out['save_dir']}")
    base = results["random init"]
    print(f"{'encoder':<16}{'linear probe':>14}{'20-NN':>10}{'gain over random init':>26}")
    for name, r in results.items():
        gain = (f"{100 * (r['probe_acc'] - base['probe_acc']):+.1f} / {100 * (r['knn_acc'] - base['knn_acc']):+.1f} pts"
                if name in ("EMA teacher", "student") else "")
        print(f"{name:<16}{r['probe_acc']:>14.3f}{r['knn_acc']:>10.3f}{gain:>26}")
    checks.write_json(output, {"dataset_name": cfg.data.dataset_name, "steps": out["step"],
                               "batch_size": cfg.dataloader.batch_size, "seconds": round(seconds, 1),
                               "loss": out["metrics"].get("loss"), "save_dir": out["save_dir"],
                               "classifier": cfg.eval.classifier, "knn_k": cfg.eval.knn_k, "results": results})
    return results


def cli() -> None:
    """`ijepa-demo` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()

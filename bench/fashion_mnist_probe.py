"""Benchmark (not a test): does a short CPU pretraining on Fashion-MNIST learn? Mean +- std over seeds.

    python bench/fashion_mnist_probe.py                        # experiment=cpu_small, 500 steps, seeds 0 1 2
    python bench/fashion_mnist_probe.py --seeds 0 --steps 200 ema.gamma=0.996   # any TrainConfig override
    python bench/fashion_mnist_probe.py --n_last_blocks 4    # also the paper's other probe input (last 4 blocks)

For each seed: pretrain `experiment=cpu_small` on Fashion-MNIST's 60k training images for a fixed
number of steps (`--steps`, not wall time, so the figures do not depend on the machine's load), then
probe (linear + 20-NN) on --train_samples training images, scored on the 10k test images: the EMA
teacher, the student, the same encoder at its initial weights (the run's seed), and raw 28x28 pixels
(once; the subsets are fixed). Prints one line per seed, then mean +- std; `--json` appends the
summary (with the last log step's loss and collapse monitors) to a file; the README's ablation
table was built from such lines.
Data: Fashion-MNIST as the Debian package `dataset-fashion-mnist` installs it, or under --data.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import mean_std, seeded_bench_parser  # noqa: E402
from throughput import FlopCounter  # noqa: E402

from simple_ijepa.analysis.run_plots import read_metrics  # noqa: E402
from simple_ijepa.checkpoints import (
    checkpoint_names,  # noqa: E402
    load_encoder,  # noqa: E402
)
from simple_ijepa.evaluation import LastBlocks, LinearProbe  # noqa: E402
from simple_ijepa.masks import build_masks  # noqa: E402
from simple_ijepa.models.vit import VisionTransformer  # noqa: E402
from simple_ijepa.training.trainer import make_config, train  # noqa: E402

ENCODERS = ("teacher", "student", "random init")
MONITORS = ("loss", "loss_pred", "teacher_pooled_std", "teacher_token_std", "teacher_rankme")


def step_gflops_per_image(cfg, draws: int = 16) -> float:
    """FLOPs of one training step per image (teacher forward + forward + backward, bench/throughput's
    FlopCounter), averaged over `draws` seeded mask draws at the config's batch size."""
    import random

    m, B = cfg.model, cfg.dataloader.batch_size
    gen = build_masks(cfg.mask.kind, m.image_size // m.patch_size, m.num_targets, cfg.mask)
    counter, total = FlopCounter(cfg), 0
    images = torch.randn(B, 3, m.image_size, m.image_size)
    for s in range(draws):
        total += counter((images, *gen(B, random.Random(s), torch.Generator().manual_seed(s))))
    return total / draws / B / 1e9


class ProbeCache:
    """Probe results that depend only on what is probed, not on the pretraining run: raw pixels and
    each seed's random-init encoder (same seed, same architecture, same weights). Kept in a JSON file
    (--cache) so that the rows of an ablation do not fit them again."""

    def __init__(self, path: str | None):
        self.path = path
        self.data = json.load(open(path)) if path and os.path.isfile(path) else {}

    def get(self, key: str, compute) -> dict:
        if key not in self.data:
            self.data[key] = compute()
            if self.path:
                tmp = f"{self.path}.tmp"
                with open(tmp, "w") as f:
                    json.dump(self.data, f, indent=0)
                os.replace(tmp, self.path)
        return self.data[key]


def run_seed(args, seed: int, work: str, evaluator: LinearProbe, cache: ProbeCache) -> dict:
    """Pretrain one seed, probe its teacher, student and random init; return the figures."""
    save_dir = os.path.join(work, f"seed{seed}")
    cfg = make_config(["experiment=cpu_small", "data.dataset_name=fashion_mnist", f"data.dataset_path={args.data}",
                       f"seed={seed}", f"optim.max_steps={args.steps}", "eval.enabled=false",
                       f"logging.save_model_dir={save_dir}"] + args.overrides)
    t0 = time.perf_counter()
    train(cfg)
    minutes = (time.perf_counter() - t0) / 60
    last = read_metrics(save_dir)[-1]
    ckpt = os.path.join(save_dir, checkpoint_names(cfg.variant)[0])
    encoders = {"teacher": load_encoder(ckpt, teacher=True), "student": load_encoder(ckpt, teacher=False)}
    result = {"seed": seed, "train_minutes": minutes, **{k: last[k] for k in MONITORS if k in last}}
    for name, encoder in encoders.items():
        r = evaluator.evaluate(encoder.eval(), name=name)
        result[f"{name} linear"], result[f"{name} knn"] = r["probe_acc"], r["knn_acc"]

    def random_init_encoder() -> VisionTransformer:
        torch.manual_seed(seed)  # the trainer seeds the same way: this is the run's starting encoder
        return VisionTransformer(encoders["teacher"].config).eval()
    config = json.dumps(asdict(encoders["teacher"].config), sort_keys=True)
    r = cache.get(f"random init|{args.classifier}|{args.train_samples}|{config}|seed {seed}",
                  lambda: evaluator.evaluate(random_init_encoder(), name="random init"))
    result["random init linear"], result["random init knn"] = r["probe_acc"], r["knn_acc"]
    if args.n_last_blocks > 1:  # the paper's other probe input: the last k blocks' tokens concatenated
        k = args.n_last_blocks
        r = evaluator.evaluate(LastBlocks(encoders["teacher"].eval(), k), name=f"teacher, last {k} blocks")
        result[f"teacher linear, last {k}"], result[f"teacher knn, last {k}"] = r["probe_acc"], r["knn_acc"]
        r = cache.get(f"random init|{args.classifier}|{args.train_samples}|{config}|seed {seed}|last {k}",
                      lambda: evaluator.evaluate(LastBlocks(random_init_encoder(), k), name="random init"))
        result[f"random init linear, last {k}"], result[f"random init knn, last {k}"] = r["probe_acc"], r["knn_acc"]
    return result


def main() -> None:
    p = seeded_bench_parser(__doc__.split("\n\n")[0], classifier="calibrated")
    p.add_argument("--cache", default=None, help="JSON file that keeps the raw-pixel and random-init probes")
    p.add_argument("--n_last_blocks", type=int, default=1,
                   help="also probe teacher and random init on their last k blocks' tokens concatenated")
    args = p.parse_args()

    work = args.out_dir or tempfile.mkdtemp(prefix="fmnist_bench_")
    image_size = make_config(["experiment=cpu_small"] + args.overrides).model.image_size
    kw = dict(dataset_path=args.data, dataset_name="fashion_mnist", classifier=args.classifier,
              max_train_samples=args.train_samples, device="cpu")
    evaluator = LinearProbe(image_size, **kw)
    cache = ProbeCache(args.cache)
    pixels = cache.get(f"raw pixels|{args.classifier}|{args.train_samples}", lambda: LinearProbe(28, **kw).evaluate(
        lambda x: x[:, 0].flatten(1), name="raw pixels"))  # 28 px = as stored

    rows = []
    for seed in args.seeds:
        rows.append(run_seed(args, seed, work, evaluator, cache))
        r = rows[-1]
        print(f"seed {seed}: {args.steps} steps in {r['train_minutes']:.1f} min, loss {r['loss']:.4f}, "
              + ", ".join(f"{e} {r[e + ' linear']:.4f}/{r[e + ' knn']:.4f}" for e in ENCODERS), flush=True)

    gflops = step_gflops_per_image(make_config(["experiment=cpu_small"] + args.overrides))
    summary = {"name": args.name or " ".join(args.overrides) or "cpu_small", "overrides": args.overrides,
               "steps": args.steps, "seeds": args.seeds, "classifier": args.classifier,
               "step_gflops_per_image": gflops,
               "raw pixels linear": pixels["probe_acc"], "raw pixels knn": pixels["knn_acc"]}
    for key in rows[0]:
        if key != "seed":
            summary[key] = mean_std([r[key] for r in rows])
    n_test = len(evaluator.test_set)
    print(f"\nFashion-MNIST, experiment=cpu_small {' '.join(args.overrides)}: {args.steps} steps x "
          f"{len(args.seeds)} seeds; probe fit on {min(args.train_samples, len(evaluator.train_set))} train images, "
          f"scored on {n_test} test; {args.classifier} linear probe, {evaluator.knn_k}-NN (mean +- std over seeds)")
    print(f"{'features':<16}{'linear probe':>18}{'k-NN':>18}")
    for e in ENCODERS:
        (lm, ls), (km, ks) = summary[f"{e} linear"], summary[f"{e} knn"]
        print(f"{e:<16}{lm:>11.4f} +- {ls:.4f}{km:>11.4f} +- {ks:.4f}")
    print(f"{'raw pixels':<16}{pixels['probe_acc']:>11.4f}{'':>7}{pixels['knn_acc']:>11.4f}")
    if args.n_last_blocks > 1:
        print(f"the last {args.n_last_blocks} blocks' tokens concatenated:")
        for e in ("teacher", "random init"):
            (lm, ls), (km, ks) = (summary[f"{e} {p}, last {args.n_last_blocks}"] for p in ("linear", "knn"))
            print(f"{e:<16}{lm:>11.4f} +- {ls:.4f}{km:>11.4f} +- {ks:.4f}")
    gain = [r["teacher linear"] - r["random init linear"] for r in rows]
    gain_knn = [r["teacher knn"] - r["random init knn"] for r in rows]
    print(f"training step: {gflops:.3f} GFLOP per image (teacher forward + forward + backward)")
    print(f"teacher - random init: linear {mean_std(gain)[0]:+.4f} +- {mean_std(gain)[1]:.4f}, "
          f"k-NN {mean_std(gain_knn)[0]:+.4f} +- {mean_std(gain_knn)[1]:.4f}")
    if args.json:
        summary["teacher gain linear"], summary["teacher gain knn"] = mean_std(gain), mean_std(gain_knn)
        summary["per_seed"] = rows
        with open(args.json, "a") as f:
            f.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()

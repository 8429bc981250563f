"""Three I-JEPA implementations, the same images, the same minutes, the same probe (not a test).

    python bench/peers/run.py                                   # 3 seeds, probed at 5 and 15 minutes (~2.3 h)
    python bench/peers/run.py --minutes 5 --seeds 0 1 2 --out_dir runs/peers --json runs/peers.jsonl
    python bench/peers/run.py --peers ours --overrides model.hidden_dim=256 model.heads=4 --out_dir runs/wide

Each implementation trains on Fashion-MNIST's 60k training images, one process with 2 threads, at
`experiment=cpu_small`'s encoder size (28 px, patch 4, 192 wide, 4 deep, 3 heads), for the same
wall-clock training time; at each mark (`--minutes`) its adapter writes the mean-pooled final tokens of
its EMA target encoder for 5,000 fixed training images and the 10,000 test images. This script then
scores every mark with the same code, ours: the calibrated logistic-regression probe and the 20-NN
(`simple_ijepa.evaluation`), and adds raw pixels as a reference row.
  ours          bench/peers/ours.py           simple-ijepa, experiment=cpu_small as it is
  original      bench/peers/original.py       VittuD/simple-ijepa at 403e8e9, its own recipe
  lightly_ijepa bench/peers/lightly_ijepa.py  lightly's IJEPABackbone / IJEPAPredictor / IJEPAMaskCollator
Each adapter's docstring says what it took from its implementation and what it adapted. The runs go
one after another (seed by seed, the implementations in turn, so that a drift in the machine's speed
touches all of them); a run whose marks are all on disk in --out_dir is not redone, so an interrupted
benchmark continues where it stopped. Run it on an idle machine: the budget is wall-clock time.
`--overrides` changes ours (an ablation row: any config key=value on top of `experiment=cpu_small`);
each run folder records them, and a folder trained with other overrides is refused, not mixed in.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from common import load_fashion_mnist, probe_train_indices  # noqa: E402

from simple_ijepa.evaluation.knn import knn_accuracy  # noqa: E402
from simple_ijepa.evaluation.probe import linear_probe_accuracy  # noqa: E402

PEERS = ("ours", "original", "lightly_ijepa")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--minutes", type=float, nargs="+", default=[5.0, 15.0], help="training minutes to probe at")
    p.add_argument("--out_dir", default="runs/peers", help="one folder per implementation and seed")
    p.add_argument("--data", default=None, help="folder with Fashion-MNIST's IDX files (default: the system copy)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--classifier", default="calibrated", choices=("calibrated", "logistic"))
    p.add_argument("--json", default=None, help="append the table as JSON lines to this file")
    p.add_argument("--overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides for ours on top of experiment=cpu_small (an ablation row)")
    args = p.parse_args(argv)
    if min(args.minutes) <= 0 or min(args.seeds) < 0 or args.threads < 1:
        p.error("--minutes must be > 0, --seeds >= 0 and --threads >= 1")
    if args.overrides:  # a bad key or value is refused here, not in the adapter's log minutes later
        from omegaconf.errors import OmegaConfBaseException

        from simple_ijepa.config import make_config, validate
        from simple_ijepa.errors import ConfigError
        try:
            validate(make_config(["experiment=cpu_small", "data.dataset_name=fashion_mnist", *args.overrides]))
        except (ConfigError, OmegaConfBaseException) as e:
            p.error(f"--overrides: {e}")
    return args


def run_dir(args, peer: str, seed: int) -> str:
    return os.path.join(args.out_dir, peer, f"seed{seed}")


def overrides_of(args, peer: str) -> list[str]:
    """--overrides apply to ours alone."""
    return args.overrides if peer == "ours" else []


def train_one(args, peer: str, seed: int) -> None:
    """Run one adapter unless every mark of this (peer, seed) is already on disk."""
    out = run_dir(args, peer, seed)
    overrides = overrides_of(args, peer)
    recorded = os.path.join(out, "overrides.json")
    if os.path.isfile(recorded):
        with open(recorded) as f:
            before = json.load(f)
        if before != overrides:
            sys.exit(f"{out} was trained with overrides {before}, not {overrides}: give another --out_dir")
    marks = [m * 60 for m in args.minutes]
    if all(os.path.isfile(os.path.join(out, f"mark_{m:g}.npz")) for m in marks):
        print(f"{peer} seed {seed}: done before, kept", flush=True)
        return
    if os.path.exists(os.path.join(out, "marks.jsonl")):
        os.remove(os.path.join(out, "marks.jsonl"))  # a run cut short: redo it whole (wall-clock budget)
    cmd = [sys.executable, os.path.join(HERE, f"{peer}.py"), *overrides, "--seed", str(seed), "--out", out,
           "--threads", str(args.threads), "--marks", *[f"{m:g}" for m in marks]]
    if args.data:
        cmd += ["--data", args.data]
    print(f"{peer} seed {seed}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    with open(recorded, "w") as f:
        json.dump(overrides, f)
    with open(os.path.join(out, "train.log"), "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    print(f"{peer} seed {seed}: finished in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)


def score(args, features: dict, labels: tuple) -> dict:
    train_y, test_y = labels
    return {"linear": linear_probe_accuracy(features["train_x"], train_y, features["test_x"], test_y,
                                            args.classifier),
            "knn": knn_accuracy(features["train_x"], train_y, features["test_x"], test_y, k=20)}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    data = load_fashion_mnist(args.data)
    idx = probe_train_indices(len(data["train_x"]))
    labels = (data["train_y"][idx], data["test_y"])
    for seed in args.seeds:
        for peer in args.peers:
            train_one(args, peer, seed)

    rows = []
    for peer in args.peers:
        for minutes in args.minutes:
            per_seed = []
            for seed in args.seeds:
                out = run_dir(args, peer, seed)
                mark = {r["mark_s"]: r for r in map(json.loads, open(os.path.join(out, "marks.jsonl")))}[minutes * 60]
                per_seed.append({**mark, **score(args, np.load(os.path.join(out, f"mark_{minutes * 60:g}.npz")),
                                                  labels), "seed": seed})
            rows.append({"implementation": peer, "minutes": minutes, "seeds": args.seeds, "per_seed": per_seed,
                         "overrides": overrides_of(args, peer),
                         **{k: mean_std([r[k] for r in per_seed]) for k in ("images_per_s", "steps", "linear", "knn")}})
    pixels = {k: (v, 0.0) for k, v in score(args, {"train_x": data["train_x"][idx].reshape(len(idx), -1) / 255.0,
                                                   "test_x": data["test_x"].reshape(len(data["test_x"]), -1) / 255.0},
                                            labels).items()}
    rows.append({"implementation": "raw pixels", "minutes": 0, **pixels})

    print(f"\nFashion-MNIST, {len(args.seeds)} seed(s) {args.seeds}, {args.threads} threads; {args.classifier} "
          f"linear probe and 20-NN on mean-pooled final tokens, fit on {len(idx)} train, scored on "
          f"{len(labels[1])} test images (mean +- std over seeds)")
    print(f"{'implementation':<15}{'min':>5}{'images/s':>16}{'steps':>14}{'linear':>18}{'20-NN':>18}")
    for r in rows:
        if r["implementation"] == "raw pixels":
            print(f"{'raw pixels':<15}{'':>5}{'':>16}{'':>14}{r['linear'][0]:>11.4f}{'':>7}{r['knn'][0]:>11.4f}")
            continue
        (ims, ims_s), (st, st_s), (lin, lin_s), (knn, knn_s) = (r[k] for k in ("images_per_s", "steps", "linear",
                                                                              "knn"))
        print(f"{r['implementation']:<15}{r['minutes']:>5g}{ims:>9.1f} +- {ims_s:<4.1f}{st:>7.0f} +- {st_s:<4.0f}"
              f"{lin:>11.4f} +- {lin_s:.4f}{knn:>11.4f} +- {knn_s:.4f}")
    if args.json:
        with open(args.json, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return rows


if __name__ == "__main__":
    main()

"""The learning curve: teacher linear / 20-NN accuracy against training minutes, from the JSON lines
of bench/fashion_mnist_probe.py run at several step counts (one line per step count).

    python bench/fashion_mnist_probe.py --steps 1000 --seeds 0 [recipe overrides] \
        --train_samples 5000 --cache bench/results/probe_cache.json --json bench/results/learning_curve.jsonl
    python bench/learning_curve.py bench/results/learning_curve.jsonl docs/experiments/learning_curve.png

Prints a markdown table (steps, seeds, minutes, teacher linear and 20-NN, random init, raw pixels) and
draws the figure: accuracy against the training minutes of each step count, with the raw-pixel and
random-init probes as horizontal lines. Minutes are the fastest seed's (the others may have shared
the cores with other jobs). Lines of the same name and step count (seeds run apart) are merged.
"""
from __future__ import annotations

import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import mean_std  # noqa: E402


def merge(rows: list[dict]) -> list[dict]:
    """One row per (name, steps): per-seed figures pooled, mean +- std recomputed, minutes = fastest seed."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["name"], r["steps"])].extend(r["per_seed"])
    out = []
    for (name, steps), seeds in groups.items():
        first = next(r for r in rows if (r["name"], r["steps"]) == (name, steps))
        row = {**first, "seeds": [s["seed"] for s in seeds], "per_seed": seeds}
        for key in ("teacher linear", "teacher knn", "student linear", "student knn", "random init linear",
                    "random init knn", "loss"):
            row[key] = list(mean_std([s[key] for s in seeds]))
        row["train_minutes"] = [min(s["train_minutes"] for s in seeds), 0.0]
        out.append(row)
    return out


def main() -> None:
    rows = merge([json.loads(line) for line in open(sys.argv[1]) if line.strip()])
    print("| recipe | steps | seeds | training minutes | teacher linear | teacher 20-NN | random init linear / 20-NN |")
    print("|---|---|---|---|---|---|---|")
    curves = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["name"], r["steps"])):
        lin, knn, minutes = r["teacher linear"], r["teacher knn"], r["train_minutes"]
        print(f"| {r['name']} | {r['steps']} | {len(r['seeds'])} | {minutes[0]:.1f} | {lin[0]:.3f} ± {lin[1]:.3f} "
              f"| {knn[0]:.3f} ± {knn[1]:.3f} | {r['random init linear'][0]:.3f} / {r['random init knn'][0]:.3f} |")
        curves[r["name"]].append(r)
    pixels = rows[0]["raw pixels linear"], rows[0]["raw pixels knn"]
    print(f"\nraw pixels: {pixels[0]:.3f} linear, {pixels[1]:.3f} 20-NN")
    if len(sys.argv) < 3:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, key, pixel in zip(axes, ("linear", "knn"), pixels):
        for name, curve in curves.items():
            x = [r["train_minutes"][0] for r in curve]
            y, err = [r[f"teacher {key}"][0] for r in curve], [r[f"teacher {key}"][1] for r in curve]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"teacher: {name}")
            for r, xi, yi in zip(curve, x, y):
                ax.annotate(f"{r['steps']}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.axhline(pixel, color="k", ls="--", lw=1, label="raw pixels")
        ax.axhline(rows[0][f"random init {key}"][0], color="grey", ls=":", lw=1, label="random init")
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_ylabel("linear probe accuracy" if key == "linear" else "20-NN accuracy")
        ax.set_title(f"Fashion-MNIST, {'calibrated linear probe' if key == 'linear' else '20-NN'}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()

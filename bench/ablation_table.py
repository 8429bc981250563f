"""The learning ablation as a markdown table, from the JSON lines of bench/fashion_mnist_probe.py.

    python bench/ablation_table.py bench/results/learning_ablation.jsonl

One row per JSON line: teacher and student linear / 20-NN (mean +- std over seeds), the teacher's gain
over the same network at random init, the final loss, the teacher's RankMe, and the training step's
GFLOP per image, recounted with the current FlopCounter (real context tokens only; lines written
before the count changed carry an older figure).
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fashion_mnist_probe import step_gflops_per_image  # noqa: E402

from simple_ijepa.config import make_config  # noqa: E402


def pm(value, scale: float = 1.0, digits: int = 3) -> str:
    mean, std = value
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def main() -> None:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| `cpu_small` with | seeds | teacher linear | teacher 20-NN | student linear | student 20-NN | "
          "teacher − random init, points (linear / 20-NN) | final loss | teacher RankMe | GFLOP / image |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gflops = step_gflops_per_image(make_config(["experiment=cpu_small"] + r["overrides"]), draws=8)
        name = r["name"] + (f" (`{' '.join(r['overrides'])}`)" if r["overrides"] else "")
        print(f"| {name} | {len(r['seeds'])} | {pm(r['teacher linear'])} | {pm(r['teacher knn'])} | "
              f"{pm(r['student linear'])} | {pm(r['student knn'])} | {pm(r['teacher gain linear'], 100, 1)} / "
              f"{pm(r['teacher gain knn'], 100, 1)} | {pm(r['loss'])} | {r['teacher_rankme'][0]:.1f} | {gflops:.3f} |")
    r = rows[0]
    print(f"\nRaw pixels: {r['raw pixels linear']:.3f} linear, {r['raw pixels knn']:.3f} 20-NN; random init: "
          f"{pm(r['random init linear'])} linear, {pm(r['random init knn'])} 20-NN.")


if __name__ == "__main__":
    main()

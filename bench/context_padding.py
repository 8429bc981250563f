"""How much context the old batch-minimum truncation dropped, and what padding costs instead.

    python bench/context_padding.py                 # 96 px / patch 8 (12x12 grid), batches 32 and 1024
    python bench/context_padding.py --grid 7 --batch 96

For each batch size, over --draws batches of multi-block masks (the paper's scales): the share of
each sample's available context that cutting every sample to the batch's smallest count (the
official collator, and our masks before padding) would drop, the smallest context that leaves,
and the share of padded slots the padded form (masking.py) computes instead. Padding drops nothing.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simple_ijepa.masks import MultiBlockMaskGenerator  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=int, default=12, help="patches per side (96 px / patch 8 = 12)")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 1024])
    p.add_argument("--draws", type=int, default=50)
    args = p.parse_args()
    gen = MultiBlockMaskGenerator(args.grid)
    print(f"{args.grid}x{args.grid} grid, 4 targets of 15-20%, context block 85-100%, {args.draws} batches each")
    print(f"{'batch':>6}{'mean context':>14}{'batch-min cut drops':>21}{'smallest kept':>15}{'padding share':>15}")
    for batch in args.batch:
        dropped, smallest, padded, mean = [], [], [], []
        for seed in range(args.draws):
            _, _, valid = gen(batch, random.Random(seed), torch.Generator().manual_seed(seed))
            counts = valid.sum(1).float()
            dropped.append(float((1 - counts.min() / counts).mean()))
            smallest.append(int(counts.min()))
            padded.append(float(1 - valid.float().mean()))
            mean.append(float(counts.mean()))
        print(f"{batch:>6}{statistics.mean(mean):>14.1f}{100 * statistics.mean(dropped):>20.1f}%"
              f"{min(smallest):>8}-{max(smallest):<6}{100 * statistics.mean(padded):>14.1f}%")


if __name__ == "__main__":
    main()

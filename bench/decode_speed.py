"""Benchmark (not a test): can the loader workers feed a GPU from a folder of JPEGs?

    python bench/decode_speed.py                       # 2,000 JPEGs at 192 px (2x the default 96), workers 0 1 2
    python bench/decode_speed.py --workers 0 1 2 4 --json bench/results/decode_speed.jsonl

Writes --images Fashion-MNIST training images as RGB JPEGs of --size pixels (quality 90) into class
folders (a temporary folder), then reads the folder as pretraining does (`data.dataset_name=folder`,
decoded on read: `data.decode_cache_mb=0`; squares at `pretrain_side(96, 0.3)` = 176 px for the
default model and crops) through a DataLoader of batch 64 for each worker count, and once through the
decode-once cache (`decode_all`, a process pool). Prints decoded images/s in all and per worker
process, and what N workers would give at that per-worker rate (the I-JEPA step on one H200 needs
about 8,000 images/s).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simple_ijepa.data import build_dataset  # noqa: E402
from simple_ijepa.data.datasets import collate_batch, decode_all, pretrain_side  # noqa: E402


def write_jpegs(root: str, data: str, n: int, size: int) -> None:
    ds = build_dataset("fashion_mnist", data, "train")
    for i in range(n):
        folder = os.path.join(root, str(int(ds.labels[i])))
        os.makedirs(folder, exist_ok=True)
        image = Image.fromarray(np.asarray(ds.images[i, 0])).convert("RGB").resize((size, size), Image.BICUBIC)
        image.save(os.path.join(folder, f"{i}.jpg"), quality=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--size", type=int, default=192, help="JPEG side in pixels (2x the default model's 96)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--project", type=int, default=16, help="report what this many workers would give")
    p.add_argument("--data", default="./data")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="decode_speed_")
    write_jpegs(root, args.data, args.images, args.size)
    side = pretrain_side(96, 0.3)
    dataset = build_dataset("folder", root, "train", image_size=96, min_crop_scale=0.3, cache_mb=0)
    rows = []
    print(f"{args.images} JPEGs of {args.size} px, decoded to {side} px squares; {os.cpu_count()} CPUs")
    for workers in args.workers:
        loader = DataLoader(dataset, batch_size=64, shuffle=False, collate_fn=collate_batch, num_workers=workers)
        t0 = time.perf_counter()
        count = sum(len(images) for images, _ in loader)
        rate = count / (time.perf_counter() - t0)
        rows.append({"workers": workers, "images_per_s": rate, "per_worker": rate / max(workers, 1)})
        print(f"  {workers} worker(s): {rate:7.0f} images/s, {rate / max(workers, 1):6.0f} per worker process")
    t0 = time.perf_counter()
    decode_all(dataset.paths, side)
    once = len(dataset.paths) / (time.perf_counter() - t0)
    per_worker = max(r["per_worker"] for r in rows if r["workers"] > 0) if any(r["workers"] for r in rows) \
        else rows[0]["per_worker"]
    print(f"  decode once (process pool of {min(len(dataset.paths) // 256 + 1, os.cpu_count() or 1)}): "
          f"{once:.0f} images/s\n  {args.project} workers at {per_worker:.0f} images/s each: "
          f"{args.project * per_worker:.0f} images/s (if decoding scales with cores)")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"images": args.images, "size": args.size, "side": side, "rows": rows,
                                "decode_once_images_per_s": once, "cpus": os.cpu_count()}) + "\n")


if __name__ == "__main__":
    main()

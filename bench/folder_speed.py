"""Benchmark (not a test): does a folder of small images train as fast as the same images as arrays?

    python bench/folder_speed.py                 # 5,000 Fashion-MNIST images as 112 px JPEGs, cpu_small, 100 steps
    python bench/folder_speed.py --images 2000 --steps 60 --size 28 --format png

Writes --images Fashion-MNIST training images, resized to --size pixels (bicubic), as JPEG or PNG
files into class folders (a temporary folder),
then trains `experiment=cpu_small` at batch 96 for --steps steps three ways, one after another: on the arrays
(`data.dataset_name=fashion_mnist`), on the folder decoded once into memory (the default,
`data.decode_cache_mb=1024`), and on the folder decoded on read (`data.decode_cache_mb=0`). Reports
the steady training speed (images/s of the last log window, from metrics.jsonl), the whole run's wall
time including start-up and the one-time decode, and the folder's speed relative to the arrays.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simple_ijepa.analysis.run_plots import read_metrics  # noqa: E402
from simple_ijepa.config import make_config  # noqa: E402
from simple_ijepa.data import build_dataset  # noqa: E402
from simple_ijepa.training.trainer import train  # noqa: E402


def write_folder(root: str, data: str, n: int, size: int, fmt: str) -> str:
    """n Fashion-MNIST training images as root/<label>/<i>.<fmt>, size x size RGB."""
    ds = build_dataset("fashion_mnist", data, "train")
    for i in range(n):
        folder = os.path.join(root, str(int(ds.labels[i])))
        os.makedirs(folder, exist_ok=True)
        image = Image.fromarray(np.asarray(ds.images[i, 0])).convert("RGB").resize((size, size), Image.BICUBIC)
        image.save(os.path.join(folder, f"{i:05d}.{fmt}"))
    return root


def run(name: str, overrides: list[str], steps: int, work: str) -> dict:
    save = os.path.join(work, name.replace(" ", "_"))
    cfg = make_config(["experiment=cpu_small", "dataloader.batch_size=96", "model.target_layers=1",
                       f"optim.max_steps={steps}", "eval.enabled=false",
                       f"logging.log_every_n_steps={max(1, steps // 4)}", f"logging.save_model_dir={save}"] + overrides)
    t0 = time.perf_counter()
    train(cfg)
    wall = time.perf_counter() - t0
    return {"name": name, "steady_images_per_s": read_metrics(save)[-1]["images_per_s"], "wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--size", type=int, default=112, help="side of the written images (Fashion-MNIST is 28)")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"))
    p.add_argument("--data", default="./data", help="Fashion-MNIST root (the system copy is found on its own)")
    p.add_argument("--json", default=None, help="append the result as one JSON line to this file")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="folder_speed_")
    t0 = time.perf_counter()
    folder = write_folder(os.path.join(work, "images"), args.data, args.images, args.size, args.format)
    print(f"wrote {args.images} {args.format} files of {args.size} px in {time.perf_counter() - t0:.1f} s")
    arrays = ["data.dataset_name=fashion_mnist", f"data.dataset_path={args.data}"]
    folders = ["data.dataset_name=folder", f"data.dataset_path={folder}"]
    rows = [run("arrays", arrays, args.steps, work),
            run("folder, decoded once", folders, args.steps, work),
            run("folder, decoded on read", folders + ["data.decode_cache_mb=0"], args.steps, work)]
    base = rows[0]["steady_images_per_s"]
    print(f"\nexperiment=cpu_small, {args.steps} steps of 96, {args.images} images (folder: {args.format}, "
          f"{args.size} px)")
    print(f"{'data':<26}{'steady images/s':>18}{'vs arrays':>11}{'run wall time':>15}")
    for r in rows:
        r["vs_arrays"] = r["steady_images_per_s"] / base
        print(f"{r['name']:<26}{r['steady_images_per_s']:>18.1f}{r['vs_arrays']:>10.2f}x{r['wall_s']:>14.1f}s")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"images": args.images, "steps": args.steps, "size": args.size, "format": args.format,
                                "rows": rows}) + "\n")


if __name__ == "__main__":
    main()

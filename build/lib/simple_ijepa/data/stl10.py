"""A memory-mapped reader of the STL-10 binary layout (`stl10_binary/`).

`{split}_X.bin` is headerless uint8: each image is 3 planes of 96x96 stored column-major
(27,648 bytes), so a file reads as [N, 3, 96, 96] with the last two axes swapped.
`{split}_y.bin` holds labels 1..10 (we return 0..9). Nothing is hashed or read whole at start-up.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import DatasetError

STL10_SPLITS = {"train": 5000, "test": 8000, "unlabeled": 100000}
IMAGE_BYTES = 3 * 96 * 96


def find_stl10_dir(root: str) -> str:
    """`root/stl10_binary` if it exists, else `root` itself when it holds the .bin files."""
    nested = os.path.join(root, "stl10_binary")
    return nested if os.path.isdir(nested) else root


def read_stl10(root: str, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (images [N, 3, 96, 96] uint8 view of a memmap, labels [N] int64 or None)."""
    if split not in STL10_SPLITS:
        raise ValueError(f"STL-10 split {split!r} is not one of {tuple(STL10_SPLITS)}")
    folder = find_stl10_dir(root)
    x_path = os.path.join(folder, f"{split}_X.bin")
    if not os.path.isfile(x_path):
        raise DatasetError(
            f"STL-10 file {x_path} is missing. Put the extracted `stl10_binary/` folder under "
            f"data.dataset_path (now {root!r}), or run once with data.download=true on a machine with "
            "network access (torchvision downloads and extracts the 2.6 GB archive).")
    size = os.path.getsize(x_path)
    if size == 0 or size % IMAGE_BYTES:
        raise DatasetError(
            f"STL-10 file {x_path} is truncated or corrupt: {size} bytes is not a whole number of "
            f"{IMAGE_BYTES}-byte images. Delete it and extract or download STL-10 again.")
    n = size // IMAGE_BYTES
    images = np.memmap(x_path, dtype=np.uint8, mode="r", shape=(n, 3, 96, 96)).transpose(0, 1, 3, 2)
    labels = None
    y_path = os.path.join(folder, f"{split}_y.bin")
    if split != "unlabeled":
        if not os.path.isfile(y_path):
            raise DatasetError(f"STL-10 labels {y_path} are missing beside {x_path}.")
        labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1
        if len(labels) != n:
            raise DatasetError(f"STL-10 {split}: {n} images in {x_path} but {len(labels)} labels in {y_path}; "
                             "one of the files is truncated. Extract or download STL-10 again.")
    return images, labels


def write_stl10(root: str, split: str, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Write images [N, 3, 96, 96] uint8 (and labels 0..9) in the real layout (tests, conversions)."""
    folder = os.path.join(root, "stl10_binary")
    os.makedirs(folder, exist_ok=True)
    np.ascontiguousarray(images.transpose(0, 1, 3, 2)).astype(np.uint8).tofile(os.path.join(folder, f"{split}_X.bin"))
    if labels is not None:
        (np.asarray(labels) + 1).astype(np.uint8).tofile(os.path.join(folder, f"{split}_y.bin"))

"""Datasets as uint8 image arrays: one class for every source, batched fetches, no transforms.

`build_dataset(name, root, split)` with split in {"unlabeled", "train", "test"}:
"unlabeled" is what pretraining reads (STL-10's 100k unlabeled images; the train images of the
other sets), "train"/"test" are the labelled splits the probe uses. An image folder is decoded file
by file when a batch is read, so in the DataLoader's worker processes.
"""
from __future__ import annotations

import gzip
import logging
import math
import os
import time

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError
from .stl10 import read_stl10

SPLITS = ("unlabeled", "train", "test")
FASHION_MNIST_DIRS = ("fashion-mnist", os.path.join("FashionMNIST", "raw"))
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian `dataset-fashion-mnist`
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
UNREADABLE = -2  # the label of a black stand-in for an image file that could not be decoded
MAX_PRETRAIN_SIDE = 2.0  # a folder's pretraining images are decoded at most this times model.image_size
log = logging.getLogger(__name__)


class ImageArrayDataset(Dataset):
    """images: uint8 array [N, C, H, W] (a memmap is fine); labels: int64 [N] or None."""

    def __init__(self, images, labels=None, num_classes: int | None = None):
        self.images = images
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.num_classes = num_classes if num_classes is not None else (
            int(self.labels.max()) + 1 if self.labels is not None and len(self.labels) else 0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __getitems__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """One fancy-indexed read per batch: -> (uint8 [B, C, H, W], long [B]; -1 = no label)."""
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx)  # sorted reads are sequential on a memmap
        batch = np.empty((len(idx),) + tuple(self.images.shape[1:]), dtype=np.uint8)
        batch[order] = self.images[idx[order]]
        labels = self.labels[idx] if self.labels is not None else np.full(len(idx), -1, dtype=np.int64)
        return torch.from_numpy(batch), torch.from_numpy(labels)


def collate_batch(batch):
    """`__getitems__` already returns a collated batch."""
    return batch


def pretrain_side(image_size: int, min_crop_scale: float) -> int:
    """The shorter side at which a folder's images are decoded for pretraining:
    ceil(image_size / sqrt(min_crop_scale)), so that the smallest random-resized crop (area share
    `min_crop_scale` of the square) still spans image_size decoded pixels instead of upsampling a
    smaller copy; at most MAX_PRETRAIN_SIDE x image_size, which bounds the uint8 batches' memory
    (4x the pixels of image_size) and the device crop's bilinear downsampling (no antialiasing)."""
    side = math.ceil(image_size / math.sqrt(min_crop_scale) - 1e-9)  # (1e-9: 96 / sqrt(0.25) is 192, not 193)
    return max(image_size, min(side, int(MAX_PRETRAIN_SIDE * image_size)))


def _to_rgb(im):
    """Any PIL mode (palette, alpha, CMYK, 16-bit, 32-bit, float) -> 8-bit RGB, deep modes scaled by their
    range, never clipped: 16-bit ("I;16*") / 257; 32-bit integers ("I") and floats ("F") kept where they
    already lie in 0..255, floats in [0, 1] times 255, anything larger scaled so its maximum is 255."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # deep greys: convert("RGB") would clip
        a = np.asarray(im, dtype=np.float64)
        a = a - min(0.0, float(a.min()))  # (negative values: shift to start at 0)
        top = float(a.max()) if a.size else 0.0
        if im.mode.startswith("I;16"):
            a = a / 257.0
        elif im.mode == "F" and top <= 1.0:
            a = a * 255.0
        elif top > 255.0:
            a = a * (255.0 / top)
        im = Image.fromarray(a.round().clip(0, 255).astype(np.uint8))
    return im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA", "LA") else im.convert("RGB")


MAX_ASPECT = 4.0  # a file's longer side is cut to at most this times its shorter side before resizing


def _cut_aspect(im):
    """The centre of an image whose sides differ by more than MAX_ASPECT, cut to that ratio: a
    1 x 20,000-pixel strip would otherwise become a side x 20,000 * side array."""
    w, h = im.size
    if max(w, h) <= MAX_ASPECT * max(1, min(w, h)):
        return im
    long = int(MAX_ASPECT * max(1, min(w, h)))
    if w > h:
        left = (w - long) // 2
        return im.crop((left, 0, left + long, h))
    top = (h - long) // 2
    return im.crop((0, top, w, top + long))


def decode_resized(path: str, side: int) -> np.ndarray:
    """One image file -> uint8 [3, H, W] with min(H, W) == side and the file's aspect ratio kept
    (bicubic) up to MAX_ASPECT (a longer side is cut around its centre first): EXIF orientation applied,
    any mode made 8-bit RGB. A JPEG at least twice as large is decoded at 1/2, 1/4 or 1/8 scale first
    (PIL's draft mode; never below `side`)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft(None, (side, side))
        im = _to_rgb(_cut_aspect(ImageOps.exif_transpose(im)))
        scale = side / min(im.size)
        size = (max(side, round(im.width * scale)), max(side, round(im.height * scale)))
        if size != im.size:
            im = im.resize(size, Image.BICUBIC)
        return np.asarray(im).transpose(2, 0, 1)


def square(image: np.ndarray, size: int, window: float = 0.5) -> np.ndarray:
    """uint8 [3, H, W] with min(H, W) == size -> the [3, size, size] square at `window` along the
    longer side (0 = left / top, 0.5 = the centre, 1 = right / bottom)."""
    top, left = (round(window * (n - size)) for n in image.shape[1:])
    return image[:, top:top + size, left:left + size]


def decode_image(path: str, size: int, window: float = 0.5) -> np.ndarray:
    """One image file -> uint8 [3, size, size]: `decode_resized` to a shorter side of `size`, then
    its `square` at `window`."""
    return square(decode_resized(path, size), size, window)


def _decode_or_error(args: tuple[str, int]):
    try:
        return decode_resized(*args)
    except Exception as e:  # noqa: BLE001 - reported when the image is read (ImageFolderDataset)
        return e


def decode_all(paths: list[str], side: int) -> list:
    """Every file decoded to a shorter side of `side` (`decode_resized`), by a pool of up to
    os.cpu_count() processes; a file that fails gives its exception in its place."""
    from concurrent.futures import ProcessPoolExecutor

    t0, jobs = time.perf_counter(), [(p, side) for p in paths]
    workers = min(len(paths) // 256 + 1, os.cpu_count() or 1)
    if workers == 1:
        decoded = [_decode_or_error(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            decoded = list(pool.map(_decode_or_error, jobs, chunksize=64))
    mib = sum(getattr(d, "nbytes", 0) for d in decoded) / 2**20
    log.info(f"Decoded {len(paths)} images once into memory ({mib:.0f} MiB) in {time.perf_counter() - t0:.1f} s "
             f"with {workers} process(es); epochs read them from memory.")
    return decoded


def decoded_bytes(paths: list[str], side: int) -> float:
    """What `decode_resized` makes of these files, in bytes, from their headers alone (no decoding):
    3 x side^2 x the aspect ratio (cut at MAX_ASPECT); an unreadable header counts as a square."""
    from PIL import Image

    total = 0.0
    for p in paths:
        try:
            with Image.open(p) as im:
                w, h = im.size
            aspect = min(MAX_ASPECT, max(w, h) / max(1, min(w, h)))
        except Exception:  # noqa: BLE001 - reported when the image is read
            aspect = 1.0
        total += 3 * side * side * aspect
    return total


DECODE_CHECK_FILES = 32  # files a folder dataset tries to decode when it is built


def check_decodable(paths: list[str], side: int, decoded: list | None = None) -> None:
    """DatasetError, naming some of them, when fewer than half of a folder's images decode: the ones
    already decoded (the cache), or a fixed sample of DECODE_CHECK_FILES. A few bad files are read
    as black stand-ins; a folder of them would train on black images."""
    if decoded is not None:
        errors = [(p, d) for p, d in zip(paths, decoded) if isinstance(d, Exception)]
        tried = len(paths)
    else:
        sample = np.random.RandomState(0).choice(len(paths), min(len(paths), DECODE_CHECK_FILES), replace=False)
        tried, errors = len(sample), []
        for i in sorted(sample):
            result = _decode_or_error((paths[i], side))
            if isinstance(result, Exception):
                errors.append((paths[i], result))
    if 2 * len(errors) > tried:
        named = "; ".join(f"{p} ({type(e).__name__}: {e})" for p, e in errors[:3])
        raise DatasetError(f"{len(errors)} of {tried} image files tried could not be decoded (e.g. {named}). "
                           "Check that data.dataset_path points at real images (not Git LFS pointers, not "
                           "truncated downloads).")


class ImageFolderDataset(Dataset):
    """Image files decoded on read (in the loader's workers) to uint8 [3, size, size]; labels int64
    [N] or None.

    Each file's shorter side is resized to `size` (aspect kept) and a square cut out of it: the
    centre one, or with `random_window` one at a position drawn from (seed, epoch, index), so a
    batch stacks and a resumed run sees the same squares (the trainer calls `set_epoch`).
    A file that cannot be decoded (corrupt, truncated, empty, not an image) never stops a run: it
    is logged once by name and read as a black image labelled UNREADABLE (-2), which the trainer
    counts and the probes leave out. A folder in which fewer than half of the files tried decode
    is refused when the dataset is built (`check_decodable`).

    cache_mb > 0: when the resized images fit in that many MiB (estimated from each file's header: 3 x
    size^2 x its aspect ratio, at most MAX_ASPECT), every file is decoded once, up front, by a pool of
    processes, and epochs cut their squares from memory: a small folder then trains as fast as arrays
    (docs/data.md). Larger folders decode on read.
    """

    def __init__(self, paths: list[str], labels, num_classes: int, size: int, random_window: bool = False,
                 seed: int = 0, cache_mb: float = 0):
        self.paths, self.size = paths, size
        self.labels, self.num_classes = labels, num_classes
        self.random_window, self.seed, self.epoch = random_window, seed, 0
        self._reported: set[str] = set()
        self._decoded: list | None = None  # per file: uint8 [3, H, W] (shorter side = size), or the error
        if cache_mb > 0 and len(paths) * 3 * size * size <= cache_mb * 2 ** 20:  # (squares: a lower bound)
            if decoded_bytes(paths, size) <= cache_mb * 2 ** 20:
                self._decoded = decode_all(paths, size)
        check_decodable(paths, size, self._decoded)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's square windows (random_window); call before the epoch's DataLoader."""
        self.epoch = epoch

    def _window(self, i: int) -> float:
        if not self.random_window:
            return 0.5
        return float(np.random.default_rng([self.seed % 2**32, self.epoch, i]).random())

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitems__(self, indices):
        out = np.zeros((len(indices), 3, self.size, self.size), dtype=np.uint8)
        labels = self.labels[indices] if self.labels is not None else np.full(len(indices), -1, dtype=np.int64)
        labels = np.array(labels, dtype=np.int64)
        for k, i in enumerate(indices):
            try:
                if self._decoded is None:
                    out[k] = decode_image(self.paths[i], self.size, self._window(i))
                elif isinstance(self._decoded[i], Exception):
                    raise self._decoded[i]
                else:
                    out[k] = square(self._decoded[i], self.size, self._window(i))
            except Exception as e:  # noqa: BLE001 - PIL raises many kinds; any of them means the same here
                labels[k] = UNREADABLE
                if self.paths[i] not in self._reported:
                    self._reported.add(self.paths[i])
                    log.warning(f"Unreadable image {self.paths[i]} ({type(e).__name__}: {e}); "
                                "using a black image in its place.")
        return torch.from_numpy(out), torch.from_numpy(labels)


def _split_indices(n: int, split: str, test_share: float = 0.3, seed: int = 0) -> np.ndarray:
    """A fixed, seeded train/test split for sets that ship without one; unlabeled = train part."""
    perm = np.random.RandomState(seed).permutation(n)
    n_test = int(round(n * test_share))
    return np.sort(perm[:n_test] if split == "test" else perm[n_test:])


def _digits(split: str) -> ImageArrayDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None]  # [1797, 1, 8, 8]
    idx = _split_indices(len(images), split)
    return ImageArrayDataset(images[idx], d.target[idx], num_classes=10)


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist(root: str, split: str, download: bool) -> ImageArrayDataset:
    prefix = "t10k" if split == "test" else "train"
    candidates = [os.path.join(root, d) for d in FASHION_MNIST_DIRS] + [FASHION_MNIST_SYSTEM_DIR]
    if download:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(root, train=(prefix == "train"), download=True)
    for folder in candidates:
        x_path = os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz")
        if os.path.isfile(x_path):
            images = _read_idx(x_path)[:, None]
            labels = _read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"))
            return ImageArrayDataset(images, labels, num_classes=10)
    raise DatasetError(
        f"Fashion-MNIST not found in {candidates}. Install the Debian package "
        "(`apt-get install dataset-fashion-mnist`) or set data.download=true on a machine with network.")


def _cifar10(root: str, split: str, download: bool) -> ImageArrayDataset:
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(root, train=(split != "test"), download=download)
    except RuntimeError as e:
        raise DatasetError(f"CIFAR-10 not found under {root!r} ({e}). Set data.download=true on a "
                                "machine with network, or put `cifar-10-batches-py/` there.") from None
    return ImageArrayDataset(ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets), num_classes=10)


def _image_paths(root: str) -> list[str]:
    """Every image file (IMAGE_EXTENSIONS) below `root`, sorted. Symlinked folders are followed (each
    real folder once, so a link loop ends); hidden folders and files (".ipynb_checkpoints/", ".DS_Store")
    and anything that is not a regular file are skipped, and what was skipped is logged."""
    paths, seen, skipped = [], set(), []
    for d, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(d)
        if real in seen:  # a symlink loop, or a second link to a folder already read
            dirs[:] = []
            skipped.append(f"{d}/ (a link to a folder already read)")
            continue
        seen.add(real)
        skipped += [os.path.join(d, x) + "/" for x in dirs if x.startswith(".")]
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in files:
            path = os.path.join(d, f)
            if not f.lower().endswith(IMAGE_EXTENSIONS):
                continue
            if f.startswith(".") or not os.path.isfile(path):  # (isfile follows links: a regular file behind)
                skipped.append(path)
                continue
            paths.append(path)
    if skipped:
        log.info(f"Image folder {root!r}: skipped {len(skipped)} hidden, looping or non-regular entries "
                 f"(e.g. {', '.join(skipped[:3])}).")
    if not paths:
        raise DatasetError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {root!r} (data.dataset_path).")
    return sorted(paths)


def _class_labels(paths: list[str], root: str, classes: list[str] | None = None):
    """(labels int64 [N], classes): an image's class is its first folder below `root`, numbered by
    its place in `classes` (default: those folders, sorted). (None, []) if an image is not in a folder."""
    prefix = len(os.path.join(root, ""))  # (a slice: os.path.relpath takes seconds on a million files)
    parts = [p[prefix:].split(os.sep, 1) for p in paths]
    if any(len(part) == 1 for part in parts):
        return None, []
    tops = [part[0] for part in parts]
    classes = classes if classes is not None else sorted(set(tops))
    number = {c: k for k, c in enumerate(classes)}
    unknown = sorted(set(tops) - set(number))
    if unknown:
        raise DatasetError(f"Class folder(s) {unknown[:5]} under {root!r} have no folder of the same name in "
                           "train/; val/ must use train/'s class names.")
    return np.array([number[t] for t in tops], dtype=np.int64), classes


def _folder(root: str, split: str, size: int, random_window: bool = False, seed: int = 0,
            cache_mb: float = 0) -> ImageFolderDataset:
    """data.dataset_name=folder. With DIR/train/ and DIR/val/ (or DIR/test/) beside it (the ImageNet
    layout) these are the splits: train/ for pretraining and the probe's train split, val/ for its
    test split, each with class folders below it. Otherwise DIR is one folder (a train/ in it alone is
    a class like any other): pretraining reads every image, and with class sub-folders a fixed 80/20
    split (seed 0) makes the probe's train / test splits, pretraining then reading the 80%."""
    root = os.path.normpath(root)
    if not os.path.isdir(root):
        raise DatasetError(f"Image folder {root!r} (data.dataset_path) does not exist.")
    train_dir = os.path.join(root, "train")
    held_out = [d for d in (os.path.join(root, "val"), os.path.join(root, "test")) if os.path.isdir(d)]
    if os.path.isdir(train_dir) and held_out:
        if len(held_out) == 2:
            log.info(f"Image folder {root!r}: train/ with both val/ and test/; the probe's test split is val/.")
        root = held_out[0] if split == "test" else train_dir
        paths = _image_paths(root)
        classes = sorted(e.name for e in os.scandir(train_dir) if e.is_dir() and not e.name.startswith("."))
        labels, classes = _class_labels(paths, root, classes)
    else:
        paths = _image_paths(root)
        labels, classes = _class_labels(paths, root)
        if split != "unlabeled" or labels is not None:
            idx = _split_indices(len(paths), split, test_share=0.2)
            paths = [paths[i] for i in idx]
            labels = labels[idx] if labels is not None else None
    if split != "unlabeled" and labels is None:
        raise DatasetError(f"Image folder {root!r} has no class sub-folders, so it has no labels to probe with; "
                           "put every image in a folder named after its class.")
    return ImageFolderDataset(paths, labels, len(classes), size, random_window, seed, cache_mb)


def _stl10(root: str, split: str, download: bool, image_size: int, min_crop_scale, seed: int, cache_mb: float):
    if download:
        from torchvision.datasets import STL10

        STL10(root, split=split, download=True)
    images, labels = read_stl10(root, split)
    return ImageArrayDataset(images, labels, num_classes=10)


def _image_folder(root: str, split: str, download: bool, image_size: int, min_crop_scale, seed: int,
                  cache_mb: float):
    if min_crop_scale is None:
        return _folder(root, split, image_size)
    return _folder(root, split, pretrain_side(image_size, min_crop_scale), random_window=True, seed=seed,
                   cache_mb=cache_mb)


# data.dataset_name -> loader(root, split, download, image_size, min_crop_scale, seed, cache_mb). A new
# dataset is one loader and one line here (config.validate and the commands read the names from here).
DATASETS = {
    "stl10": _stl10,
    "digits": lambda root, split, *_: _digits(split),
    "fashion_mnist": lambda root, split, download, *_: _fashion_mnist(root, split, download),
    "cifar10": lambda root, split, download, *_: _cifar10(root, split, download),
    "folder": _image_folder,
}


def build_dataset(name: str, root: str, split: str, download: bool = False, image_size: int = 96,
                  min_crop_scale: float | None = None, seed: int = 0, cache_mb: float = 0):
    """The `split` of dataset `name` under `root` as an ImageArrayDataset (ImageFolderDataset for
    "folder": its images are centre squares at `image_size`; for pretraining, `min_crop_scale` =
    data.crop_scale[0] makes them squares at `pretrain_side`, at a random place seeded by `seed`,
    decoded once into memory when they fit in `cache_mb` MiB)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; there are {tuple(DATASETS)}")
    return DATASETS[name](root, split, download, image_size, min_crop_scale, seed, cache_mb)

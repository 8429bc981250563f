import os

import numpy as np
import pytest
import torch

from simple_ijepa.data import build_dataset, eval_transform, random_resized_crop, read_stl10, write_stl10
from simple_ijepa.data.augment import MEAN, STD
from simple_ijepa.errors import DatasetError


def test_stl10_reader_reads_the_real_layout(tmp_path):
    images = np.random.RandomState(0).randint(0, 256, (3, 3, 96, 96), dtype=np.uint8)
    write_stl10(str(tmp_path), "train", images, np.array([0, 9, 4]))
    raw = np.fromfile(tmp_path / "stl10_binary" / "train_X.bin", dtype=np.uint8)
    assert raw.size == 3 * 27648
    # the file is column-major per plane: byte (c, x, y) of image 0 is pixel [c, y, x]
    assert raw[1] == images[0, 0, 1, 0] and raw[96] == images[0, 0, 0, 1]
    assert (np.fromfile(tmp_path / "stl10_binary" / "train_y.bin", dtype=np.uint8) == [1, 10, 5]).all()
    x, y = read_stl10(str(tmp_path), "train")
    assert np.array_equal(x, images) and y.tolist() == [0, 9, 4]
    assert isinstance(x.base, np.memmap) or isinstance(x, np.memmap)


def test_stl10_dataset_batches(fake_stl10):
    ds = build_dataset("stl10", fake_stl10, "unlabeled")
    assert len(ds) == 256 and ds.labels is None
    x, y = ds.__getitems__([5, 1, 200])
    assert x.shape == (3, 3, 96, 96) and x.dtype == torch.uint8 and (y == -1).all()
    assert torch.equal(x[1], ds.__getitems__([1])[0][0])
    train = build_dataset("stl10", fake_stl10, "train")
    assert len(train) == 100 and train.num_classes == 10


def test_stl10_missing_and_truncated_files_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="data.download=true"):
        read_stl10(str(tmp_path), "unlabeled")
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    (folder / "unlabeled_X.bin").write_bytes(b"\0" * (27648 + 100))
    with pytest.raises(DatasetError, match="truncated"):
        read_stl10(str(tmp_path), "unlabeled")
    write_stl10(str(tmp_path), "test", np.zeros((4, 3, 96, 96), np.uint8), np.zeros(4, int))
    with open(folder / "test_y.bin", "wb") as f:
        f.write(b"\1\1")
    with pytest.raises(DatasetError, match="labels"):
        read_stl10(str(tmp_path), "test")


def test_digits_and_fashion_mnist_splits():
    tr, te = build_dataset("digits", "unused", "train"), build_dataset("digits", "unused", "test")
    assert len(tr) + len(te) == 1797 and tr.images.shape[1:] == (1, 8, 8)
    assert tr.images.max() == 255
    fm = build_dataset("fashion_mnist", "/nonexistent", "test")
    assert len(fm) == 10000 and fm.images.shape[1:] == (1, 28, 28) and fm.num_classes == 10


def test_folder_dataset_with_classes(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        os.makedirs(tmp_path / c)
        for i in range(5):
            Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(tmp_path / c / f"{i}.png")
    train = build_dataset("folder", str(tmp_path), "train", image_size=16)
    test = build_dataset("folder", str(tmp_path), "test", image_size=16)
    assert len(train) + len(test) == 10 and train.num_classes == 2
    x, y = train.__getitems__([0, 1])
    assert x.shape == (2, 3, 16, 16) and set(y.tolist()) <= {0, 1}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="No images"):
        build_dataset("folder", str(empty), "unlabeled")


def test_batched_crop_and_flip():
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = random_resized_crop(images, 24, generator=g)
    assert out.shape == (6, 3, 24, 24) and out.dtype == torch.float32
    again = random_resized_crop(images, 24, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    # scale=(1, 1) and ratio 1 is the whole image: a flip or the identity
    full = random_resized_crop(images, 40, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=g)
    ref = eval_transform(images, 40)
    same = [(torch.allclose(full[i], ref[i], atol=1e-4) or torch.allclose(full[i], ref[i].flip(-1), atol=1e-4))
            for i in range(6)]
    assert all(same)
    gray = random_resized_crop(images[:, :1], 24, generator=g)
    assert gray.shape == (6, 3, 24, 24)
    lo = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert (out.amin(dim=(0, 2, 3)) >= lo - 1e-5).all()

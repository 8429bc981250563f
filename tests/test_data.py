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


# --- issue 13: folders at scale (train/ + val/ splits, decoding large enough for the crops) ---------
def _write_pngs(folder, sizes, seed: int = 0) -> None:
    """One PNG per (width, height) in `sizes` under `folder` (created)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def imagenet_layout(root, n_train: int = 4, n_val: int = 3) -> None:
    """root/{train,val}/{cat,dog}/*.png: images of different sizes and aspects (portrait, landscape, square)."""
    sizes = [(40, 30), (24, 48), (36, 36), (60, 20), (30, 45)]
    for split, n in (("train", n_train), ("val", n_val)):
        for c, name in enumerate(("cat", "dog")):
            _write_pngs(root / split / name, sizes[:n], seed=c)


def test_pretraining_decode_keeps_the_aspect_above_image_size(tmp_path):
    from simple_ijepa.data.datasets import decode_image, decode_resized, pretrain_side

    assert pretrain_side(96, 0.3) == 176  # ceil(96 / sqrt(0.3)) = ceil(175.3)
    assert pretrain_side(96, 0.25) == 192 and pretrain_side(96, 0.08) == 192  # capped at 2x
    assert pretrain_side(28, 0.6) == 37 and pretrain_side(32, 1.0) == 32
    _write_pngs(tmp_path, [(80, 40), (30, 60)])
    side = pretrain_side(16, 0.3)  # 30
    wide, tall = (decode_resized(str(tmp_path / f"{i}.png"), side) for i in (0, 1))
    assert wide.shape == (3, 30, 60) and tall.shape == (3, 60, 30)  # shorter side 30 > 16, aspect 2:1 kept
    square = decode_image(str(tmp_path / "0.png"), side, window=1.0)  # the right-hand square
    assert square.shape == (3, 30, 30) and np.array_equal(square, wide[:, :, 30:])


def test_train_and_val_folders_are_the_probes_splits(tmp_path):
    from simple_ijepa.evaluation import LinearProbe

    imagenet_layout(tmp_path, n_train=4, n_val=3)
    pretrain = build_dataset("folder", str(tmp_path), "unlabeled", image_size=16, min_crop_scale=0.3)
    assert len(pretrain) == 8 and all(f"{os.sep}train{os.sep}" in p for p in pretrain.paths)
    x, _ = pretrain.__getitems__([0, 1, 2])
    assert x.shape == (3, 3, 30, 30)  # pretrain_side(16, 0.3): batches stack at the larger size
    assert torch.equal(x, pretrain.__getitems__([0, 1, 2])[0])  # squares drawn from (seed, epoch, index)
    pretrain.set_epoch(1)
    assert not torch.equal(x, pretrain.__getitems__([0, 1, 2])[0])  # another epoch, other squares
    probe = LinearProbe(16, str(tmp_path), "folder", classifier="logistic", knn_k=3)
    assert len(probe.train_set) == 8 and len(probe.test_set) == 6  # every val/ image is the test split
    assert probe.train_set.num_classes == probe.test_set.num_classes == 2
    assert probe.test_set.labels.tolist() == [0, 0, 0, 1, 1, 1]  # cat, dog: from the class folders
    assert all(f"{os.sep}val{os.sep}" in p for p in probe.test_set.paths)
    assert probe.max_train_samples == probe.max_test_samples == 10_000  # the folder default
    feats = probe.extract(lambda images: images.flatten(1))
    assert feats.test_x.shape == (6, 3 * 16 * 16) and feats.test_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert 0 <= probe.score(feats)["probe_acc"] <= 1
    (tmp_path / "val" / "bird").mkdir()
    _write_pngs(tmp_path / "val" / "bird", [(20, 20)])
    with pytest.raises(DatasetError, match="bird"):
        build_dataset("folder", str(tmp_path), "test", image_size=16)


def test_a_flat_folder_keeps_its_80_20_split(tmp_path):
    for c in ("cat", "dog"):
        _write_pngs(tmp_path / c, [(40, 30)] * 5)
    train = build_dataset("folder", str(tmp_path), "train", image_size=16)
    test = build_dataset("folder", str(tmp_path), "test", image_size=16)
    pretrain = build_dataset("folder", str(tmp_path), "unlabeled", image_size=16, min_crop_scale=0.5)
    assert (len(train), len(test)) == (8, 2) and not set(train.paths) & set(test.paths)
    assert pretrain.paths == train.paths  # pretraining reads the probe's 80%, never its test images
    assert pretrain.__getitems__([0])[0].shape == (1, 3, 23, 23)  # ceil(16 / sqrt(0.5))


def test_a_training_run_on_train_and_val_decodes_in_the_loader_workers(tmp_path, monkeypatch):
    """Without the decode cache (data.decode_cache_mb=0: a folder too large for memory), pretraining
    and the probe decode in DataLoader worker processes: pretraining at the larger side (random
    squares), the probe at image_size."""
    from helpers import TINY_MODEL

    from simple_ijepa.data import datasets
    from simple_ijepa.training.trainer import make_config, train

    imagenet_layout(tmp_path / "data", n_train=5, n_val=2)
    decode, log_file = datasets.decode_image, tmp_path / "decodes.txt"

    def logged(path, size, window=0.5):
        with open(log_file, "a") as f:  # forked workers append to the same file
            f.write(f"{os.getpid()} {size}\n")
        return decode(path, size, window)

    monkeypatch.setattr(datasets, "decode_image", logged)
    out = train(make_config(TINY_MODEL + [
        "data.dataset_name=folder", f"data.dataset_path={tmp_path / 'data'}", "model.image_size=16",
        "model.patch_size=4", "data.crop_scale=[0.3,1.0]", "dataloader.batch_size=4", "dataloader.num_workers=1",
        "optim.max_steps=3", "logging.log_every_n_steps=3", "eval.classifier=logistic", "eval.knn_k=3",
        "data.decode_cache_mb=0", f"logging.save_model_dir={tmp_path / 'run'}"]))
    assert out["step"] == 3 and 0 <= out["metrics"]["probe_teacher"] <= 1
    decodes = [line.split() for line in log_file.read_text().splitlines()]
    assert {pid for pid, _ in decodes}.isdisjoint({str(os.getpid())})  # none in the main process
    sizes = [int(size) for _, size in decodes]
    assert set(sizes) == {30, 16} and sizes.count(30) >= 3 * 4  # pretraining: 3 steps of 4 (+ prefetched)
    assert sizes.count(16) == 2 * (10 + 4)  # the probe: 2 encoders x (10 train/ + 4 val/ images)


def test_a_small_folder_is_decoded_once_and_gives_the_same_squares(tmp_path, caplog):
    """With the decode cache every file is decoded once, up front; each epoch's random squares are
    the ones decoding on read gives, an unreadable file is still a black UNREADABLE image, and a
    folder larger than the cache decodes on read."""
    from simple_ijepa.data.datasets import UNREADABLE, build_dataset

    imagenet_layout(tmp_path, n_train=5, n_val=1)
    (tmp_path / "train" / "cat" / "broken.png").write_bytes(b"not an image")
    on_read = build_dataset("folder", str(tmp_path), "unlabeled", image_size=16, min_crop_scale=0.3, seed=1)
    cached = build_dataset("folder", str(tmp_path), "unlabeled", image_size=16, min_crop_scale=0.3, seed=1,
                           cache_mb=1)
    assert on_read._decoded is None and len(cached._decoded) == len(on_read) == 11
    for epoch in (0, 3):
        on_read.set_epoch(epoch)
        cached.set_epoch(epoch)
        a, la = on_read.__getitems__(list(range(11)))
        b, lb = cached.__getitems__(list(range(11)))
        assert torch.equal(a, b) and torch.equal(la, lb) and (lb == UNREADABLE).sum() == 1
    tiny_budget = build_dataset("folder", str(tmp_path), "unlabeled", image_size=16, min_crop_scale=0.3,
                                cache_mb=1e-4)
    assert tiny_budget._decoded is None


def test_folders_read_as_the_user_means_them(tmp_path, caplog):
    """train/ without val/ or test/ is a class; symlinked class folders are followed, a link loop ends;
    hidden folders are skipped; a test/ beside train/ is the held-out split."""
    import logging

    vehicles = tmp_path / "vehicles"
    for c, name in enumerate(("bus", "car", "train", "truck")):
        _write_pngs(vehicles / name, [(20, 20)] * 3, seed=c)
    _write_pngs(vehicles / ".ipynb_checkpoints", [(20, 20)], seed=9)
    elsewhere = tmp_path / "elsewhere" / "van"
    _write_pngs(elsewhere, [(20, 20)] * 3, seed=7)
    os.symlink(elsewhere, vehicles / "van")
    os.symlink(vehicles, vehicles / "bus" / "loop")  # a link back up: read once, not forever
    with caplog.at_level(logging.INFO):
        train, test = (build_dataset("folder", str(vehicles), s, image_size=16) for s in ("train", "test"))
    assert train.num_classes == 5 and len(train) + len(test) == 15  # bus car train truck van, 3 each
    assert "skipped" in caplog.text and ".ipynb_checkpoints" in caplog.text

    split = tmp_path / "split"
    for part in ("train", "test"):
        for c, name in enumerate(("a", "b")):
            _write_pngs(split / part / name, [(20, 20)] * 2, seed=c)
    assert len(build_dataset("folder", str(split), "test", image_size=16)) == 4  # test/ is the held-out split


def test_a_folder_of_unreadable_files_is_refused_naming_them(tmp_path):
    for i in range(6):
        (tmp_path / f"{i}.png").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    _write_pngs(tmp_path / "ok", [(20, 20)])
    with pytest.raises(DatasetError, match="6 of 7 image files tried could not be decoded.*0.png"):
        build_dataset("folder", str(tmp_path), "unlabeled", image_size=16, min_crop_scale=0.5)


def test_deep_and_extreme_images_decode_by_their_range_and_bounded_in_size(tmp_path):
    from PIL import Image

    from simple_ijepa.data.datasets import MAX_ASPECT, decode_resized

    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(ramp, mode="F").save(tmp_path / "float.tiff")  # a float image in [0, 1]
    Image.fromarray((ramp * 300).astype(np.int32), mode="I").save(tmp_path / "int32.tiff")  # max just above 255
    for name in ("float.tiff", "int32.tiff"):
        decoded = decode_resized(str(tmp_path / name), 8)
        assert decoded.max() == 255 and decoded.min() == 0, name  # the whole range, not black
    Image.fromarray(np.full((1, 2000), 128, np.uint8)).save(tmp_path / "strip.png")
    assert decode_resized(str(tmp_path / "strip.png"), 16).shape == (3, 16, int(16 * MAX_ASPECT))

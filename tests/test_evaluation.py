"""Evaluation: features, linear probe, k-NN, LinearProbe, the trainer's probes, the command.

A tiny random-init ViT on images with a colour-coded class is enough to score far above chance.
"""
import logging
import os
import warnings

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from simple_ijepa.config import TrainConfig
from simple_ijepa.data import build_dataset, eval_transform, write_stl10
from simple_ijepa.evaluation import (
    LastBlocks,
    LinearProbe,
    extract_features,
    knn_accuracy,
    linear_probe_accuracy,
    periodic_probes,
)
from simple_ijepa.models import IJEPA
from simple_ijepa.models.vit import VisionTransformer, ViTConfig
from simple_ijepa.utils.distributed import DistInfo

TINY = dict(image_size=32, patch_size=8, dim=32, depth=1, heads=2, head_dim=16, mlp_ratio=2.0)


def tiny_vit(seed: int = 0, **kw) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(ViTConfig(**{**TINY, **kw}))


def colour_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, 3, 96, 96]: one fixed colour per class (10 classes) plus pixel noise; labels [n]."""
    palette = np.random.RandomState(123).randint(30, 225, size=(10, 3))
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % 10
    images = palette[labels][:, :, None, None] + rng.normal(0, 25, size=(n, 3, 96, 96))
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def colour_stl10(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("stl10"))
    for split, n, seed in (("train", 200, 0), ("test", 100, 1)):
        write_stl10(root, split, *colour_images(n, seed))
    return root


def small_cfg(root: str, **eval_kw):
    cfg = OmegaConf.structured(TrainConfig)
    cfg.data.dataset_path = root
    cfg.model.update(image_size=32, patch_size=8, hidden_dim=32, depth=1, heads=2, head_dim=16,
                     predictor_dim=32, predictor_depth=1, predictor_heads=2)
    cfg.eval.update(eval_kw)
    return cfg


def test_stl10eval_scores_far_above_chance(colour_stl10):
    result = LinearProbe(32, colour_stl10, batch_size=64).evaluate(tiny_vit())
    assert set(result) == {"probe_acc", "knn_acc"}
    assert result["probe_acc"] > 0.6 and result["knn_acc"] > 0.6  # chance is 0.1


def test_plain_logistic_classifier(colour_stl10):
    result = LinearProbe(32, colour_stl10, classifier="logistic").evaluate(tiny_vit())
    assert result["probe_acc"] > 0.6


def test_digits_through_the_same_code_path():
    ev = LinearProbe(16, dataset_name="digits", max_train_samples=600, max_test_samples=300)
    result = ev.evaluate(tiny_vit(image_size=16, patch_size=4))
    assert result["probe_acc"] > 0.4 and result["knn_acc"] > 0.2


def test_extract_features_subset_and_pooling():
    ds = build_dataset("digits", "", "train")
    vit = tiny_vit(image_size=16, patch_size=4).eval()
    feats, labels = extract_features(vit, ds, 16, "cpu", batch_size=32, max_samples=100)
    again, labels2 = extract_features(vit, ds, 16, "cpu", batch_size=7, max_samples=100)
    assert feats.shape == (100, 32) and feats.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, labels2)  # the same seeded subset
    np.testing.assert_allclose(feats, again, atol=1e-5)  # batch size does not matter
    assert len(np.unique(labels)) > 5 and set(labels) <= set(ds.labels)
    # a [B, D] feature function passes through; tokens [B, N, D] are mean-pooled
    pooled, _ = extract_features(lambda x: vit(x).mean(1), ds, 16, "cpu", max_samples=100)
    np.testing.assert_allclose(pooled, feats, atol=1e-5)
    # the first feature by hand
    images, _ = ds.__getitems__([int(np.flatnonzero(ds.labels == labels[0])[0])])
    with torch.no_grad():
        first = vit(eval_transform(images, 16)).mean(1)[0].numpy()
    assert np.abs(feats - first).sum(1).min() < 1e-4


def test_last_blocks_concatenates_each_normed_block():
    vit = tiny_vit(image_size=16, patch_size=4, depth=3).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        tokens = LastBlocks(vit, 2)(x)
        h = vit.embed(x)
        h1 = vit.blocks[1](vit.blocks[0](h))
    assert tokens.shape == (2, 16, 64)
    torch.testing.assert_close(tokens[..., :32], vit.norm(h1))
    torch.testing.assert_close(tokens[..., 32:], vit(x))  # the last block is the encoder's output
    torch.testing.assert_close(LastBlocks(vit, 1)(x), vit(x))
    with pytest.raises(ValueError, match="n_last_blocks must be in \\[1, 3\\]"):
        LastBlocks(vit, 4)


def test_eval_mode_is_restored(colour_stl10):
    vit = tiny_vit().train()
    vit.blocks[0].eval()  # a submodule's own mode is kept too
    seen = []
    vit.register_forward_hook(lambda m, i, o: seen.append(m.training))
    LinearProbe(32, colour_stl10, max_train_samples=50, max_test_samples=20, classifier="logistic").evaluate(vit)
    assert seen and not any(seen)
    assert vit.training and not vit.blocks[0].training and vit.norm.training


def test_knn_on_separated_clusters():
    rng = np.random.RandomState(0)
    centres = rng.normal(size=(3, 16)) * 5
    y_train, y_test = np.repeat(np.arange(3), 30), np.repeat(np.arange(3), 10)
    x_train = centres[y_train] + rng.normal(size=(90, 16))
    x_test = centres[y_test] + rng.normal(size=(30, 16))
    assert knn_accuracy(x_train, y_train, x_test, y_test, k=5, chunk=7) == 1.0
    assert knn_accuracy(x_train, y_train, x_test, (y_test + 1) % 3, k=5) == 0.0


def test_probe_retries_and_reports_non_convergence(caplog):
    rng = np.random.RandomState(0)
    x, y = rng.normal(size=(120, 20)), np.arange(120) % 4
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        acc = linear_probe_accuracy(x[:80], y[:80], x[80:], y[80:], "logistic", max_iter=1)
    assert 0.0 <= acc <= 1.0
    assert "did not converge in 5 iterations" in caplog.text
    assert not [w for w in caught if "ConvergenceWarning" in w.category.__name__]


def test_periodic_probes_baseline(colour_stl10):
    cfg = small_cfg(colour_stl10, max_train_samples=100, max_test_samples=50, classifier="logistic")
    torch.manual_seed(0)
    model = IJEPA.from_config(cfg.model).train()
    out = periodic_probes(model, cfg, DistInfo())
    assert set(out) == {"probe_teacher", "knn_teacher", "probe_student", "knn_student"}
    assert all(0.0 <= v <= 1.0 for v in out.values()) and model.training and model.encoder.training


class FakeGated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = tiny_vit()

    def probe_feature_fns(self):
        return {"gated": lambda x: self.encoder(x) * 0.5, "all_open": self.encoder}


def test_periodic_probes_gated(colour_stl10):
    cfg = small_cfg(colour_stl10, max_train_samples=100, max_test_samples=50, classifier="logistic")
    out = periodic_probes(FakeGated(), cfg, DistInfo())
    assert set(out) == {"probe_gated", "knn_gated", "probe_all_open", "knn_all_open"}
    assert out["knn_gated"] == out["knn_all_open"]  # k-NN is scale-invariant


def _gloo_worker(rank: int, world: int, init_file: str, root: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ds = build_dataset("digits", "", "test")
        feats, labels = extract_features(tiny_vit(image_size=16, patch_size=4), ds, 16, "cpu", batch_size=16,
                                         rank=rank, world_size=world, max_samples=101)
        cfg = small_cfg(root, max_train_samples=100, max_test_samples=50, classifier="logistic")
        torch.manual_seed(0)
        probes = periodic_probes(IJEPA.from_config(cfg.model), cfg, DistInfo(rank=rank, world_size=world))
        torch.save({"feats": feats, "labels": labels, "probes": probes}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_matches_one_process(colour_stl10, tmp_path):
    mp.spawn(_gloo_worker, args=(2, str(tmp_path / "init"), colour_stl10, str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    ds = build_dataset("digits", "", "test")
    feats, labels = extract_features(tiny_vit(image_size=16, patch_size=4), ds, 16, "cpu", max_samples=101)
    np.testing.assert_allclose(r0["feats"], feats, atol=1e-5)  # all 101, in dataset order
    np.testing.assert_array_equal(r0["labels"], labels)
    assert r1["feats"] is None and r1["labels"] is None
    cfg = small_cfg(colour_stl10, max_train_samples=100, max_test_samples=50, classifier="logistic")
    torch.manual_seed(0)
    single = periodic_probes(IJEPA.from_config(cfg.model), cfg, DistInfo())
    assert r0["probes"] == r1["probes"]
    assert r0["probes"] == pytest.approx(single, abs=1e-6)


def test_command_prints_pretrained_and_random_init(tmp_path, capsys):
    from simple_ijepa.evaluate import main
    from simple_ijepa.export import save_encoder

    path = str(tmp_path / "encoder_ddp.pth")
    save_encoder(tiny_vit(seed=3, image_size=16, patch_size=4, depth=2), path)
    results = main(["--ckpt_path", path, "--dataset_name", "digits", "--classifier", "logistic",
                    "--max_train_samples", "300", "--max_test_samples", "100"])
    assert set(results) == {"pretrained", "random init", "raw pixels"}
    out = capsys.readouterr().out
    assert "digits: 300 train / 100 test" in out and "random init (seed 0)" in out and "pretrained" in out
    assert "raw pixels" in out and results["raw pixels"]["probe_acc"] > 0.85  # digits' pixels are good features
    four = main(["--ckpt_path", path, "--dataset_name", "digits", "--classifier", "logistic",
                 "--max_train_samples", "300", "--max_test_samples", "100", "--n_last_blocks", "2", "--no_raw_pixels"])
    assert set(four) == {"pretrained", "random init"}
    assert four != {k: results[k] for k in four}  # wider features, other probes
    assert "the last 2 blocks' tokens concatenated" in capsys.readouterr().out
    from simple_ijepa.errors import ConfigError

    with pytest.raises(ConfigError, match="--n_last_blocks 5: must be in \\[1, 2\\]"):
        main(["--ckpt_path", path, "--dataset_name", "digits", "--n_last_blocks", "5"])


def test_raw_pixels_are_the_images_as_the_encoder_sees_them_one_grey_channel_once():
    from simple_ijepa.data.augment import normalize
    from simple_ijepa.evaluation.reference import raw_pixels

    grey = torch.rand(4, 1, 8, 8).expand(-1, 3, -1, -1)
    colour = torch.rand(4, 3, 8, 8)
    torch.testing.assert_close(raw_pixels(normalize(grey)), normalize(grey)[:, 0].flatten(1))
    torch.testing.assert_close(raw_pixels(normalize(colour)), normalize(colour).flatten(1))


def test_the_torch_probe_matches_scikit_learn_on_real_images():
    """eval.classifier=torch: the same objective as scikit-learn's logistic regression, fitted with
    preconditioned full-batch L-BFGS in torch: within 1 point on digits' pixels and on 4,000
    Fashion-MNIST images through a fixed random projection to 192 dimensions (the width of
    experiment=cpu_small's features; bench/probe_speed.py measures the same at 10k and 50k)."""
    from simple_ijepa.data import build_dataset
    from simple_ijepa.evaluation.probe import linear_probe_accuracy

    sets = []
    for name, n, dim in (("digits", None, None), ("fashion_mnist", 4000, 192)):
        tr, te = build_dataset(name, "./data", "train"), build_dataset(name, "./data", "test")
        xtr, xte = (x[:n].reshape(len(x[:n]), -1).astype(np.float32) for x in (tr.images, te.images))
        if dim is not None:
            proj = np.random.RandomState(0).randn(xtr.shape[1], dim).astype(np.float32) / 28.0
            xtr, xte = xtr @ proj, xte @ proj
        sets.append((xtr, tr.labels[:n], xte, te.labels[:n]))
    for xtr, ytr, xte, yte in sets:
        ours = linear_probe_accuracy(xtr, ytr, xte, yte, "torch")
        sklearn = linear_probe_accuracy(xtr, ytr, xte, yte, "logistic")
        assert abs(ours - sklearn) <= 0.01, (ours, sklearn)
        assert ours > 0.7

"""Feature pictures: PCA colours and retrieval are right on known inputs, and the command writes
both PNGs at their documented size for an encoder file and for a Gated I-JEPA checkpoint."""
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA

from simple_ijepa.analysis.feature_pictures import gated_pixels, nearest, pca_rgb
from simple_ijepa.export import save_encoder
from simple_ijepa.models.vit import VisionTransformer, ViTConfig
from simple_ijepa.training.trainer import make_config, train
from simple_ijepa.visualize import main as visualize

PANEL = 125  # pixels per panel (visualize.PANEL_INCHES x DPI)
GATED_DIGITS = ["variant=gated", "data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                "model.hidden_dim=32", "model.depth=2", "model.heads=2", "model.head_dim=16",
                "model.predictor_dim=32", "model.predictor_depth=1", "model.predictor_heads=2",
                "model.gate_layer_index=0", "dataloader.batch_size=32", "dataloader.num_workers=0",
                "eval.enabled=false", "optim.max_steps=1"]


def png_size(path: str) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_pca_colours_are_the_first_three_components_scaled_to_unit_range():
    tokens = torch.randn(3, 16, 8) * torch.tensor([5.0, 4, 3, 2, 1, 1, 1, 1])
    rgb = pca_rgb(tokens)
    assert rgb.shape == (3, 16, 3)
    flat = rgb.reshape(-1, 3)
    torch.testing.assert_close(flat.min(dim=0).values, torch.zeros(3))
    torch.testing.assert_close(flat.max(dim=0).values, torch.ones(3))
    reference = PCA(3).fit_transform(tokens.reshape(-1, 8).double().numpy())
    for c in range(3):
        ref = (reference[:, c] - reference[:, c].min()) / np.ptp(reference[:, c])
        ours = flat[:, c].double().numpy()
        assert min(np.abs(ours - ref).max(), np.abs(ours - (1 - ref)).max()) < 1e-5  # the sign is free
    assert pca_rgb(torch.randn(1, 4, 2))[..., 2].eq(0).all()  # only 2 components: blue is 0


def test_nearest_finds_each_query_itself_first():
    bank = np.random.RandomState(0).randn(50, 6).astype(np.float32)
    sims, rows = nearest(bank, bank[[7, 3]], k=4)
    assert rows.shape == (2, 4) and rows[:, 0].tolist() == [7, 3]
    torch.testing.assert_close(sims[:, 0], torch.ones(2))
    assert (sims[:, :-1] >= sims[:, 1:]).all()


def test_gated_pixels_scale_each_patch_by_its_gate():
    pixels = torch.ones(3, 4, 4)
    out = gated_pixels(pixels, torch.tensor([0.0, 1.0, 0.5, 1.0]))
    assert out.shape == (4, 4, 3)
    assert out[:2, :2].eq(0).all() and out[:2, 2:].eq(1).all() and out[2:, :2].eq(0.5).all()


def test_command_on_an_encoder_file(fake_stl10, tmp_path):
    torch.manual_seed(0)
    path = str(tmp_path / "encoder_ddp.safetensors")
    config = ViTConfig(image_size=32, patch_size=8, dim=32, depth=1, heads=2, head_dim=16, mlp_ratio=2.0)
    save_encoder(VisionTransformer(config),
                 path.replace(".safetensors", ".pth"))
    out_dir = tmp_path / "pictures"
    paths = visualize(["--ckpt_path", path, "--dataset_path", fake_stl10, "--out_dir", str(out_dir),
                       "--num_images", "5", "--num_queries", "3", "--k", "4", "--max_train_samples", "60",
                       "--device", "cpu"])
    assert sorted(p.name for p in out_dir.iterdir()) == ["pca_features.png", "retrieval.png"]
    assert png_size(paths["pca_features"]) == (5 * PANEL, 2 * PANEL)  # input, PCA
    assert png_size(paths["retrieval"]) == ((1 + 4) * PANEL, 3 * PANEL)


def test_command_on_a_gated_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(make_config(GATED_DIGITS + [f"logging.save_model_dir={run}"]))
    ckpt = str(run / "training_model_gated_ddp.pth")
    common = ["--dataset_name", "digits", "--num_images", "3", "--num_queries", "2", "--k", "3",
              "--max_train_samples", "100", "--device", "cpu"]
    paths = visualize(["--ckpt_path", ckpt, "--out_dir", str(tmp_path / "gated")] + common)
    assert png_size(paths["pca_features"]) == (3 * PANEL, 3 * PANEL)  # input, PCA, gates
    assert png_size(paths["retrieval"]) == ((1 + 3) * PANEL, 2 * PANEL)
    student = visualize(["--ckpt_path", ckpt, "--student", "--out_dir", str(tmp_path / "student")] + common)
    assert png_size(student["pca_features"]) == (3 * PANEL, 2 * PANEL)  # the plain student encoder: no gates


def test_numbers_below_one_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        visualize(["--ckpt_path", "x.pth", "--k", "0", "--out_dir", str(tmp_path / "p")])
    assert e.value.code == 2 and "--k: 0 is not a whole number >= 1" in capsys.readouterr().err

"""Fine-tuning a saved encoder: it beats the linear probe of the same encoder on digits, the
from-scratch and linear-head modes run, and the command's last line is top1=."""
import json

import pytest
import torch
from helpers import PYTHON, run_cli
from safetensors import safe_open

from simple_ijepa.checkpoints import save_encoder
from simple_ijepa.cli.finetune import main as finetune
from simple_ijepa.evaluation import LinearProbe
from simple_ijepa.models.vit import VisionTransformer, ViTConfig

SMALL = ViTConfig(image_size=16, patch_size=4, dim=64, depth=2, heads=2, head_dim=32, mlp_ratio=2.0)
ARGS = ["--dataset_name", "digits", "--device", "cpu", "--batch_size", "64", "--no_hflip", "--lr", "3e-3",
        "--crop_scale", "0.6", "1.0"]


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("enc") / "encoder_ddp.pth")
    save_encoder(VisionTransformer(SMALL), path)
    return path


def test_fine_tuning_beats_the_linear_probe_of_the_same_encoder(encoder_file, tmp_path, capsys):
    from simple_ijepa.checkpoints import load_encoder

    probe = LinearProbe(16, "./data", "digits", classifier="logistic").evaluate(load_encoder(encoder_file))
    top1 = finetune(["--ckpt_path", encoder_file, "--epochs", "15", "--out_dir", str(tmp_path)] + ARGS)
    assert top1 > probe["probe_acc"] + 0.1, (top1, probe)  # measured: 0.967 vs 0.675
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"top1={top1:.4f}"
    with safe_open(str(tmp_path / "classifier.safetensors"), framework="pt") as f:
        meta = f.metadata()
        assert int(meta["num_classes"]) == 10 and '"dim": 64' in meta["vit_config"]
        assert "head.weight" in f.keys() and "encoder.blocks.1.mlp.fc2.weight" in f.keys()


def test_linear_head_and_from_scratch_run(encoder_file, tmp_path):
    linear = finetune(["--ckpt_path", encoder_file, "--epochs", "4", "--linear", "--out_dir", str(tmp_path / "l"),
                       "--output", str(tmp_path / "l.json")] + ARGS + ["--lr", "5e-2"])
    with open(tmp_path / "l.json") as f:  # --output: the printed figures as JSON
        written = json.load(f)
    assert written["top1"] == linear and len(written["top1_per_epoch"]) == 4 and written["mode"] == "linear head"
    assert written["recipe"]["linear"] is True and written["dataset_name"] == "digits"
    scratch = finetune(["--ckpt_path", encoder_file, "--epochs", "4", "--from_scratch", "--seed", "1",
                        "--out_dir", str(tmp_path / "s")] + ARGS)
    assert linear > 0.25 and scratch > 0.5  # chance: 0.1 (measured: 0.38 and 0.85)


@pytest.mark.slow
def test_the_module_command_and_its_errors(encoder_file, tmp_path):
    run = run_cli([PYTHON, "-m", "simple_ijepa.finetune", "--ckpt_path", encoder_file, "--epochs", "1",
                   "--out_dir", str(tmp_path)] + ARGS, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip().splitlines()[-1].startswith("top1=0.")
    bad = run_cli([PYTHON, "-m", "simple_ijepa.finetune", "--ckpt_path", str(tmp_path / "missing.pth")] + ARGS,
                  cwd=tmp_path)
    assert bad.returncode == 2 and "no such file" in bad.stdout and "Traceback" not in bad.stdout


def test_fixed_subsets_for_low_label_fine_tuning(encoder_file, tmp_path):
    """--max_train_samples / --max_test_samples: the steps per epoch follow the train subset, and
    top-1 is counted on the test subset (a multiple of 1/50 here)."""
    import json

    from safetensors import safe_open

    top1 = finetune(["--ckpt_path", encoder_file, "--epochs", "2", "--max_train_samples", "128",
                     "--max_test_samples", "50", "--out_dir", str(tmp_path)] + ARGS)
    assert round(top1 * 50, 6).is_integer()
    with safe_open(str(tmp_path / "classifier.safetensors"), framework="pt") as f:
        recipe = json.loads(f.metadata()["finetune"])
    assert recipe["max_train_samples"] == 128 and recipe["max_test_samples"] == 50


def test_layer_wise_decay_scales_as_beit_and_mae():
    """Head and the encoder's final LayerNorm at 1.0, block i of D at decay^(D - i), embedding at decay^(D + 1)."""
    from simple_ijepa.evaluation.finetune import Classifier, FinetuneConfig, parameter_groups

    model = Classifier(VisionTransformer(SMALL), num_classes=10)
    scale_of = {id(p): g["lr_scale"] for g in parameter_groups(model, FinetuneConfig(layer_decay=0.5))
                for p in g["params"]}
    scales = {name: scale_of[id(p)] for name, p in model.named_parameters() if p.requires_grad}
    assert scales["encoder.norm.weight"] == scales["encoder.norm.bias"] == 1.0
    assert scales["head.weight"] == 1.0
    assert scales["encoder.blocks.1.mlp.fc2.weight"] == 0.5 and scales["encoder.blocks.0.mlp.fc2.weight"] == 0.25
    assert scales["encoder.patch_embed.weight"] == 0.125

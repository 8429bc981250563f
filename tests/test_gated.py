"""Gated I-JEPA: hard-concrete gate math, every gate position trains, pruning is exact, FLOPs
counts, debug outputs, gate experiments, and the README's gated command (two processes)."""
import json
import math
import os

import numpy as np
import pytest
import torch
from helpers import RUN_DDP, TORCHRUN, run_cli
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from simple_ijepa.analysis.debug_outputs import blank_closed, save_debug_outputs, token_ssim
from simple_ijepa.analysis.flops import encoder_flops
from simple_ijepa.analysis.gate_analysis import OUTPUT_FILES
from simple_ijepa.config import validate
from simple_ijepa.errors import CheckpointError, ConfigError
from simple_ijepa.gate_experiments import main as gate_experiments
from simple_ijepa.models import build_model
from simple_ijepa.models.gates import HardConcreteGate, gate_penalty
from simple_ijepa.models.ijepa import regression_loss
from simple_ijepa.training.trainer import make_config, train

TINY = ["variant=gated", "model.image_size=32", "model.patch_size=8", "model.hidden_dim=32", "model.depth=3",
        "model.heads=2", "model.head_dim=16", "model.predictor_dim=32", "model.predictor_depth=1",
        "model.predictor_heads=2"]
POSITIONS = [(None, "post"), (1, "attn"), (1, "skip"), (1, "post"), (2, "attn"), (2, "skip"), (2, "post")]
DIGITS_RUN = ["variant=gated", "data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
              "model.hidden_dim=32", "model.depth=3", "model.heads=2", "model.head_dim=16", "model.predictor_dim=32",
              "model.predictor_depth=1", "model.predictor_heads=2", "dataloader.batch_size=32",
              "dataloader.num_workers=0", "logging.log_every_n_steps=2", "eval.enabled=false"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny matmuls are fastest (and not slowed by other processes) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(index=None, location="post", seed=0):
    cfg = make_config(TINY + [f"model.gate_layer_index={'null' if index is None else index}",
                              f"model.gate_location={location}"])
    validate(cfg)
    torch.manual_seed(seed)
    return build_model(cfg)


@torch.no_grad()
def spread_gates(model, images) -> None:
    """Rescale the gate head so that log_alpha on `images` spans [-6, 6]: eval gates are then a mix
    of exact 0s (log_alpha < -2.4), exact 1s (> 2.4) and values between."""
    head = model.gate_head.linear
    head.weight.normal_(0.0, 1.0)
    la = model.encode(images).log_alpha
    head.weight.mul_(12.0 / (la.max() - la.min()))
    la = model.encode(images).log_alpha
    head.bias.sub_((la.max() + la.min()) / 2)


# --- the gate ---------------------------------------------------------------------------------
def test_sampled_gates_match_the_closed_form_open_probability():
    gate = HardConcreteGate().train()
    torch.manual_seed(0)
    for la in (-4.0, -2.0, -0.5, 0.0, 1.0, 3.0):
        log_alpha = torch.full((200_000,), la)
        z = gate(log_alpha)
        assert (z > 0).float().mean().item() == pytest.approx(gate.prob_open(log_alpha)[0].item(), abs=0.005)
        p_one = torch.sigmoid(torch.tensor(la - (2 / 3) * math.log(1.1 / 0.1))).item()  # Louizos: P(z = 1)
        assert (z == 1).float().mean().item() == pytest.approx(p_one, abs=0.005)
    assert gate.prob_open(torch.tensor(0.0)).item() == pytest.approx(1 / (1 + (1 / 11) ** (2 / 3)), rel=1e-6)


def test_eval_gates_are_deterministic_and_stretch_gives_exact_zeros_and_ones():
    gate = HardConcreteGate().eval()
    log_alpha = torch.tensor([-10.0, -2.41, -2.39, 0.0, 2.39, 2.41, 10.0])
    z = gate(log_alpha)
    assert torch.equal(z, gate(log_alpha))
    assert z[:2].eq(0).all() and z[-2:].eq(1).all() and (z[2:5] > 0).all() and (z[2:5] < 1).all()
    assert z[3].item() == pytest.approx(0.5)  # sigmoid(0) * 1.2 - 0.1
    sampled = gate.train()(torch.zeros(10_000))
    assert sampled.min() == 0 and sampled.max() == 1 and ((sampled > 0) & (sampled < 1)).any()


def test_penalty_value_for_a_known_input():
    open_prob = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    assert gate_penalty(open_prob, 4.0).item() == pytest.approx((math.exp(2.0) - 1) / 2, rel=1e-6)
    # centred on t = 0.5, on the batch's fraction f = 0.25: d = 4 (0.25 - 0.5) = -1 gives (e^-1 - 1 + 1) / 16
    assert gate_penalty(open_prob, 4.0, 0.5).item() == pytest.approx(math.exp(-1.0) / 16, rel=1e-6)
    # the batch is held, not each image: any split of the same batch fraction costs the same
    assert gate_penalty(open_prob, 4.0, 0.25).item() == pytest.approx(0.0, abs=1e-12)
    model = tiny_model()  # gates on the final tokens: log_alpha = gate_head(encoder(images))
    images = torch.randn(2, 3, 32, 32)
    loss, stats = model(images)
    f = model.gate.prob_open(model.gate_head(model.encoder(images))).mean()  # the batch's open fraction
    t = 0.5  # the default model.gate_target_open
    at = math.exp(4 * t)  # the seed's penalty minus its tangent at t, over its curvature 16 e^(4t)
    expected = (((4.0 * f).exp() - at - 4 * at * (f - t)) / (16 * at)).item()
    assert stats["gate_penalty"].item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() == pytest.approx(stats["loss_pred"].item() + 1.0 * stats["gate_penalty"].item(), rel=1e-5)


def test_centred_penalty_is_minimal_with_zero_slope_at_the_target():
    """d penalty / d f = (exp(a (f - t)) - 1) / a: it pushes f down above t and UP below t; curvature 1 at t."""
    for t in (0.2, 0.5, 0.8):
        f = torch.linspace(0.01, 0.99, 99, dtype=torch.float64, requires_grad=True)
        sum(gate_penalty(fi.view(1, 1), 4.0, t) for fi in f).backward()  # one batch per value of f
        grad = f.grad.numpy()
        assert (grad[f.detach().numpy() < t - 1e-6] < 0).all() and (grad[f.detach().numpy() > t + 1e-6] > 0).all()
        f0 = torch.tensor([[t]], dtype=torch.float64)
        assert gate_penalty(f0, 4.0, t).item() == pytest.approx(0.0, abs=1e-12)
        near = torch.tensor([[t + 1e-3]], dtype=torch.float64)
        assert gate_penalty(near, 4.0, t).item() == pytest.approx(0.5e-6, rel=1e-2)  # ~ (f - t)^2 / 2


# --- the model ----------------------------------------------------------------------------------
@pytest.mark.parametrize("index,location", POSITIONS)
def test_every_gate_position_trains_and_every_parameter_gets_a_gradient(index, location):
    model = tiny_model(index, location).train()
    opt = torch.optim.AdamW(model.optimizer_groups(0.01), lr=1e-3)
    images = torch.randn(4, 3, 32, 32)
    for _ in range(3):
        loss, stats = model(images)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss) and 0 <= stats["open_frac"] <= 1 and 0 <= stats["open_frac_hard"] <= 1
        for name, p in model.named_parameters():
            if name.startswith("target_encoder."):
                assert p.grad is None and not p.requires_grad
            else:
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert {"loss_pred", "gate_penalty", "open_frac", "open_frac_hard"} <= set(stats)
    model.eval()
    spread_gates(model, images)
    with torch.no_grad():
        a, b = model.encode(images), model.encode(images)
    assert torch.equal(a.z, b.z) and torch.equal(a.tokens, b.tokens)  # eval gates are deterministic


def test_out_of_range_gate_layer_index_is_a_config_error():
    for bad in ("3", "-1"):
        with pytest.raises(ConfigError, match="model.gate_layer_index"):
            validate(make_config(TINY + [f"model.gate_layer_index={bad}"]))


def test_closed_tokens_become_mask_token_plus_position():
    model = tiny_model(None).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model.encode(images, z=torch.zeros(2, 16))
    fill = (model.mask_token + model.encoder.pos_embed)[0]
    assert torch.allclose(out.tokens[0], fill) and torch.allclose(out.tokens[1], fill)
    assert not torch.allclose(out.tokens[0, 0], out.tokens[0, 1])  # positions tell closed tokens apart


@pytest.mark.parametrize("index,location", POSITIONS)
def test_pruned_encoder_equals_masked_path_on_open_tokens(index, location):
    model = tiny_model(index, location).eval()
    images = torch.randn(6, 3, 32, 32)
    spread_gates(model, images)
    with torch.no_grad():
        masked = model.encode(images)
        pruned = model.encode_pruned(images)
        feats = model.probe_feature_fns()["gated"](images)
    assert (masked.z == 0).any() and (masked.z > 0).any()  # some tokens really dropped
    assert torch.equal(pruned.open_counts, (masked.z > 0).sum(1))
    assert pruned.tokens.shape[1] == int(pruned.open_counts.max())
    same_place = torch.gather(masked.features, 1, pruned.index[..., None].expand(-1, -1, 32))
    kept = pruned.z > 0
    torch.testing.assert_close(pruned.tokens[kept], same_place[kept], atol=1e-5, rtol=1e-5)
    w = pruned.z[..., None]
    weighted = (w * pruned.tokens).sum(1) / w.sum(1).clamp_min(1e-6)
    torch.testing.assert_close(feats, weighted, atol=1e-5, rtol=1e-5)


def test_probe_feature_fns_gated_and_all_open():
    model = tiny_model(1, "skip").eval()
    images = torch.randn(3, 3, 32, 32)
    fns = model.probe_feature_fns()
    assert set(fns) == {"gated", "all_open"}
    with torch.no_grad():
        torch.testing.assert_close(fns["all_open"](images), model.encoder(images).mean(1))
        # Imposing all-open gates reproduces the plain encoder: the gate machinery is a no-op at z = 1.
        torch.testing.assert_close(model.encode(images, z=torch.ones(3, 16)).features, model.encoder(images),
                                   atol=1e-5, rtol=1e-5)
    assert fns["gated"](images).shape == (3, 32)


@pytest.mark.parametrize("location", ["post", "skip", "attn"])
def test_analytic_flops_match_flop_counter(location):
    model = tiny_model(1, location).eval()
    image = torch.randn(1, 3, 32, 32)
    spread_gates(model, image)
    vit = model.encoder.config
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):  # the math backend shows its matmuls to the counter
        with FlopCounterMode(display=False) as full:
            model.encoder(image)
        with FlopCounterMode(display=False) as pruned:
            out = model.encode_pruned(image)
    kept = int(out.open_counts[0])
    assert 0 < kept < 16
    assert full.get_total_flops() == encoder_flops(vit)
    assert pruned.get_total_flops() == encoder_flops(vit, 1, kept, location) < encoder_flops(vit)


# --- debug outputs --------------------------------------------------------------------------------
def test_token_ssim_and_patch_blanking_match_plain_loops():
    x = torch.randn(5, 12)
    ssim = token_ssim(x)
    for i in range(5):
        for j in range(5):
            a, b = x[i].double(), x[j].double()
            mu_a, mu_b = a.mean(), b.mean()
            cov = ((a - mu_a) * (b - mu_b)).mean()
            ref = ((2 * mu_a * mu_b + 1e-4) * (2 * cov + 9e-4)) / (
                (mu_a ** 2 + mu_b ** 2 + 1e-4) * (a.var(unbiased=False) + b.var(unbiased=False) + 9e-4))
            assert ssim[i, j].item() == pytest.approx(ref.clamp(-1, 1).item(), abs=1e-6)
    pixels = torch.rand(2, 3, 8, 8)
    closed = torch.tensor([[[True, False], [False, False]], [[False, False], [False, True]]])
    out = blank_closed(pixels, closed)
    assert out[0, :, :4, :4].eq(0).all() and torch.equal(out[0, :, 4:, :], pixels[0, :, 4:, :])
    assert out[1, :, 4:, 4:].eq(0).all() and torch.equal(out[1, :, :4, :], pixels[1, :, :4, :])


def test_save_debug_outputs_writes_files_and_restores_mode(tmp_path):
    model = tiny_model(2, "attn").train()
    paths = save_debug_outputs(model, torch.randn(10, 3, 32, 32), str(tmp_path), 7)
    assert model.training and model.gate.training
    assert sorted(os.listdir(tmp_path / "debug_masks")) == ["step_00000007_masked.png", "step_00000007_orig.png"]
    ssim = torch.load(paths["ssim_pt"])
    assert ssim.shape == (16, 16) and torch.allclose(ssim.diagonal(), torch.ones(16), atol=1e-4)
    assert os.path.getsize(paths["ssim_png"]) > 0


# --- training runs, gate experiments, the README command -----------------------------------------
@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    """4 real training steps on digits with debug outputs on (gate inside block 1, "post")."""
    save_dir = tmp_path_factory.mktemp("gated")
    out = train(make_config(DIGITS_RUN + ["model.gate_layer_index=1", "optim.max_steps=4", "logging.keep_last=4",
                                          "debug.save_debug_masks=true", f"logging.save_model_dir={save_dir}"]))
    return save_dir, out


def test_trainer_writes_gated_checkpoints_metrics_and_debug_outputs(gated_run):
    save_dir, out = gated_run
    assert out["step"] == 4 and os.path.isfile(save_dir / "training_model_gated_ddp.pth")
    assert os.path.isfile(save_dir / "encoder_gated_ddp.pth")
    m = out["metrics"]
    assert np.isfinite([m["loss"], m["loss_pred"], m["gate_penalty"]]).all() and 0 <= m["open_frac"] <= 1
    for step in (2, 4):
        stem = f"step_{step:08d}"
        for sub, name in (("debug_masks", "orig.png"), ("debug_masks", "masked.png"),
                          ("debug_ssim", "token_ssim.pt"), ("debug_ssim", "token_ssim.png")):
            assert os.path.isfile(save_dir / sub / f"{stem}_{name}"), (sub, stem, name)


def test_gated_resume_replays_the_same_gates(gated_run, tmp_path):
    save_dir, _ = gated_run
    ckpt2 = save_dir / "checkpoints" / "gated_step_00000002.pth"
    train(make_config(DIGITS_RUN + ["model.gate_layer_index=1", "optim.max_steps=4",
                                    f"logging.save_model_dir={tmp_path}", f"logging.ckpt_path={ckpt2}"]))
    wa = torch.load(save_dir / "training_model_gated_ddp.pth", weights_only=False)["model"]
    wb = torch.load(tmp_path / "training_model_gated_ddp.pth", weights_only=False)["model"]
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6, rtol=1e-5), k


def _final_open_frac(tmp_path, *overrides) -> float:
    """Train 150 steps of the tiny gated model on digits; the last step's expected open fraction."""
    out = train(make_config(DIGITS_RUN + ["optim.max_steps=150", "logging.log_every_n_steps=150",
                                          "logging.keep_last=0", f"logging.save_model_dir={tmp_path}", *overrides]))
    return out["metrics"]["open_frac"]


def test_readme_default_penalty_leaves_gates_open_where_the_seed_penalty_shuts_them(tmp_path):
    """At lambda_gates=1, gate_exp_alpha=4 the seed's penalty closes (nearly) every gate within
    150 steps; centred on gate_target_open (default 0.5) the open fraction stays near it."""
    seed_penalty = _final_open_frac(tmp_path / "seed", "model.gate_target_open=null")
    default = _final_open_frac(tmp_path / "default")
    assert seed_penalty < 0.15, seed_penalty
    assert abs(default - 0.5) < 0.1, default


@pytest.mark.parametrize("target", [0.2, 0.8])
def test_open_fraction_follows_gate_target_open(tmp_path, target):
    assert abs(_final_open_frac(tmp_path, f"model.gate_target_open={target}") - target) < 0.1


@pytest.mark.parametrize("override", ["model.gate_layer_index=2", "model.gate_location=attn",
                                      "model.gate_layer_index=null"])
def test_resume_refuses_another_gate_placement(gated_run, tmp_path, override):
    """The gate's block and location are architecture: resuming with others is an error naming them."""
    save_dir, _ = gated_run
    cfg = make_config(DIGITS_RUN + ["model.gate_layer_index=1", "optim.max_steps=6", override,
                                    f"logging.save_model_dir={tmp_path}",
                                    f"logging.ckpt_path={save_dir / 'training_model_gated_ddp.pth'}"])
    with pytest.raises(CheckpointError, match=override.split("=")[0].replace(".", r"\.")):
        train(cfg)
    assert not os.listdir(tmp_path)  # refused before any work


def test_evaluate_command_probes_a_gated_checkpoint_four_ways(gated_run, capsys):
    from simple_ijepa.evaluate import main as evaluate

    save_dir, _ = gated_run
    results = evaluate(["--ckpt_path", str(save_dir / "training_model_gated_ddp.pth"), "--dataset_name", "digits",
                        "--classifier", "logistic", "--max_train_samples", "200", "--max_test_samples", "100",
                        "--device", "cpu"])
    assert list(results) == ["gated", "all_open", "EMA teacher", "random init", "raw pixels"]
    assert all(0 <= r["probe_acc"] <= 1 and 0 <= r["knn_acc"] <= 1 for r in results.values())
    out = capsys.readouterr().out
    assert "all_open" in out and "random init (seed 0)" in out


def test_gate_experiments_write_the_eight_files(gated_run, tmp_path, capsys):
    save_dir, _ = gated_run
    out_dir = tmp_path / "analysis"
    summary = gate_experiments(["--ckpt_path", str(save_dir / "training_model_gated_ddp.pth"), "--split", "test",
                                "--batch_size", "64", "--num_batches", "2", "--num_workers", "0",
                                "--out_dir", str(out_dir), "--device", "cpu", "--output", str(tmp_path / "g.json")])
    assert sorted(os.listdir(out_dir)) == sorted(OUTPUT_FILES)
    with open(tmp_path / "g.json") as f:  # --output: the printed summary as JSON
        written = json.load(f)
    assert written["dataset_name"] == "digits" and written["split"] == "test"
    assert written["summary"]["encoder_flops_saved_frac"] == pytest.approx(summary["encoder_flops_saved_frac"])
    gate_map = torch.load(out_dir / "avg_gate_map.pt")
    assert gate_map.shape == (4, 4) and ((gate_map >= 0) & (gate_map <= 1)).all()
    fracs = np.load(out_dir / "open_fracs.npy")
    assert fracs.shape == (128,) and ((fracs >= 0) & (fracs <= 1)).all()
    nvr = torch.load(out_dir / "noise_vs_real_stats.pt")
    assert nvr["num_samples"] == 128 and 0 <= nvr["noise_open_frac_mean"] <= 1
    abl = torch.load(out_dir / "random_gate_ablation_stats.pt")
    for name in ("learned", "random", "all_open"):
        assert np.isfinite(abl[f"{name}_loss_mean"]) and abl["per_image_losses"][name].shape == (128,)
    assert 0 <= abl["open_frac_mean"] <= 1 and abl["loss"] == "mse"
    assert -0.01 < summary["encoder_flops_saved_frac"] < 1  # the gate head costs a little when all is open
    printed = capsys.readouterr().out
    assert "prediction loss" in printed and "GFLOPs" in printed


def test_ablation_losses_use_the_training_definition(gated_run):
    from simple_ijepa.analysis.gate_analysis import load_gated_model, per_image_loss

    save_dir, _ = gated_run
    model, cfg = load_gated_model(str(save_dir / "training_model_gated_ddp.pth"))
    images = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        target = model.teacher_features(images)
        pred = model.predict(model.encode(images).tokens)
        model.train()
        torch.manual_seed(1)
        _, stats = model(images)
        torch.manual_seed(1)
        train_pred = model.predict(model.encode(images).tokens)
    assert per_image_loss(pred, target, "mse").mean().item() == pytest.approx(
        regression_loss(pred, target, "mse").item(), rel=1e-6)
    assert stats["loss_pred"].item() == pytest.approx(per_image_loss(train_pred, target, "mse").mean().item(),
                                                      rel=1e-5)


def test_gate_experiments_reject_a_baseline_checkpoint(tmp_path):
    train(make_config(["variant=baseline", "data.dataset_name=digits", "model.image_size=16", "model.patch_size=4",
                       "model.hidden_dim=32", "model.depth=1", "model.heads=2", "model.head_dim=16",
                       "model.predictor_dim=32", "model.predictor_depth=1", "model.predictor_heads=2",
                       "model.num_targets=2", "mask.min_context=2", "dataloader.batch_size=32",
                       "dataloader.num_workers=0", "optim.max_steps=1", "eval.enabled=false",
                       f"logging.save_model_dir={tmp_path}"]))
    with pytest.raises(CheckpointError, match="variant=baseline checkpoint; gate experiments need a Gated"):
        gate_experiments(["--ckpt_path", str(tmp_path / "training_model_ddp.pth"), "--out_dir", str(tmp_path / "a")])
    assert not os.path.exists(tmp_path / "a")


@pytest.mark.slow
def test_readme_gated_command_on_two_processes(fake_stl10, tmp_path):
    """The README's `torchrun ... run_ddp.py variant=gated model.gate_layer_index=2 model.gate_location=post`
    on a fake STL-10, 2 CPU processes: DDP needs no find_unused_parameters, replicas stay equal."""
    run = run_cli([TORCHRUN, "--standalone", "--nproc_per_node=2", RUN_DDP, "variant=gated",
                   "model.gate_layer_index=1", "model.gate_location=post", "model.lambda_gates=1.0",
                   "model.gate_exp_alpha=4.0", f"data.dataset_path={fake_stl10}", "optim.max_steps=3",
                   "logging.log_every_n_steps=3", "dataloader.batch_size=8", "dataloader.num_workers=0",
                   "eval.enabled=false", "debug.save_debug_masks=true"] + TINY[1:], cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "2 process(es) on cpu" in run.stdout and "Weights identical on all 2 ranks" in run.stdout
    assert (tmp_path / "models" / "training_model_gated_ddp.pth").is_file()
    assert (tmp_path / "models" / "debug_ssim" / "step_00000003_token_ssim.pt").is_file()

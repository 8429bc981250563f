"""Collapse monitors and the SIGReg regulariser: they measure what they claim and reach the logs."""
import logging

import pytest
import torch
from helpers import TINY_MODEL

from simple_ijepa.analysis.collapse import collapse_stats, collapse_warning, effective_rank
from simple_ijepa.models.sigreg import sigreg
from simple_ijepa.training.trainer import make_config, train

DIGITS = TINY_MODEL + ["data.dataset_name=digits", "model.image_size=16", "model.patch_size=2",
                       "dataloader.batch_size=64", "dataloader.num_workers=0", "eval.enabled=false"]


def test_monitors_tell_spread_from_collapse():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(64, 16, 32, generator=g)
    stats = collapse_stats(spread)
    assert stats["pooled_std"] == pytest.approx(0.25, rel=0.15)  # mean of 16 unit normals: std 1/4
    assert stats["token_std"] == pytest.approx(1.0, rel=0.1)
    assert stats["rankme"] > 20  # 32 independent directions
    assert collapse_warning(stats, reference=stats) is None
    reference = stats

    same_image = torch.randn(1, 16, 32, generator=g).expand(64, -1, -1)  # every image alike
    stats = collapse_stats(same_image)
    assert stats["pooled_std"] < 1e-6 and stats["token_std"] > 0.5
    message = collapse_warning(stats, reference)
    assert "pooled_std" in message and "rankme" in message and "learning_rate" in message
    assert "sigreg_weight" in message

    flat_tokens = torch.randn(64, 1, 32, generator=g).expand(-1, 16, -1)  # every token of an image alike
    assert collapse_stats(flat_tokens)["token_std"] < 1e-6
    assert "token_std" in collapse_warning(collapse_stats(flat_tokens), reference)


def test_effective_rank_counts_directions():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(32, 32, generator=g))[0]
    for k in (1, 4, 16):
        z = torch.randn(256, k, generator=g) @ basis[:k]  # k equally strong directions
        assert effective_rank(z) == pytest.approx(k, rel=0.25)


@pytest.mark.slow
def test_collapsed_run_warns_once(tmp_path, caplog, monkeypatch):
    """A run whose teacher collapses after init (every image then gives the same tokens) logs one
    warning naming the monitors, and the monitors reach metrics.jsonl."""
    import json

    import simple_ijepa.models.ijepa as ijepa

    original = ijepa.JEPA.teacher_features
    calls = []

    def collapsed(self, images, over_ranks=False):
        calls.append(1)  # the first call measures the reference at init: leave that one alone
        h = original(self, images, over_ranks)
        return h if len(calls) == 1 else torch.zeros_like(h) + 1.0

    monkeypatch.setattr(ijepa.JEPA, "teacher_features", collapsed)
    with caplog.at_level(logging.WARNING, logger="simple_ijepa"):
        train(make_config(DIGITS + ["optim.max_steps=6", "logging.log_every_n_steps=2",
                                    f"logging.save_model_dir={tmp_path}"]))
    warnings = [r.message for r in caplog.records if "look collapsed" in r.message]
    assert len(warnings) == 1 and "pooled_std" in warnings[0]
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["teacher_pooled_std"] for r in rows] == [0.0, 0.0, 0.0]
    assert all(r["teacher_rankme"] == pytest.approx(1.0, abs=1e-3) for r in rows)  # a single point: rank 1


def test_sigreg_is_small_for_gaussians_and_large_for_collapse():
    torch.manual_seed(0)
    gaussian = torch.randn(512, 64)
    collapsed = torch.zeros(512, 64) + 0.01 * torch.randn(512, 64)
    wide = 5 * torch.randn(512, 64)
    shifted = torch.randn(512, 64) + 2.0
    g, c, w, s = (float(sigreg(z)) for z in (gaussian, collapsed, wide, shifted))
    # for a true Gaussian B * |ECF - exp(-t^2/2)|^2 stays O(1) (sampling noise); not so when off
    assert g < 3.0 and c > 50 * g and w > 50 * g and s > 50 * g, (g, c, w, s)


def test_sigreg_gradient_spreads_collapsed_embeddings():
    torch.manual_seed(0)
    z = (0.05 * torch.randn(256, 16)).requires_grad_()
    before = z.detach().std(0).mean()
    opt = torch.optim.Adam([z], lr=0.02)
    for _ in range(50):
        opt.zero_grad()
        sigreg(z, num_slices=64).backward()
        opt.step()
    assert z.detach().std(0).mean() > 4 * before


def test_sigreg_weight_adds_the_term_to_the_training_loss(tmp_path):
    import json

    train(make_config(DIGITS + ["optim.max_steps=4", "logging.log_every_n_steps=2", "model.sigreg_weight=0.05",
                                f"logging.save_model_dir={tmp_path}"]))
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert all(r["sigreg"] > 0 for r in rows)
    # the logged loss is the window mean of loss_pred + weight * sigreg, so it exceeds loss_pred alone
    assert rows[-1]["loss"] > rows[-1]["loss_pred"]


def test_the_pooled_target_adds_its_term_and_trains_its_head(tmp_path):
    """model.global_weight: loss = loss_pred + weight * MSE(head(mean of the context tokens),
    LN(mean of the teacher's target tokens)); the head learns; off (0) there is no head at all."""
    import json
    import random

    from simple_ijepa.masks import build_masks
    from simple_ijepa.models.ijepa import IJEPA, regression_loss

    cfg = make_config(DIGITS + ["model.global_weight=0.5"])
    model = IJEPA.from_config(cfg.model)
    assert IJEPA.from_config(make_config(DIGITS).model).global_head is None
    torch.manual_seed(0)
    images = torch.randn(4, 3, 16, 16)
    masks = build_masks("multiblock", 8, cfg.model.num_targets, cfg.mask)(4, random.Random(0),
                                                                            torch.Generator().manual_seed(0))
    loss, stats = model(images, *masks)
    h = model.teacher_features(images)
    z = model.encoder(images, keep_idx=masks[0], keep_valid=masks[2])
    valid = torch.ones(z.shape[:2], dtype=torch.bool) if masks[2] is None else masks[2]
    pooled = (z * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
    expected = regression_loss(model.global_head(pooled), torch.nn.functional.layer_norm(h.mean(1), (h.shape[-1],)),
                               "mse")
    assert torch.allclose(stats["loss_global"], expected, atol=1e-6)
    assert torch.allclose(loss, stats["loss_pred"] + 0.5 * expected, atol=1e-6)
    loss.backward()
    assert model.global_head[0].weight.grad.abs().sum() > 0

    train(make_config(DIGITS + ["optim.max_steps=4", "logging.log_every_n_steps=2", "model.global_weight=0.5",
                                f"logging.save_model_dir={tmp_path}"]))
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert all(r["loss_global"] > 0 for r in rows) and rows[-1]["loss"] > rows[-1]["loss_pred"]


def test_a_batch_of_one_leaves_out_the_monitors_it_cannot_define():
    """batch_size=1: no pooled std or RankMe across one image (left out, not NaN in metrics.jsonl), and
    the collapse warning compares only what is there."""
    from simple_ijepa.analysis.collapse import collapse_stats, collapse_warning

    stats = collapse_stats(torch.randn(1, 16, 8))
    assert set(stats) == {"token_std"} and stats["token_std"] > 0
    assert collapse_warning(stats, {"pooled_std": 0.1, "token_std": 0.5, "rankme": 8.0}) is None
    assert "token_std" in collapse_warning({"token_std": 0.01}, {"pooled_std": 0.1, "token_std": 0.5, "rankme": 8.0})

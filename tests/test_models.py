import os
import random
import subprocess
import sys

import pytest
import torch
from helpers import TINY_MODEL as TINY

from simple_ijepa.config import IJEPAConfig
from simple_ijepa.masks import MultiBlockMaskGenerator
from simple_ijepa.models import ARCH_KEYS, IJEPA, ModelConfig, Predictor, VisionTransformer
from simple_ijepa.training.trainer import make_config


def test_default_encoder_has_about_11_2m_parameters():
    encoder = VisionTransformer(ModelConfig.from_flat(IJEPAConfig()).encoder)
    n = sum(p.numel() for p in encoder.parameters())
    assert 11.0e6 < n < 11.3e6, n
    # 6 heads x 64 = 384 inner attention width (README: 512 dim, 6 heads, ~11M params)
    assert encoder.blocks[0].attn.qkv.out_features == 3 * 384


def tiny_model(**kw):
    cfg = make_config([f"model.{k}={v}" for k, v in dict(image_size=32, patch_size=8, hidden_dim=32, depth=2,
                                                        heads=2, head_dim=16, predictor_dim=24, predictor_depth=1,
                                                        predictor_heads=2, num_targets=2, **kw).items()])
    return IJEPA.from_config(cfg.model)


def test_shapes_through_encoder_and_predictor():
    model = tiny_model()
    images = torch.randn(3, 3, 32, 32)
    assert model.encoder(images).shape == (3, 16, 32)
    ctx, tgt, valid = MultiBlockMaskGenerator(4, 2, min_context=2)(3, random.Random(0),
                                                                     torch.Generator().manual_seed(0))
    z = model.encoder(images, keep_idx=ctx, keep_valid=valid)
    assert z.shape == (3, ctx.shape[1], 32)
    pred = model.predictor(z, ctx, tgt, valid)
    assert pred.shape == (3, 2, tgt.shape[2], 32)
    loss, stats = model(images, ctx, tgt, valid)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    # every trainable parameter receives a gradient (DDP needs no find_unused_parameters)
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
        else:
            assert name.startswith("target_encoder.")


def test_encoder_on_kept_tokens_equals_gather_before_blocks():
    model = tiny_model()
    model.encoder.eval()
    images = torch.randn(2, 3, 32, 32)
    keep = torch.tensor([[0, 3, 5], [1, 2, 15]])
    # With one token kept per sample the attention is trivial: compare against a full pass on 1 token.
    out = model.encoder(images, keep_idx=keep[:, :1])
    x = model.encoder.embed(images)[torch.arange(2), keep[:, 0]].unsqueeze(1)
    for block in model.encoder.blocks:
        x = block(x)
    assert torch.allclose(out, model.encoder.norm(x), atol=1e-6)


def test_teacher_starts_as_student_copy_and_ema_moves_it():
    model = tiny_model()
    for t, s in zip(model.target_encoder.parameters(), model.encoder.parameters()):
        assert torch.equal(t, s)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [t.clone() for t in model.target_encoder.parameters()]
    model.update_teacher(0.9)
    for b, t, s in zip(before, model.target_encoder.parameters(), model.encoder.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * s, atol=1e-6)
    model.copy_teacher()
    for t, s in zip(model.target_encoder.parameters(), model.encoder.parameters()):
        assert torch.equal(t, s)


def test_no_weight_decay_on_1d_params_and_tokens():
    model = tiny_model()
    decay, no_decay = model.optimizer_groups(0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    assert any(p is model.predictor.mask_token for p in no_decay["params"])
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == n_trainable


@pytest.mark.slow
def test_importing_the_models_needs_torch_alone():
    code = ("import sys, simple_ijepa.models, simple_ijepa.masks; "
            "print(sorted(m for m in ('hydra', 'omegaconf', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_models_are_built_from_parts_so_a_pretrained_encoder_can_be_passed_in():
    c = ModelConfig.from_flat(make_config(TINY).model)
    encoder = VisionTransformer(c.encoder)
    model = IJEPA(encoder, Predictor.from_config(c.encoder, c.predictor))
    assert model.encoder is encoder and torch.equal(model.target_encoder.pos_embed, encoder.pos_embed)
    assert ARCH_KEYS == ("image_size", "patch_size", "hidden_dim", "depth", "heads", "head_dim", "mlp_ratio",
                         "pos_order", "predictor_dim", "predictor_depth", "predictor_heads", "predictor_head_dim",
                         "predictor_mlp_ratio")


def test_targets_from_the_last_blocks_and_centred_over_the_batch():
    import torch.nn.functional as F


    images = torch.randn(5, 3, 32, 32)
    plain = IJEPA.from_config(make_config(TINY).model).eval()
    h = plain.target_encoder(images)
    assert torch.equal(plain.teacher_features(images), F.layer_norm(h, (h.shape[-1],)))  # the paper's target

    model = IJEPA.from_config(make_config(TINY + ["model.target_layers=2", "model.target_center=true"]).model)
    model.load_state_dict(plain.state_dict())
    enc = model.target_encoder
    x = enc.embed(images)
    first = enc.blocks[0](x)
    last = enc.norm(enc.blocks[1](first))

    def instance_norm(o):  # per channel over the tokens (data2vec 2.0's instance_norm_target_layer)
        return (o - o.mean(1, keepdim=True)) / (o.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    want = F.layer_norm((instance_norm(first) + instance_norm(last)) / 2, (32,))  # then layer_norm_targets
    want = want - want.mean(0, keepdim=True)
    got = model.teacher_features(images)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got.mean(0), torch.zeros_like(got[0]), atol=1e-6, rtol=0)  # position alone: 0


def _centred_targets_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = IJEPA.from_config(make_config(TINY + ["model.target_center=true"]).model)
        images = torch.randn(8, 3, 32, 32)
        mine = images[:3] if rank == 0 else images[3:]  # unequal shares: the mean is weighted by batch size
        torch.save(model.teacher_features(mine, over_ranks=True), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_centred_targets_over_two_ranks_are_those_of_the_whole_batch(tmp_path):
    """model.target_center on 2 ranks: each rank's targets are its rows of the concatenated batch's targets."""
    import torch.multiprocessing as mp

    mp.spawn(_centred_targets_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    torch.manual_seed(0)
    model = IJEPA.from_config(make_config(TINY + ["model.target_center=true"]).model)
    images = torch.randn(8, 3, 32, 32)
    whole = model.teacher_features(images, over_ranks=True)
    got = torch.cat([torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)])
    torch.testing.assert_close(got, whole, atol=1e-5, rtol=1e-5)
    per_rank = torch.cat([model.teacher_features(images[:3]), model.teacher_features(images[3:])])
    assert (per_rank - whole).abs().max() > 1e-2  # centring over one rank's share is a different target

"""The fast paths compute what the slow, obvious code computes.

- The batched predictor (all targets of all samples in one call, tokens picked with gathers, each
  sample's context padded to the batch's largest with a key-padding mask) gives the same loss and
  gradients as a per-sample, per-target loop over each sample's own, unpadded context.
- Packed real tokens (full context) give the padded path's loss and gradients, with fewer FLOPs.
- A torch.compile'd training step matches the eager one over a few steps whose mask sizes change,
  from ONE compiled graph (the mask lengths are dynamic, not a recompile per step).
- Mask generation and the data path give the documented shapes and dtypes on 'meta' and the CPU.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from simple_ijepa.models import build_model
from simple_ijepa.training.step import TrainStep, compile_net
from simple_ijepa.training.trainer import make_config

# 32 px images, a 4x4 grid of 8 px patches, widths of 32: every step takes milliseconds.
TINY = ["model.image_size=32", "model.patch_size=8", "model.hidden_dim=32", "model.depth=2", "model.heads=2",
        "model.head_dim=16", "model.predictor_dim=32", "model.predictor_depth=1", "model.predictor_heads=2",
        "model.num_targets=2", "mask.min_context=2"]


def tiny_cfg(*extra: str):
    return make_config(TINY + ["dataloader.batch_size=4", *extra])


def slow_encode(vit, image: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """One image through a ViT with the patch convolution and per-sample indexing: [N or K, D]."""
    x = vit.patch_embed(image[None]).flatten(2).transpose(1, 2)[0] + vit.pos_embed
    if keep is not None:
        x = x[keep]
    for block in vit.blocks:
        x = block(x[None])[0]
    return vit.norm(x)


def reference_loss(model, images: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                   context_valid: torch.Tensor | None, shared_context: bool = False):
    """I-JEPA's loss the slow way: per sample, per target block, one predictor call on
    (that sample's own context tokens, no padding + that block's mask tokens). shared_context: at
    every block the context goes through on its own, and each target block's mask tokens through
    (that context + themselves)."""
    pred = model.predictor
    B, T, Kt = target_idx.shape
    squared_errors = []
    for b in range(B):
        with torch.no_grad():
            teacher = slow_encode(model.target_encoder, images[b])
            teacher = F.layer_norm(teacher, teacher.shape[-1:])
        keep = context_idx[b] if context_valid is None else context_idx[b][context_valid[b]]
        context = pred.proj_in(slow_encode(model.encoder, images[b], keep))
        context = context + pred.pos_embed[keep]
        queries = [pred.mask_token[0] + pred.pos_embed[target_idx[b, t]] for t in range(T)]
        if shared_context:
            for block in pred.blocks:
                queries = [block(torch.cat([context, q])[None])[0, -Kt:] for q in queries]
                context = block(context[None])[0]
        else:
            for t in range(T):
                y = torch.cat([context, queries[t]])[None]
                for block in pred.blocks:
                    y = block(y)
                queries[t] = y[0, -Kt:]
        for t in range(T):
            out = pred.proj_out(pred.norm(queries[t]))
            squared_errors.append((out - teacher[target_idx[b, t]]) ** 2)
    return torch.stack(squared_errors).mean()


@pytest.mark.parametrize("extra", [[], ["model.predictor_depth=2", "mask.context_budget=0.25"],
                                   ["model.predictor_depth=2", "model.predictor_shared_context=true"],
                                   ["model.predictor_depth=2", "model.predictor_shared_context=true",
                                    "mask.context_budget=0.25"]],
                         ids=["padded-depth1", "budget-depth2", "shared-padded-depth2", "shared-budget-depth2"])
def test_batched_predictor_matches_per_target_reference(extra):
    cfg = tiny_cfg("model.num_targets=3", "mask.target_scale=[0.1,0.2]", *extra)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.update_teacher(0.5)  # a teacher that differs from the student
    with torch.no_grad():
        for p in model.target_encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    step = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=10)
    images, context_idx, target_idx, context_valid, _ = step.inputs(
        torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8), 0)
    assert target_idx.shape[1] == 3
    # without a budget the context counts differ (padding is used); with one there is no padding
    assert (context_valid is None) if "mask.context_budget=0.25" in extra else not context_valid.all()

    params = [p for p in model.parameters() if p.requires_grad]  # the student's and the predictor's
    loss, _ = model(images, context_idx, target_idx, context_valid)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    ref = reference_loss(model, images, context_idx, target_idx, context_valid, model.shared_context)
    ref_grads = torch.autograd.grad(ref, params, allow_unused=True)

    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-7)
    for g, r in zip(grads, ref_grads):
        assert (g is None) == (r is None)
        if g is not None:
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_shared_context_layout_computes_the_context_once():
    """With one predictor block the shared-context layout predicts exactly what the per-block layout
    does (the context's own outputs are never read); with two it differs (the context no longer sees
    the mask tokens), and it costs fewer FLOPs: Kc + T*Kt tokens instead of T*(Kc + Kt)."""
    from torch.utils.flop_counter import FlopCounterMode

    for depth in (1, 2):
        cfg = tiny_cfg("model.num_targets=4", "mask.target_scale=[0.1,0.2]", f"model.predictor_depth={depth}")
        torch.manual_seed(0)
        model = build_model(cfg)
        with torch.no_grad():  # weights away from init, whose small residual branches hide the difference
            for p in model.predictor.parameters():
                p.add_(0.1 * torch.randn_like(p))
        step = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=10)
        _, context_idx, target_idx, valid, _ = step.inputs(torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8), 0)
        z = torch.randn(4, context_idx.shape[1], 32)
        outs, flops = [], []
        for shared in (False, True):
            with FlopCounterMode(display=False) as counter:
                outs.append(model.predictor(z, context_idx, target_idx, valid, shared))
            flops.append(counter.get_total_flops())
        if depth == 1:
            torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-6)
        else:
            assert (outs[1] - outs[0]).abs().max() > 1e-2
            assert flops[1] < 0.8 * flops[0]


@pytest.mark.parametrize("packed", [False, True])
def test_last_block_computes_only_the_rows_it_returns(packed):
    """Block.forward_last(x, n) is forward(x)[:, -n:] (values and gradients, padding keys masked),
    for fewer FLOPs: the predictor's last block, whose context outputs nobody reads."""
    from torch.utils.flop_counter import FlopCounterMode

    from simple_ijepa.models.layers import Block, PackedTokens, key_padding_bias

    torch.manual_seed(0)
    block = Block(dim=16, heads=2, head_dim=8, mlp_ratio=4.0)
    x0 = torch.randn(3, 7, 16)
    valid = torch.ones(3, 7, dtype=torch.bool)
    valid[0, :2] = valid[2, 1] = False  # padding among the first 4 tokens; the last 3 are real
    bias = key_padding_bias(valid)

    def run(fast: bool):
        block.zero_grad()
        x = x0.clone().requires_grad_()
        with FlopCounterMode(display=False) as counter:
            if not fast:
                out = block(x, bias)[:, -3:]
            elif packed:
                p = PackedTokens.from_valid(valid)
                out = block.forward_last(p.pack(x), 3, packed=p)
            else:
                out = block.forward_last(x, 3, bias)
            out.square().sum().backward()
        return out, [x.grad * valid[..., None]] + [p.grad.clone() for p in block.parameters()], \
            counter.get_total_flops()

    fast, slow = run(True), run(False)
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-5, atol=1e-6)
    for g, r in zip(fast[1], slow[1]):  # (the input's gradient compared on the real tokens)
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    assert fast[2] < 0.7 * slow[2]


def test_packed_tokens_equal_the_padded_path_and_cost_less(monkeypatch):
    """Full context (no budget): the encoder and predictor run their per-token layers on the real
    tokens only (PackedTokens). Loss and gradients equal the padded path's (padding slots computed
    and masked out of attention, what runs under torch.compile), and the step's FLOPs are lower."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    cfg = tiny_cfg("dataloader.batch_size=8", "mask.target_scale=[0.1,0.2]", "model.sigreg_weight=0.1")
    torch.manual_seed(0)
    model = build_model(cfg)
    step = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=10)
    inputs = step.inputs(torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8), 0)
    assert not inputs[3].all()  # padding is there to be skipped
    assert inputs[4] == int(inputs[3].sum())  # counted on the host: packing needs no device sync
    params = [p for p in model.parameters() if p.requires_grad]

    def loss_grads_flops():
        model.reseed(0)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            loss, _ = model(*inputs)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        return loss, grads, counter.get_total_flops()

    packed = loss_grads_flops()
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # the padded layout
    padded = loss_grads_flops()
    torch.testing.assert_close(packed[0], padded[0], rtol=1e-5, atol=1e-7)
    for g, r in zip(packed[1], padded[1]):
        assert (g is None) == (r is None)
        if g is not None:
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    assert packed[2] < padded[2]


@pytest.mark.parametrize("shared", [False, True])
def test_host_counted_context_packs_like_nonzero(shared):
    """The step passes the number of real context tokens, counted on the host, so that packing needs
    no host-device sync (`nonzero_static`): the predictor's output is the same as with `nonzero`,
    in both layouts (which derive their own counts from it), and so is the encoder's."""
    cfg = tiny_cfg("model.num_targets=3", "mask.target_scale=[0.1,0.2]", "model.predictor_depth=2")
    torch.manual_seed(0)
    model = build_model(cfg)
    step = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=10)
    _, context_idx, target_idx, valid, count = step.inputs(torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8), 0)
    assert not valid.all() and count == int(valid.sum())
    z = torch.randn(4, context_idx.shape[1], 32)
    ref = model.predictor(z, context_idx, target_idx, valid, shared)
    out = model.predictor(z, context_idx, target_idx, valid, shared, context_tokens=count)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(model.encoder(images, context_idx, valid, count),
                               model.encoder(images, context_idx, valid), rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("budget,shared", [(None, False), (0.5, False), (0.5, True)])
def test_compiled_step_matches_eager_with_one_graph(budget, shared):
    """Cold compile of the tiny model takes ~10-40 s on a 2-core CPU; the steps themselves are ms.
    With a context budget the context length is the same at every step (static) and nothing is padded."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    cfg = tiny_cfg("optim.compile=true", "ema.gamma=0.9", "dataloader.batch_size=8", "model.depth=1",
                   f"mask.context_budget={'null' if budget is None else budget}",
                   f"model.predictor_shared_context={str(shared).lower()}", "model.predictor_depth=2")
    torch.manual_seed(0)
    eager_model = build_model(cfg)
    compiled_model = copy.deepcopy(eager_model)
    cpu = torch.device("cpu")
    eager = TrainStep(cfg, eager_model, cpu, "fp32", total_steps=10)
    compiled = TrainStep(cfg, compiled_model, cpu, "fp32", total_steps=10, net=compile_net(compiled_model))
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)

    shapes = set()
    for s in range(3):
        inputs = eager.inputs(images, s)
        shapes.add(tuple(None if x is None else tuple(x.shape) for x in inputs[1:4]))
        loss_eager = eager(inputs, s)[0]
        loss_compiled = compiled(compiled.inputs(images, s), s)[0]
        torch.testing.assert_close(loss_compiled, loss_eager, rtol=1e-4, atol=1e-6)
    assert len(shapes) > 1, "the steps should exercise different mask sizes"
    if budget is not None:
        assert {s[0] for s in shapes} == {(8, 8)} and inputs[3] is None  # Kc = 0.5 * 16, every step
    assert counters["stats"]["unique_graphs"] == 1, "mask sizes must not trigger a recompile"
    for pe, pc in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(pc, pe, rtol=1e-3, atol=1e-5)
    torch._dynamo.reset()


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_masks_and_data_path_shapes(device):
    cfg = tiny_cfg()
    dev = torch.device(device)
    with dev:
        model = build_model(cfg)
    step = TrainStep(cfg, model, dev, "fp32", total_steps=10)
    for channels in (3, 1):
        images_u8 = torch.zeros(4, channels, 40, 40, dtype=torch.uint8, device=dev)
        images = step.augment(images_u8, 0)
        assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32 and images.device == dev
    context_idx, target_idx, context_valid, context_tokens = step.masks(4, 0)
    assert context_idx.dtype == target_idx.dtype == torch.int64 and context_valid.dtype == torch.bool
    # counted on the host, where the masks are built, whatever the device
    assert isinstance(context_tokens, int) and (device == "meta" or context_tokens == int(context_valid.sum()))
    assert context_idx.device == target_idx.device == context_valid.device == dev
    assert context_valid.shape == context_idx.shape
    assert context_idx.ndim == 2 and context_idx.shape[0] == 4
    assert target_idx.ndim == 3 and target_idx.shape[:2] == (4, 2)
    images, c2, t2, _, _ = step.inputs(torch.zeros(4, 3, 40, 40, dtype=torch.uint8), 0)
    assert c2.shape == context_idx.shape and t2.shape == target_idx.shape and images.device == dev
    if device == "cpu":  # values: in range, context and targets disjoint
        grid = cfg.model.image_size // cfg.model.patch_size
        assert 0 <= int(context_idx.min()) and int(context_idx.max()) < grid * grid
        for b in range(4):
            assert not set(context_idx[b].tolist()) & set(target_idx[b].flatten().tolist())


def test_crop_mask_and_gate_draws_of_a_step_are_uncorrelated(monkeypatch):
    """Each random stream of a step has its own seed: over many steps the first draws of the crop and
    flip generator, the mask generators (sizes, positions) and the model's generator (gate noise) are
    unrelated. (One shared step seed made the torch generators draw the same numbers on the CPU.)"""
    import random as pyrandom

    import numpy as np

    from simple_ijepa.training import step as step_module

    cfg = tiny_cfg("variant=gated")
    model = build_model(cfg)
    step = TrainStep(cfg, model, torch.device("cpu"), "fp32", total_steps=10)
    draws = {"crop": [], "mask sizes": [], "mask positions": [], "gate": []}

    def fake_crop(images, size, scale, hflip, generator):
        draws["crop"].append(torch.rand(1, generator=generator).item())
        return images.float()

    def fake_masks(batch_size, rng: pyrandom.Random, gen: torch.Generator):
        draws["mask sizes"].append(rng.random())
        draws["mask positions"].append(torch.rand(1, generator=gen).item())
        return None, None, None

    def recording_reseed(seed: int):  # what the gate noise of this step will draw first
        draws["gate"].append(torch.rand(1, generator=torch.Generator().manual_seed(seed)).item())

    monkeypatch.setattr(step_module, "random_resized_crop", fake_crop)
    step.mask_gen = fake_masks
    model.reseed = recording_reseed
    weight = next(model.parameters())
    step.net = lambda *inputs: ((weight * 0).sum(), {})  # the draws are what is tested, not the model
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    for s in range(200):
        step.augment(images, s)
        step.masks(2, s)
        step((images,), s)
    corr = np.corrcoef(np.array(list(draws.values())))
    off_diagonal = np.abs(corr[~np.eye(len(draws), dtype=bool)])
    assert off_diagonal.max() < 0.3, dict(zip(draws, corr.round(2).tolist()))
    assert len({round(v, 12) for v in draws["crop"]}) == 200  # and each step draws afresh

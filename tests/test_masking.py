import random

import pytest
import torch

from simple_ijepa.masks import MultiBlockMaskGenerator, RandomMaskGenerator, block_size, build_masks, pad_context


def draw(gen, batch, seed):
    return gen(batch, random.Random(seed), torch.Generator().manual_seed(seed))


def real_context(ctx, valid):
    """The real context indices of each sample (padding removed) as lists."""
    return [c[v].tolist() for c, v in zip(ctx, valid)]


@pytest.mark.parametrize("grid,targets", [(12, 4), (6, 4), (3, 1), (4, 2), (8, 4)])
def test_mask_invariants_over_many_draws(grid, targets):
    gen = MultiBlockMaskGenerator(grid, targets, min_context=2)
    n = grid * grid
    for seed in range(200):
        ctx, tgt, valid = draw(gen, 8, seed)
        B, T, Kt = tgt.shape
        assert (B, T) == (8, targets) and ctx.shape[0] == 8
        assert ctx.dtype == tgt.dtype == torch.long
        assert valid.dtype == torch.bool and valid.shape == ctx.shape
        assert ctx.min() >= 0 and ctx.max() < n and tgt.min() >= 0 and tgt.max() < n
        for b, real in enumerate(real_context(ctx, valid)):
            assert len(real) >= 2  # the context floor
            assert all(x < y for x, y in zip(real, real[1:]))  # sorted, no duplicates
            # padding comes last, after the real tokens
            assert valid[b].tolist() == [True] * len(real) + [False] * (ctx.shape[1] - len(real))
            assert not set(real) & set(tgt[b].flatten().tolist())  # targets removed from context
            for t in range(T):  # each target is a full h x w rectangle
                rows = (tgt[b, t] // grid).unique()
                cols = (tgt[b, t] % grid).unique()
                assert len(rows) * len(cols) == Kt
                assert rows.diff().eq(1).all() and cols.diff().eq(1).all()


def test_target_sizes_in_range():
    grid = 12
    gen = MultiBlockMaskGenerator(grid)
    lo = min(h * w for h, w in (block_size(s, a, grid) for s in (0.15, 0.2) for a in (0.75, 1.5)))
    sizes = {draw(gen, 2, seed)[1].shape[2] for seed in range(300)}
    assert min(sizes) >= lo - 2 and max(sizes) <= 0.2 * 144 * 1.25
    assert len(sizes) > 2  # sizes vary between batches


def test_every_position_reachable_and_context_near_paper_ratio():
    grid = 12
    gen = MultiBlockMaskGenerator(grid)
    tgt_hits = torch.zeros(grid * grid)
    ctx_hits = torch.zeros(grid * grid)
    ratios = []
    for seed in range(300):
        ctx, tgt, valid = draw(gen, 16, seed)
        tgt_hits += torch.bincount(tgt.flatten(), minlength=grid * grid)
        real = ctx[valid]
        ctx_hits += torch.bincount(real, minlength=grid * grid)
        ratios.append(len(real) / 16 / grid ** 2)
    assert (tgt_hits > 0).all() and (ctx_hits > 0).all()  # last row and column included
    # No raster-order bias: coverage is symmetric under vertical and horizontal flips.
    for hits in (tgt_hits.view(grid, grid), ctx_hits.view(grid, grid)):
        for dim in (0, 1):
            assert (hits - hits.flip(dim)).abs().max() < 0.1 * hits.max()
    assert 0.15 < sum(ratios) / len(ratios) < 0.5  # paper: ~25% context at its scale


def test_same_seed_same_masks_and_no_hang_on_3x3():
    gen = MultiBlockMaskGenerator(3, num_targets=2, target_scale=(0.1, 0.2), min_context=1)
    a, b = draw(gen, 4, 7), draw(gen, 4, 7)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for seed in range(500):
        draw(gen, 4, seed)


def test_impossible_config_is_an_error():
    with pytest.raises(ValueError, match="min_context"):
        MultiBlockMaskGenerator(3, num_targets=4, target_scale=(0.3, 0.4), min_context=2)


def test_pad_context_round_trips_any_mask():
    in_context = torch.rand(6, 20, generator=torch.Generator().manual_seed(0)) < 0.4
    in_context[:, 0] = True  # at least one patch each
    ctx, valid = pad_context(in_context)
    assert ctx.shape[1] == int(in_context.sum(1).max())
    rebuilt = torch.zeros_like(in_context)
    for b in range(6):
        rebuilt[b, ctx[b][valid[b]]] = True
        assert (ctx[b][~valid[b]] == ctx[b, 0]).all()  # padding repeats a real index
    assert torch.equal(rebuilt, in_context)
    assert pad_context(torch.ones(3, 5, dtype=torch.bool))[1].all()  # equal counts: nothing padded


@pytest.mark.slow
def test_context_does_not_depend_on_the_batch_size():
    """The old collator cut every sample to the batch's smallest context (~40% lost at batch 1024):
    now a sample's expected context size is the same at batch 1 and at batch 256."""
    gen = MultiBlockMaskGenerator(12)

    def mean_context(batch, draws):
        sizes = []
        for seed in range(draws):
            ctx, _, valid = draw(gen, batch, seed)
            sizes += valid.sum(1).tolist()
        return sum(sizes) / len(sizes)

    small, large = mean_context(1, 3000), mean_context(256, 100)
    assert abs(large - small) < 0.05 * small, (small, large)


# --- random masking (mask.kind=random) --------------------------------------------------------
@pytest.mark.parametrize("grid,targets", [(12, 4), (6, 2), (4, 2)])
def test_random_masks_are_disjoint_scattered_sets_of_equal_size(grid, targets):
    gen = RandomMaskGenerator(grid, targets, target_scale=(0.1, 0.2), context_scale=(0.5, 1.0), min_context=2)
    n = grid * grid
    rows_seen = set()
    for seed in range(50):
        ctx, tgt, valid = draw(gen, 6, seed)
        B, T, Kt = tgt.shape
        assert (B, T) == (6, targets) and valid is None  # equal counts: nothing padded
        assert round(0.1 * n) <= Kt <= round(0.2 * n) and ctx.shape[1] >= 2
        for b in range(B):
            picked = tgt[b].flatten().tolist() + ctx[b].tolist()
            assert len(set(picked)) == len(picked) and min(picked) >= 0 and max(picked) < n  # disjoint
            assert ctx[b].diff().gt(0).all() and tgt[b].diff(dim=1).gt(0).all()  # raster order
            rows_seen.add(tuple((tgt[b, 0] // grid).unique().tolist()))
    assert len(rows_seen) > 10  # scattered, not blocks: many different row sets
    a, b = draw(gen, 6, 3), draw(gen, 6, 3)
    assert all(x is y is None or torch.equal(x, y) for x, y in zip(a, b))  # same seeds, same masks


def test_build_masks_picks_the_kind_and_rejects_an_unknown_one():
    class M:  # a mask.* section
        target_scale, target_aspect_ratio, context_scale, min_context = (0.15, 0.2), (0.75, 1.5), (0.85, 1.0), 4
        context_budget = None
    assert isinstance(build_masks("multiblock", 8, 4, M), MultiBlockMaskGenerator)
    assert isinstance(build_masks("random", 8, 4, M), RandomMaskGenerator)
    with pytest.raises(ValueError, match="mask.kind='grid'"):
        build_masks("grid", 8, 4, M)
    with pytest.raises(ValueError, match="min_context"):  # each strategy checks its own fit
        RandomMaskGenerator(4, num_targets=4, target_scale=(0.2, 0.3), min_context=4)


@pytest.mark.parametrize("grid", [7, 12, 14])
@pytest.mark.parametrize("share", [0.15, 0.25, 0.35])
def test_a_context_budget_keeps_exactly_k_patches_outside_the_targets(grid, share):
    gen = MultiBlockMaskGenerator(grid, 4, context_budget=share)
    k = round(share * grid * grid)
    for seed in range(30):
        ctx, tgt, valid = draw(gen, 16, seed)
        assert ctx.shape == (16, k) and valid is None  # every sample, every batch: static shapes
        for b in range(16):
            kept, targets = ctx[b].tolist(), set(tgt[b].flatten().tolist())
            assert len(set(kept)) == k and kept == sorted(kept)
            assert not targets & set(kept)  # never a target patch
        again = draw(gen, 16, seed)
        assert torch.equal(again[0], ctx) and torch.equal(again[1], tgt)  # same seed, same masks


def test_a_budget_draws_from_the_context_block_first():
    """With a budget below the block's count every kept patch lies in the block; the subsets differ
    between seeds (a uniform draw, not a raster-order cut)."""
    g = 12
    gen = MultiBlockMaskGenerator(g, 1, target_scale=(0.05, 0.05), context_budget=0.15, context_scale=(0.5, 0.5))
    firsts = set()
    for seed in range(20):
        ctx, tgt, _ = draw(gen, 8, seed)
        rows, cols = ctx // g, ctx % g
        side = round(0.5 ** 0.5 * g)  # the context block's side
        assert ((rows.max(1).values - rows.min(1).values) < side).all()
        assert ((cols.max(1).values - cols.min(1).values) < side).all()
        firsts.add(tuple(ctx[0].tolist()))
    assert len(firsts) == 20


def test_a_budget_larger_than_the_block_takes_the_rest_outside_the_targets():
    gen = MultiBlockMaskGenerator(8, 2, target_scale=(0.1, 0.1), context_scale=(0.2, 0.2), context_budget=0.5)
    ctx, tgt, _ = draw(gen, 8, 0)
    assert ctx.shape == (8, 32)
    for b in range(8):
        assert not set(tgt[b].flatten().tolist()) & set(ctx[b].tolist())


def test_a_budget_that_cannot_fit_is_a_config_error_naming_the_key():
    from simple_ijepa.config import validate
    from simple_ijepa.errors import ConfigError
    from simple_ijepa.training.trainer import make_config

    for share in (0.9, 0.001, 1.5):
        with pytest.raises(ConfigError, match="`mask.context_budget`"):
            validate(make_config([f"mask.context_budget={share}"]))
    validate(make_config(["mask.context_budget=0.15", "mask.kind=random"]))
    with pytest.raises(ConfigError, match="`mask.context_budget`"):  # random targets are disjoint: 4 x 29 + 36 > 144
        validate(make_config(["mask.context_budget=0.25", "mask.kind=random"]))
    gen = RandomMaskGenerator(12, 4, context_budget=0.15)
    ctx, _, valid = draw(gen, 4, 0)
    assert ctx.shape == (4, 22) and valid is None

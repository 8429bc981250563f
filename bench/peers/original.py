"""Peer adapter: the original implementation, VittuD/simple-ijepa at commit 403e8e9, on Fashion-MNIST.

    python bench/peers/original.py --seed 0 --marks 60 120 --out OUT [--seed_root DIR] [--mirror GITDIR]
        [--log_every 50]   # the mean loss every N steps, with gamma and the context / target lengths, to stderr

Trains the original repository's own baseline I-JEPA (its model, masks, optimiser, EMA and loss, imported
from an unpacked tree of that commit) single-process on the CPU for the training seconds in --marks, and at
each mark hands bench/peers/common.py the features of its EMA target encoder (see common.py's contract).
Its package is also named `simple_ijepa`, so this script imports nothing from ours and runs on its own.

Where the original comes from: --seed_root DIR, an unpacked tree of 403e8e9 (`git --git-dir=M archive
403e8e9 | tar x -C DIR`). Without it, the tree is unpacked once from the bare mirror --mirror (default
/work/.mirror/VittuD+simple-ijepa/repo) into $XDG_CACHE_HOME (or ~/.cache)/simple-ijepa-peers/.
It needs einops, torchvision and matplotlib (simple_ijepa/utils.py imports them).

What is the original's, unchanged (file:line at 403e8e9). The per-step logic follows its current
entrypoint, scripts/train_ddp.py -> simple_ijepa/training/ddp_trainer.py (train.py:104-125, the older
single-process loop, does the same), replayed in a plain loop without DDP:
  - model: transformer.py:87-142 VisionTransformer (pre-norm ViT, learnable pos-embedding started at 2-D
    sin-cos, final LayerNorm) as encoder; ijepa.py:93-119 IJEPA: a deep-copied target encoder (ijepa.py:27),
    a predictor VisionTransformer at the encoder's width (ijepa.py:109-116), a mask token. Loss
    (ijepa.py:121-182): layer-normed target-encoder tokens vs layer-normed predictor outputs, MSE, averaged
    over the targets; the context is encoded from its patches only, the pos-embedding is added again to the
    context encoder's output (ijepa.py:138-142) and to the mask tokens (ijepa.py:155-158).
  - masks: dataset.py:16-22 MaskedImageDataset.__getitem__ and :50-89 generate_blocks: one context block
    (scale 0.85-1, aspect 0.75-1.5) minus 4 target blocks (scale 0.15-0.2, aspect 0.75-1.5, up to
    num_patches tries for the least overlap with the context and the earlier targets), drawn per image with
    Python's `random` and torch's RNG; then dataset.py:92-110 collate_fn: every context and every target cut
    to the batch's smallest.
  - optimiser (ddp_trainer.py:91-100): torch.optim.Adam over context encoder + mask token + predictor,
    lr 3e-4, weight_decay 1e-5 (config.py:23-28 OptimConfig; run_training.py's defaults too); no LR schedule,
    no warm-up, no gradient clipping.
  - precision: fp32. Its config asks fp16 (config.py:28 fp16_precision=True) through torch.cuda.amp autocast
    and GradScaler (ddp_trainer.py:216, 259, 369-372), which do nothing for CPU tensors.
  - EMA (ddp_trainer.py:374-383; ijepa.py:45-72 update_params/copy_params): steps 0 and 1 copy student ->
    teacher; from step 2 on, every step, teacher <- lerp(teacher, student, 1 - gamma) with the gamma computed
    at the previous step, then gamma = update_gamma(step, K, 0.996) (train.py:30-35, cosine from 0.996 up
    towards 1) with K = len(loader) * (num_epochs + 2) - 1 (ddp_trainer.py:268; config.py:39-43 EMAConfig:
    gamma 0.996, update_gamma_after_step 1, update_gamma_every_n_steps 1).
  - training images (utils.py:9-15 training_transforms, used at ddp_trainer.py:158): RandomResizedCrop(size,
    scale 0.3-1), RandomHorizontalFlip(0.5), ToTensor; no normalisation (commented out there).
  - evaluation encoder and preprocessing (stl10_eval.py:53-74; dist_utils.py:80-83 "teacher encoder"): the
    target encoder (`ijepa_model.target_encoder`), its final tokens (after the transformer's final LayerNorm,
    without the loss targets' extra F.layer_norm), images through utils.py:18-23 inference_transforms
    (Resize to the image size, a no-op at 28 px, then ToTensor; no normalisation).
  - data order: its DistributedSampler at world size 1 (ddp_trainer.py:176-182): a randperm of the dataset
    per epoch from a generator seeded seed + epoch; drop_last False (60000 / 96 = 625 full batches).

What is adapted, and why:
  - data: Fashion-MNIST's uint8 [60000, 28, 28] instead of STL-10's unlabeled split. Each image goes through
    the original's own training_transforms((28, 28)) as a grayscale PIL image and is then replicated to 3
    channels, since its VisionTransformer is built with channels=3 (transformer.py:97; its trainers never
    change it). This equals converting to RGB first (same crop, same per-channel resampling), at a third of
    the cost. The same for the features (inference_transforms, then 3 channels).
  - size (the benchmark's common encoder): image 28, patch 4 (7 x 7 = 49 patches), width 192, depth 4,
    heads 3. Per-head width: its Attention's dim_head default of 64 (transformer.py:98; its trainers never
    pass it; at its default size 6 x 64 = 384 < 512), so 3 heads x 64 = 192 = the width. MLP 2 x width = 384,
    as its trainers set mlp_dim = hidden_dim * 2 (ddp_trainer.py:67; the predictor's likewise, ijepa.py:115).
    Targets: 4, its default. Predictor: its defaults mirror the encoder (predictor depth 6 / heads 6 for a
    depth-6, 6-head encoder, configuration_ijepa.py:25-31) at the encoder's width (ijepa.py:112), so here
    depth 4, heads 3 (x 64), width 192, MLP 384.
  - batch size 96, the benchmark's (its defaults: 1024 in config.py:34, 256 in run_training.py and the README).
  - EMA horizon K: its num_epochs becomes what fits the time budget. After a calibration on the first 10 steps,
    H = clock.horizon(10) (the steps of the whole budget at that speed) is frozen; with num_epochs = H / 625,
    its formula gives K = H + 2 * 625 - 1. Before that (steps 2-9, where gamma is ~0.996 whatever K is) K uses
    clock.horizon(steps so far). As in the original, the "+ 2 epochs" keep gamma short of 1 at the end.
  - seeds: the benchmark's --seed (Python's, NumPy's and torch's RNGs via common.main, and the sampler)
    instead of its SEED = 42 (ddp_trainer.py:36).
  - no DataLoader or workers: each batch (transforms + masks + collate_fn) is built in-process, inside the
    training clock. One process, no DDP, on the CPU.
  - feature_fn runs the target encoder in eval mode under torch.no_grad (it has no dropout or batch norm, so
    the mode changes nothing) and restores its mode after.

Odd things in the original that the comparison inherits (kept, not fixed):
  - collate_fn cuts every context to the batch's smallest and keeps the first indices in row-major order,
    i.e. the top rows of each image's context: at 28 px / batch 96 the context left is 16-20 of the 49
    patches (observed, printed as `ctx` in the stderr log), mostly the upper half of the image, and a bigger
    batch would leave less. Likewise every target keeps its first 6 patches (`tgt`), the batch's smallest
    target, i.e. its top rows.
  - the pos-embedding is added twice to the context tokens (in the encoder, and on its output).
  - the EMA gamma lags the schedule by one step; K includes 2 epochs that are never trained.
  - the predictor's own patch embedding and pos-embedding are built, handed to Adam, and never used.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import main  # noqa: E402

COMMIT = "403e8e9"
DEFAULT_MIRROR = "/work/.mirror/VittuD+simple-ijepa/repo"
IMAGE, PATCH, DIM, DEPTH, HEADS, TARGETS = 28, 4, 192, 4, 3, 4
PRED_DEPTH, PRED_HEADS = DEPTH, HEADS  # its defaults mirror the encoder (configuration_ijepa.py)
BATCH = 96
LR, WEIGHT_DECAY = 3e-4, 1e-5  # config.py OptimConfig
GAMMA, GAMMA_AFTER, GAMMA_EVERY = 0.996, 1, 1  # config.py EMAConfig
CALIBRATION_STEPS = 10


def _log(msg: str) -> None:
    print(f"[original] {msg}", file=sys.stderr, flush=True)


def seed_tree(seed_root: str | None, mirror: str) -> str:
    """The unpacked original at 403e8e9: --seed_root, or unpacked once from the mirror into a cache folder."""
    if seed_root:
        if not os.path.isfile(os.path.join(seed_root, "simple_ijepa", "ijepa.py")):
            raise FileNotFoundError(f"--seed_root {seed_root}: no simple_ijepa/ijepa.py there")
        return seed_root
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "simple-ijepa-peers")
    root = os.path.join(cache, f"VittuD-simple-ijepa-{COMMIT}")
    if os.path.isfile(os.path.join(root, "simple_ijepa", "ijepa.py")):
        return root
    if not os.path.isdir(mirror):
        raise FileNotFoundError(
            f"the original implementation is not here: pass --seed_root DIR, an unpacked tree of "
            f"github.com/VittuD/simple-ijepa at {COMMIT} (git clone it, then `git archive {COMMIT} | tar x -C DIR`), "
            f"or --mirror GITDIR, a (bare) clone of it (not found: {mirror})")
    archive = subprocess.run(["git", f"--git-dir={mirror}", "archive", COMMIT], check=True, capture_output=True).stdout
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=cache)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    try:
        os.replace(tmp, root)
    except OSError:  # another process unpacked it first
        pass
    _log(f"unpacked {mirror} @ {COMMIT} into {root}")
    return root


def import_original(root: str):
    """The original's modules, imported from `root` (never from our package of the same name)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # its utils.py imports matplotlib.pyplot
    sys.path.insert(0, os.path.abspath(root))
    import simple_ijepa
    from simple_ijepa import dataset, ijepa, transformer, utils
    where = os.path.dirname(os.path.abspath(simple_ijepa.__file__))
    if not where.startswith(os.path.abspath(root)):
        raise ImportError(f"simple_ijepa was imported from {where}, not from the original's tree {root}")
    return dataset, ijepa, transformer, utils


def update_gamma(k, K, tau_base):
    """train.py:30-35 verbatim (its `from train import update_gamma` would drag in STL10/torchinfo imports)."""
    k = torch.tensor(k, dtype=torch.float32)
    K = torch.tensor(K, dtype=torch.float32)
    tau = 1 - (1 - tau_base) * (torch.cos(torch.pi * k / K) + 1) / 2
    return tau.item()


class FashionImages(torch.utils.data.Dataset):
    """uint8 [N, 28, 28] as its STL10 dataset would serve them: (transform(PIL image), label) -> 3 channels."""

    def __init__(self, images: np.ndarray, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        from PIL import Image
        img = self.transform(Image.fromarray(self.images[idx]))  # [1, H, W] in [0, 1]
        return img.repeat(3, 1, 1), 0


def train(images: np.ndarray, clock, seed: int, *extra: str):
    p = argparse.ArgumentParser(prog="original.py (adapter options)")
    p.add_argument("--seed_root", default=None, help=f"unpacked tree of VittuD/simple-ijepa @ {COMMIT}")
    p.add_argument("--mirror", default=DEFAULT_MIRROR, help="bare git mirror to unpack it from")
    p.add_argument("--log_every", type=int, default=50, help="print the mean loss every N steps (stderr)")
    args = p.parse_args(list(extra))
    dataset_mod, ijepa_mod, transformer_mod, utils_mod = import_original(seed_tree(args.seed_root, args.mirror))

    encoder = transformer_mod.VisionTransformer(image_size=IMAGE, patch_size=PATCH, dim=DIM, depth=DEPTH,
                                                heads=HEADS, mlp_dim=DIM * 2)
    model = ijepa_mod.IJEPA(encoder, hidden_emb_dim=DIM, img_size=IMAGE, patch_size=PATCH, num_targets=TARGETS,
                            predictor_depth=PRED_DEPTH, predictor_heads=PRED_HEADS)
    model.train()
    params = list(model.context_encoder.parameters()) + [model.mask_token] + list(model.predictor.parameters())
    optimizer = torch.optim.Adam(params, lr=LR, weight_decay=WEIGHT_DECAY)

    num_patches = (IMAGE // PATCH) ** 2
    data = dataset_mod.MaskedImageDataset(FashionImages(images, utils_mod.training_transforms((IMAGE, IMAGE))),
                                          num_patches=num_patches, num_targets=TARGETS)
    collate_fn = dataset_mod.collate_fn
    steps_per_epoch = math.ceil(len(data) / BATCH)  # len(train_loader), drop_last=False
    infer = utils_mod.inference_transforms((IMAGE, IMAGE))
    _log(f"encoder {sum(p.numel() for p in model.context_encoder.parameters()) / 1e6:.2f}M params, "
         f"predictor {sum(p.numel() for p in model.predictor.parameters()) / 1e6:.2f}M; "
         f"{steps_per_epoch} steps/epoch at batch {BATCH}")

    @torch.no_grad()
    def feature_fn(x: np.ndarray) -> torch.Tensor:
        """uint8 [B, 28, 28] -> [B, 49, 192]: the target encoder's final tokens, as stl10_eval.py probes it."""
        from PIL import Image
        enc = model.target_encoder
        was_training = enc.training
        enc.eval()
        try:
            batch = torch.stack([infer(Image.fromarray(im)).repeat(3, 1, 1) for im in x])
            return enc(batch)
        finally:
            enc.train(was_training)

    gamma, horizon, total_num_steps = GAMMA, None, None
    global_step, epoch, window = 0, 0, []
    sampler = torch.Generator()
    while True:
        sampler.manual_seed(seed + epoch)  # DistributedSampler.__iter__ at world size 1
        order = torch.randperm(len(data), generator=sampler).tolist()
        for start in range(0, len(order), BATCH):
            clock.start()
            img, context_indices, target_indices_list = collate_fn([data[i] for i in order[start:start + BATCH]])
            loss = model(img, context_indices, target_indices_list)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if horizon is None:  # K = len(train_loader) * (num_epochs + 2) - 1, num_epochs = H / len(loader)
                steps_done = global_step + 1
                h = clock.horizon(steps_done)
                total_num_steps = h + 2 * steps_per_epoch - GAMMA_AFTER
                if steps_done >= CALIBRATION_STEPS:
                    horizon = h
                    _log(f"calibrated on {steps_done} steps ({clock.now():.1f} s): horizon {horizon} steps, "
                         f"EMA schedule K = {total_num_steps}")
            if global_step > GAMMA_AFTER and global_step % GAMMA_EVERY == 0:
                model.update_params(gamma)
                gamma = update_gamma(global_step, total_num_steps, GAMMA)
            if global_step <= GAMMA_AFTER:
                model.copy_params()
            global_step += 1
            clock.stop()

            window.append(loss.item())
            if global_step == 1 or global_step % args.log_every == 0:
                _log(f"step {global_step} loss {np.mean(window):.5f} (mean of {len(window)}) gamma {gamma:.6f} "
                     f"ctx {len(context_indices[0])} tgt {len(target_indices_list[0][0])} "
                     f"train {clock.elapsed:.1f} s {time.strftime('%H:%M:%S')}")
                window = []
            if clock.due():
                _log(f"mark {clock.reached:g} s: step {global_step}, last loss {loss.item():.5f}, gamma {gamma:.6f}")
                yield global_step, global_step * BATCH, feature_fn
                if clock.finished():
                    return
        epoch += 1


if __name__ == "__main__":
    main(train, __doc__.split("\n\n")[0])

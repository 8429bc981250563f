"""Peer adapter: lightly's I-JEPA (the `lightly` package) trained on Fashion-MNIST under the shared clock.

    .venv/bin/python bench/peers/lightly_ijepa.py --seed 0 --marks 60 120 --out OUT [--threads 2] [--data DIR]

What it runs is lightly's own pure-PyTorch I-JEPA example, examples/pytorch/ijepa.py
(https://github.com/lightly-ai/lightly/blob/master/examples/pytorch/ijepa.py, read at commit e8d317fc; the
modules it uses are byte-identical to the installed lightly 1.6.0): its `IJEPA` module (context encoder
`IJEPABackbone.from_vit`, predictor `IJEPAPredictor`, deep-copied target encoder, layer-normed targets), its
`IJEPAMaskCollator`, its `IJEPATransform`, its loss, optimiser and EMA schedule. Only the sizes, the data and
the clock are ours. See bench/peers/common.py for the adapter contract; nothing here imports `simple_ijepa`.

Hyperparameters (example value -> value here):
  encoder      torchvision `vit_b_32(pretrained=False)` (224 px, patch 32, width 768, depth 12, 12 heads,
               MLP 3072) -> torchvision `VisionTransformer(image_size=28, patch_size=4, num_layers=4,
               num_heads=3, hidden_dim=192, mlp_dim=768)`: our encoder's size. Default torchvision init,
               dropout 0, and it keeps torchvision's class token (see "class token" below).
  predictor    `IJEPAPredictor.from_vit_encoder(vit_b_32().encoder, 49)`: the transformer blocks of a second
               ViT of the encoder's own size (12 x 768) -> blocks of a second ViT of our encoder's size
               (4 blocks, width 192, 3 heads, MLP 768). `from_vit_encoder` hard-codes the in/out projections
               to 768 (`predictor_embed_dim=768, mlp_dim=768`, i.e. ViT-B's width), so it cannot take a
               192-wide encoder; `build_predictor` below does what it does with 768 -> 192.
  masks        `IJEPAMaskCollator(input_size=(224, 224), patch_size=32)` with all other arguments at their
               defaults (enc_mask_scale (0.2, 0.8), pred_mask_scale (0.2, 0.8), aspect_ratio (0.3, 3.0),
               nenc 1, npred 2, min_keep 4, allow_overlap False) -> `input_size=(28, 28), patch_size=4`:
               the same 7 x 7 patch grid as the example, so nothing else needs scaling. Called as the
               example's DataLoader calls it: on a list of (image, label) pairs, once per batch.
  transform    `IJEPATransform()`: RandomResizedCrop(224, scale=(0.2, 1.0), bicubic), RandomHorizontalFlip,
               ToTensor, Normalize(ImageNet mean/std) -> `IJEPATransform(input_size=28)`, the same with
               28 px crops, applied per image to the grayscale image converted to RGB (PIL `convert("RGB")`:
               the gray value replicated to 3 channels), so it keeps ImageNet's per-channel normalisation.
               Eval transform (feature_fn, no augmentation): the same without crop/flip: gray / 255
               replicated to 3 channels, Normalize(ImageNet mean/std).
  batch size   10 -> 96 (ours). Batches: a seeded per-epoch permutation of the 60,000 images, 625 full
               batches per epoch, in-process (no DataLoader workers).
  loss         `nn.SmoothL1Loss()` (beta 1, mean) between predictions and `F.layer_norm`-ed target tokens,
               as in the example.
  optimiser    `torch.optim.AdamW(model.parameters(), lr=1.5e-4)`: torch defaults otherwise (betas (0.9,
               0.999), eps 1e-8, weight_decay 0.01 on every parameter, biases and norms included). Constant
               learning rate: the example has no warm-up, no schedule, no gradient clipping. Kept as is (the
               example gives no rule to rescale lr with batch size). `model.parameters()` includes the target
               encoder's; they never get gradients, so AdamW skips them, as in the example.
  EMA          the example's own linear schedule (it does not use lightly's `cosine_schedule` or
               `update_momentum`): `ema = (0.996, 1.0)`, m_i = 0.996 + i * 0.004 / (ipe * num_epochs *
               ipe_scale) for the i-th step, and `param_k = m * param_k + (1 - m) * param_q` after each
               optimiser step, over all encoder parameters. Its horizon ipe * num_epochs (ipe_scale 1.0) is
               the run's length in steps; here that is `clock.horizon(10)` after the first 10 steps (the
               steps that fit in the whole time budget at the speed of those steps). During those first 10
               steps m = 0.996 (the schedule's start; the exact value differs by < 1e-5). If the run outlasts
               the horizon, m stays at 1.0 (the example's generator would raise StopIteration instead).
  epochs       num_epochs 10 -> as many as the clock allows (only used through the EMA horizon above).

Class token: `IJEPABackbone` prepends torchvision's class token, so it encodes 1 + 49 tokens. feature_fn
returns the EMA target encoder's final tokens (after its final LayerNorm) without the class token, i.e. the
49 patch tokens, [B, 49, 192]; common.py mean-pools them.

Things in lightly's implementation that matter for a comparison (kept as they are, since that is what a
lightly user gets): (1) the collator's mask indices run over the 49 patches (0..48), but the backbone applies
them to the 50-token sequence with the class token at position 0, so index k selects patch k - 1 (index 0
selects the class token) for both context and targets, while the predictor's sin-cos positions use the
patch-k position: everything is shifted by one patch in raster order. (2) The collator's default block
scales (0.2-0.8 for both) are not the I-JEPA paper's (context 0.85-1.0, targets 0.15-0.2); on a 7 x 7 grid,
with two target blocks removed from it, the context is only ~5-16 tokens (mean ~7 of 49). Blocks never touch
the last patch row or column (`torch.randint(0, height - h)`, as in the official code). (3) No learning-rate
or weight-decay schedule, and weight decay on all parameters (the official I-JEPA warms up and cosine-decays
both and exempts biases and norms). (4) The encoder's positions are torchvision's learned embedding (the
paper: fixed sin-cos); the predictor's are fixed sin-cos.

The loss (mean over the last 50 steps) is printed to stderr every 50 steps.
"""
from __future__ import annotations

import copy
import os
import sys

import numpy as np
import torch
from lightly.data import IJEPAMaskCollator
from lightly.models import utils
from lightly.models.modules.ijepa import IJEPABackbone, IJEPAPredictor
from lightly.transforms.ijepa_transform import IJEPATransform
from lightly.transforms.utils import IMAGENET_NORMALIZE
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import main  # noqa: E402

IMAGE_SIZE, PATCH_SIZE = 28, 4
WIDTH, DEPTH, HEADS, MLP_DIM = 192, 4, 3, 768  # our encoder's size; the example's predictor = encoder size
BATCH_SIZE = 96  # ours (the example: 10)
LR = 1.5e-4  # example: torch.optim.AdamW(model.parameters(), lr=1.5e-4)
EMA = (0.996, 1.0)  # example: ema = (0.996, 1.0), linear over ipe * num_epochs * ipe_scale steps
CALIBRATION_STEPS = 10  # steps timed before the EMA horizon is set from clock.horizon
LOG_EVERY = 50


def make_vit() -> VisionTransformer:
    """The example's `torchvision.models.vit_b_32(pretrained=False)`, at our encoder's size."""
    return VisionTransformer(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_layers=DEPTH, num_heads=HEADS,
                             hidden_dim=WIDTH, mlp_dim=MLP_DIM)


def build_predictor(vit_encoder, num_patches: int, encoder_dim: int) -> IJEPAPredictor:
    """`IJEPAPredictor.from_vit_encoder` with its hard-coded 768 (ViT-B's width) replaced by `encoder_dim`.

    from_vit_encoder builds the predictor with `predictor_embed_dim=768, mlp_dim=768` (`mlp_dim` sets the
    in-projection's input and the out-projection's output, i.e. the encoder's width) and then takes the
    transformer blocks and final norm of the given ViT encoder, whose width must equal predictor_embed_dim.
    """
    predictor = IJEPAPredictor(seq_length=1, num_layers=1, num_heads=1, hidden_dim=1,
                               predictor_embed_dim=vit_encoder.ln.normalized_shape[0], mlp_dim=encoder_dim,
                               num_patches=num_patches, dropout=0, attention_dropout=0)
    predictor.layers = vit_encoder.layers
    predictor.ln = vit_encoder.ln
    return predictor


class IJEPA(nn.Module):
    """The example's `IJEPA` module; the EMA momentum is passed in instead of drawn from a generator."""

    def __init__(self, vit_encoder, vit_predictor):
        super().__init__()
        self.encoder = IJEPABackbone.from_vit(vit_encoder)
        self.predictor = build_predictor(vit_predictor.encoder,
                                         (vit_predictor.image_size // vit_predictor.patch_size) ** 2,
                                         vit_encoder.hidden_dim)
        self.target_encoder = copy.deepcopy(self.encoder)

    def forward_target(self, imgs, masks_enc, masks_pred):
        with torch.no_grad():
            h = self.target_encoder(imgs)
            h = F.layer_norm(h, (h.size(-1),))  # normalize over feature-dim
            B = len(h)
            h = utils.apply_masks(h, masks_pred)  # create targets (masked regions of h)
            h = utils.repeat_interleave_batch(h, B, repeat=len(masks_enc))
            return h

    def forward_context(self, imgs, masks_enc, masks_pred):
        z = self.encoder(imgs, masks_enc)
        z = self.predictor(z, masks_enc, masks_pred)
        return z

    def forward(self, imgs, masks_enc, masks_pred):
        z = self.forward_context(imgs, masks_enc, masks_pred)
        h = self.forward_target(imgs, masks_enc, masks_pred)
        return z, h

    def update_target_encoder(self, m: float) -> None:
        with torch.no_grad():
            for param_q, param_k in zip(self.encoder.parameters(), self.target_encoder.parameters()):
                param_k.data.mul_(m).add_((1.0 - m) * param_q.detach().data)


def ema_momentum(step: int, horizon: int | None) -> float:
    """The example's generator value for 0-based step `step`: linear from EMA[0] to EMA[1] over `horizon`."""
    if horizon is None:
        return EMA[0]
    return min(EMA[1], EMA[0] + step * (EMA[1] - EMA[0]) / horizon)


def train(images: np.ndarray, clock, seed: int, *extra_args):
    if extra_args:
        raise SystemExit(f"lightly_ijepa.py: unknown arguments {extra_args}")
    model = IJEPA(make_vit(), make_vit())
    model.train()
    collator = IJEPAMaskCollator(input_size=(IMAGE_SIZE, IMAGE_SIZE), patch_size=PATCH_SIZE)
    transform = IJEPATransform(input_size=IMAGE_SIZE)
    criterion = nn.SmoothL1Loss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    mean = torch.tensor(IMAGENET_NORMALIZE["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_NORMALIZE["std"]).view(1, 3, 1, 1)

    @torch.no_grad()
    def feature_fn(x: np.ndarray) -> torch.Tensor:
        """uint8 [B, 28, 28] -> [B, 49, 192]: the EMA target encoder's patch tokens (class token dropped)."""
        x = torch.from_numpy(np.asarray(x, dtype=np.float32) / 255).unsqueeze(1).expand(-1, 3, -1, -1)
        target = model.target_encoder
        was_training = target.training
        target.eval()
        try:
            return target((x - mean) / std)[:, 1:]
        finally:
            target.train(was_training)

    n, batches_per_epoch = len(images), len(images) // BATCH_SIZE
    steps = images_seen = epoch = 0
    order = None
    horizon = None
    loss_sum, loss_count = 0.0, 0
    while True:
        clock.start()
        b = steps % batches_per_epoch
        if b == 0:
            epoch = steps // batches_per_epoch
            order = np.random.default_rng([seed, epoch]).permutation(n)
        batch = [(transform(Image.fromarray(images[i]).convert("RGB")), 0)
                 for i in order[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]]
        udata, masks_enc, masks_pred = collator(batch)
        imgs = udata[0]
        z, h = model(imgs, masks_enc, masks_pred)
        loss = criterion(z, h)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        m = ema_momentum(steps, horizon)
        model.update_target_encoder(m)
        clock.stop()
        steps += 1
        images_seen += len(imgs)
        loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
        if steps == CALIBRATION_STEPS:
            horizon = clock.horizon(steps)
            print(f"[lightly] EMA horizon {horizon} steps ({steps} steps in {clock.elapsed:.1f} s, "
                  f"budget {clock.budget:g} s)", file=sys.stderr, flush=True)
        if steps == 1 or steps % LOG_EVERY == 0:
            print(f"[lightly] step {steps} epoch {epoch} loss {loss_sum / loss_count:.5f} ema {m:.5f} "
                  f"ctx {masks_enc[0].shape[1]} tgt {masks_pred[0].shape[1]} "
                  f"{images_seen / max(clock.elapsed, 1e-9):.1f} img/s", file=sys.stderr, flush=True)
            loss_sum, loss_count = 0.0, 0
        if clock.due():
            yield steps, images_seen, feature_fn
        if clock.finished():
            return


if __name__ == "__main__":
    main(train, "lightly's I-JEPA (examples/pytorch/ijepa.py) on Fashion-MNIST, scaled to our encoder size")

"""Batched augmentation on the training device: uint8 batches in, normalised float batches out.

One `grid_sample` does random-resized-crop + horizontal flip + resize for the whole batch, so no
per-image PIL work ever stands between the loader and the GPU. Bilinear weights sum to one, so the
scaling to [0, 1] and the per-channel normalisation are one fused multiply-add after the resample,
and a grayscale batch is resampled as one channel and expanded to three only by that last step.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=None)
def _uint8_to_normalised(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) [1, 3, 1, 1] with (pixel / 255 - mean) / std == pixel * scale + shift.

    Cached per device, so the hot path never copies constants from the host (a sync on CUDA)."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in STD], device=device).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(MEAN, STD)], device=device).view(1, 3, 1, 1)
    return scale, shift


def to_float_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] with C in {1, 3} -> float [B, 3, H, W] in [0, 1]."""
    x = images.float().div_(255.0)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def normalize(x: torch.Tensor) -> torch.Tensor:
    """float [B, 3, H, W] in [0, 1] -> (x - mean) / std per channel."""
    scale, shift = _uint8_to_normalised(x.device)
    return torch.addcmul(shift, x, scale * 255.0)


def eval_transform(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Deterministic: resize the whole image to image_size x image_size and normalise."""
    x = to_float_rgb(images)
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x)


def random_resized_crop(images: torch.Tensor, image_size: int, scale=(0.3, 1.0), ratio=(3 / 4, 4 / 3),
                        hflip: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float [B, 3, S, S], normalised.

    Per sample: area share ~ U(scale), log aspect ratio ~ U(log ratio), a uniform position that
    keeps the crop inside the image, a flip with probability 1/2 (as torchvision's
    RandomResizedCrop + RandomHorizontalFlip, except that a crop too wide is clipped, not redrawn).
    """
    x = images.float()  # [B, C, H, W], 0..255, C in {1, 3}
    B, dev = x.shape[0], x.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(B, device=dev, generator=generator)

    area = uniform(*scale)
    log_r = uniform(math.log(ratio[0]), math.log(ratio[1]))
    w = torch.sqrt(area * log_r.exp()).clamp(max=1.0)  # crop width as a share of the image width
    h = torch.sqrt(area / log_r.exp()).clamp(max=1.0)
    cx = (2 * torch.rand(B, device=dev, generator=generator) - 1) * (1 - w)  # centre, in [-1, 1] coords
    cy = (2 * torch.rand(B, device=dev, generator=generator) - 1) * (1 - h)
    if hflip:
        w = torch.where(torch.rand(B, device=dev, generator=generator) < 0.5, -w, w)  # a negative width flips
    # The sampling grid (what F.affine_grid builds with a batched matrix product) is separable:
    # x depends on the sample and column only, y on the sample and row only.
    pixels = (torch.arange(image_size, device=dev, dtype=x.dtype) * 2 + 1) / image_size - 1  # centres in [-1, 1]
    gx = (w[:, None] * pixels + cx[:, None])[:, None, :].expand(B, image_size, image_size)
    gy = (h[:, None] * pixels + cy[:, None])[:, :, None].expand(B, image_size, image_size)
    grid = torch.stack([gx, gy], dim=-1)  # [B, S, S, 2] in (x, y) order
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    scale, shift = _uint8_to_normalised(dev)
    return torch.addcmul(shift, out, scale)  # [B, 1 or 3, S, S] -> [B, 3, S, S]

"""`debug.save_debug_masks=true` (variant=gated): what the gates keep, and how alike the tokens
the gate head reads are. Called by the trainer on rank 0 at every log step.

  save_dir/debug_masks/step_XXXXXXXX_orig.png     first <= 8 images of the batch
  save_dir/debug_masks/step_XXXXXXXX_masked.png   the same with closed patches (eval gate z < 0.5) blacked out
  save_dir/debug_ssim/step_XXXXXXXX_token_ssim.pt   [N, N] token SSIM of the gate head's input, image 0
  save_dir/debug_ssim/step_XXXXXXXX_token_ssim.png  its heatmap
"""
from __future__ import annotations

import os

import torch

from ..data.augment import MEAN, STD
from .plots import heatmap

MAX_IMAGES = 8


def token_ssim(tokens: torch.Tensor, c1: float = 1e-4, c2: float = 9e-4) -> torch.Tensor:
    """SSIM between every pair of tokens, over the feature dimension. tokens [N, D] -> [N, N] in [-1, 1].

    With mu_i, sigma_i^2 the mean and variance of token i's D features and cov_ij their covariance:
    ssim_ij = (2 mu_i mu_j + c1)(2 cov_ij + c2) / ((mu_i^2 + mu_j^2 + c1)(sigma_i^2 + sigma_j^2 + c2))
    (Wang et al. 2004, Eq. 13, applied to feature vectors instead of image windows).
    """
    x = tokens.double()
    mu = x.mean(dim=1)  # [N]
    xc = x - mu[:, None]
    var = xc.pow(2).mean(dim=1)  # [N]
    cov = xc @ xc.T / x.shape[1]  # [N, N]
    num = (2 * mu[:, None] * mu[None, :] + c1) * (2 * cov + c2)
    den = (mu[:, None] ** 2 + mu[None, :] ** 2 + c1) * (var[:, None] + var[None, :] + c2)
    return (num / den).clamp(-1.0, 1.0).float()


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """Normalised [B, 3, H, W] (data.augment's MEAN/STD) -> pixels in [0, 1]."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() * std + mean).clamp(0.0, 1.0)


def blank_closed(pixels: torch.Tensor, closed: torch.Tensor) -> torch.Tensor:
    """pixels [B, 3, S, S], closed [B, g, g] bool -> pixels with every closed patch set to 0."""
    patch = pixels.shape[-1] // closed.shape[-1]
    keep = (~closed).repeat_interleave(patch, dim=1).repeat_interleave(patch, dim=2)  # [B, S, S]
    return pixels * keep[:, None].to(pixels.dtype)


@torch.no_grad()
def save_debug_outputs(model, images: torch.Tensor, save_dir: str, step: int) -> dict[str, str]:
    """model: a GatedIJEPA (unwrapped); images: the normalised batch [B, 3, S, S]. Returns the paths."""
    from torchvision.utils import save_image

    was_training = model.training
    model.eval()  # deterministic gates
    try:
        x = images[:MAX_IMAGES]
        out = model.encode(x)
    finally:
        model.train(was_training)
    grid = model.encoder.config.grid
    closed = (out.z < 0.5).view(-1, grid, grid)
    pixels = unnormalize(x)
    masks_dir, ssim_dir = os.path.join(save_dir, "debug_masks"), os.path.join(save_dir, "debug_ssim")
    os.makedirs(masks_dir, exist_ok=True)
    os.makedirs(ssim_dir, exist_ok=True)
    stem = f"step_{step:08d}"
    paths = {"orig": os.path.join(masks_dir, f"{stem}_orig.png"),
             "masked": os.path.join(masks_dir, f"{stem}_masked.png"),
             "ssim_pt": os.path.join(ssim_dir, f"{stem}_token_ssim.pt"),
             "ssim_png": os.path.join(ssim_dir, f"{stem}_token_ssim.png")}
    save_image(pixels.cpu(), paths["orig"], nrow=len(x), padding=1)
    save_image(blank_closed(pixels, closed).cpu(), paths["masked"], nrow=len(x), padding=1)
    ssim = token_ssim(out.gate_input[0]).cpu()
    torch.save(ssim, paths["ssim_pt"])
    where = "final tokens" if model.gate_layer_index is None else \
        f"block {model.gate_layer_index}, {model.gate_location}"
    heatmap(ssim.numpy(), paths["ssim_png"], f"Token SSIM of the gate input ({where}), step {step}", "SSIM",
            vmin=-1.0, vmax=1.0, xlabel="token", ylabel="token")
    return paths

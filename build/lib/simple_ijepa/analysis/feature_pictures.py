"""Feature pictures of an encoder: PCA colour maps of its patch tokens and nearest-neighbour grids
(the command: simple_ijepa/cli/visualize.py).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..analysis.debug_outputs import unnormalize
from ..data import eval_transform
from ..data.datasets import UNREADABLE
from ..evaluation.features import extract_features, subset_indices
from ..evaluation.knn import centred_unit
from ..models.gated_ijepa import GatedIJEPA

PANEL_INCHES, DPI = 1.25, 100


# --- features ------------------------------------------------------------------------------------
def pca_rgb(tokens: torch.Tensor) -> torch.Tensor:
    """Patch tokens [B, N, D] -> colours [B, N, 3] in [0, 1]: the first 3 principal components of
    all B * N tokens together, each min-max scaled over them (a component beyond the rank is 0)."""
    B, N, D = tokens.shape
    x = tokens.reshape(B * N, D).double().cpu()
    x = x - x.mean(dim=0)
    components = x @ torch.linalg.svd(x, full_matrices=False).Vh[:3].T  # [B * N, <= 3]
    lo, hi = components.min(dim=0).values, components.max(dim=0).values
    rgb = (components - lo) / (hi - lo).clamp_min(1e-12)
    return F.pad(rgb, (0, 3 - rgb.shape[1])).float().reshape(B, N, 3)


@torch.no_grad()
def tokens_and_gates(net, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """images [B, 3, S, S] -> (patch tokens [B, N, D], gates [B, N] or None): an encoder's tokens,
    or a GatedIJEPA student's encoder features with its gates."""
    if isinstance(net, GatedIJEPA):
        out = net.encode(images)
        return out.features, out.z
    return net(images), None


def retrieval_fn(net):
    """images [B, 3, S, S] -> what the probe pools: an encoder's tokens [B, N, D], or a GatedIJEPA's
    gate-weighted mean [B, D]."""
    return net.probe_feature_fns()["gated"] if isinstance(net, GatedIJEPA) else net


def load_images(dataset, indices: np.ndarray, image_size: int, device) -> tuple[torch.Tensor, np.ndarray]:
    """(normalised images [B, 3, S, S] on `device`, labels [B]) of dataset[indices]."""
    images, labels = dataset.__getitems__(np.asarray(indices).tolist())
    return eval_transform(images.to(device), image_size), labels.numpy()


def nearest(bank_x: np.ndarray, query_x: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities [m, k'], bank rows [m, k']) of each query's k' = min(k, n) most similar bank
    rows; features [n, D] / [m, D], compared as `knn_accuracy` compares them."""
    bank, queries = centred_unit(bank_x, query_x)
    return (queries @ bank.T).topk(min(k, len(bank)), dim=1)


def gated_pixels(pixels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """pixels [3, S, S] in [0, 1], gates z [N] of its g x g patches -> [S, S, 3], each patch's
    pixels times its gate."""
    grid = int(round(len(z) ** 0.5))
    patch = pixels.shape[-1] // grid
    weight = z.view(grid, grid).repeat_interleave(patch, dim=0).repeat_interleave(patch, dim=1)
    return (pixels * weight).permute(1, 2, 0)


# --- pictures ------------------------------------------------------------------------------------
def panel_grid(rows: int, cols: int, title: str) -> tuple[Figure, np.ndarray]:
    """A figure of rows x cols square panels without axes (Agg canvas), and its axes [rows, cols]."""
    fig = Figure(figsize=(cols * PANEL_INCHES, rows * PANEL_INCHES), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=8)
    return fig, axes


def show(ax, picture: torch.Tensor, title: str = "", color: str = "black") -> None:
    """picture: [H, W, 3] in [0, 1] (pixels or PCA colours), drawn without smoothing."""
    ax.imshow(picture.numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=7, color=color)


def pca_picture(net, dataset, image_size: int, num_images: int, seed: int, device, path: str) -> None:
    """Write pca_features.png (see the module docstring) for `num_images` seeded test images."""
    x, labels = load_images(dataset, subset_indices(len(dataset), num_images, seed), image_size, device)
    tokens, z = tokens_and_gates(net, x)
    rgb, pixels = pca_rgb(tokens), unnormalize(x).cpu()
    n, grid = len(x), int(round(tokens.shape[1] ** 0.5))
    fig, axes = panel_grid(2 if z is None else 3, n, "input; first 3 principal components of the patch tokens"
                           + ("" if z is None else "; pixels times gates"))
    for i in range(n):
        show(axes[0, i], pixels[i].permute(1, 2, 0), f"label {labels[i]}")
        show(axes[1, i], rgb[i].view(grid, grid, 3))
        if z is not None:
            gates = z[i].float().cpu()
            show(axes[2, i], gated_pixels(pixels[i], gates),
                 f"{int((gates > 0).sum())}/{len(gates)} open, z {gates.mean():.2f}")
    fig.savefig(path, dpi=DPI)


def retrieval_picture(net, train_set, test_set, image_size: int, num_queries: int, k: int,
                      max_train_samples: int, batch_size: int, seed: int, device, path: str) -> None:
    """Write retrieval.png (see the module docstring)."""
    kw = dict(image_size=image_size, device=device, batch_size=batch_size, seed=seed)
    bank_x, bank_y = extract_features(retrieval_fn(net), train_set, max_samples=max_train_samples, **kw)
    query_x, query_y = extract_features(retrieval_fn(net), test_set, max_samples=num_queries, **kw)
    readable = bank_y != UNREADABLE
    bank_index = subset_indices(len(train_set), max_train_samples, seed)[readable]
    sims, rows = nearest(bank_x[readable], query_x, k)
    found_y = bank_y[readable][rows.numpy()]  # [m, k']
    queries = unnormalize(load_images(test_set, subset_indices(len(test_set), num_queries, seed),
                                      image_size, device)[0]).permute(0, 2, 3, 1).cpu()
    found = unnormalize(load_images(train_set, bank_index[rows.flatten().numpy()], image_size, device)[0])
    found = found.permute(0, 2, 3, 1).cpu().view(*rows.shape, *queries.shape[1:])  # [m, k', S, S, 3]
    fig, axes = panel_grid(len(queries), 1 + rows.shape[1],
                           f"test images and their {rows.shape[1]} nearest of {len(bank_index)} train images (cosine)")
    for q in range(len(queries)):
        show(axes[q, 0], queries[q], f"query: label {query_y[q]}")
        for j in range(rows.shape[1]):
            show(axes[q, 1 + j], found[q, j], f"label {found_y[q, j]} ({sims[q, j]:.2f})",
                 "tab:green" if found_y[q, j] == query_y[q] else "tab:red")
    fig.savefig(path, dpi=DPI)

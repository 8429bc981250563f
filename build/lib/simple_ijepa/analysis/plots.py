"""Small matplotlib figures written straight to PNG files (Agg canvas; pyplot and the global
backend are never touched, so this works on headless machines and inside notebooks alike)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def _save(fig: Figure, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def heatmap(values, path: str, title: str, label: str, vmin: float | None = None, vmax: float | None = None,
            xlabel: str = "", ylabel: str = "") -> None:
    """A 2-D array [H, W] as an image with a colour bar."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    im = ax.imshow(np.asarray(values), vmin=vmin, vmax=vmax, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    _save(fig, path)


def histogram(values, path: str, title: str, xlabel: str, bins: int = 30) -> None:
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.hist(np.asarray(values), bins=bins, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    ax.set(title=title, xlabel=xlabel, ylabel="images")
    _save(fig, path)


def bars(names: list[str], means, stds, path: str, title: str, ylabel: str) -> None:
    """One bar per name with a +-1 std error bar."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.bar(names, means, yerr=stds, capsize=6, color=["tab:blue", "tab:orange", "tab:green"][:len(names)])
    ax.set(title=title, ylabel=ylabel)
    _save(fig, path)

"""One consistent look for every figure in the course.

- :func:`image_grid`: a grid of images (samples, reconstructions); notebook 00 first.
- :func:`plot_curves`: loss and metric curves against steps (training sections).
- :func:`scatter_2d` and :func:`density_2d`: 2-D toy data and model densities (01, 02).
- :func:`roc_curves`: how well anomaly scores separate normal from anomalous items (03).
- :func:`box_chain`: a model drawn as a chain of boxes, with one input from below (03).
- :func:`loss_terms`: a VAE's reconstruction and KL terms during training, side by side (03).

Every function draws on an ``ax`` if given, else makes a figure, and returns
the ``Axes`` it drew on, so notebooks can add titles and tests can count axes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torchvision.utils import make_grid

STYLE = {
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": "medium",
    "image.cmap": "gray",
}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def set_style() -> None:
    """Apply the course's matplotlib style (each notebook calls it once)."""
    plt.rcParams.update(STYLE)


def _axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> plt.Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _to_numpy_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, float)
    if arr.ndim == 3:  # N, H, W
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W] or [N, C, H, W] with C in (1, 3); got shape {arr.shape}")
    return arr


def image_grid(
    images: torch.Tensor | np.ndarray, nrow: int = 8, title: str | None = None,
    ax: plt.Axes | None = None, value_range: tuple[float, float] = (0.0, 1.0),
    labels: Sequence[str] | None = None,
) -> plt.Axes:
    """Show images as a grid (values clipped to ``value_range``, e.g. (-1, 1) for tanh outputs).

    ``labels`` (one per row of the grid) are written down the left side.
    """
    lo, hi = value_range
    arr = np.clip((_to_numpy_images(images) - lo) / (hi - lo), 0.0, 1.0)
    if len(arr) == 0:
        raise ValueError("image_grid needs at least one image")
    grid = make_grid(torch.from_numpy(arr), nrow=nrow, padding=2, pad_value=1.0).permute(1, 2, 0).numpy()
    ncol = min(nrow, len(arr))
    ax = _axes(ax, (min(1.0 * ncol, 12), min(1.0 * -(-len(arr) // ncol), 12)))
    ax.imshow(grid[..., 0] if arr.shape[1] == 1 else grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if labels is not None:
        h = arr.shape[2] + 2
        ax.set_yticks([2 + h * i + arr.shape[2] / 2 for i in range(len(labels))], labels=list(labels))
    if title:
        ax.set_title(title)
    return ax


def plot_curves(
    curves: Mapping[str, Sequence[float]], steps: Mapping[str, Sequence[float]] | Sequence[float] | None = None,
    xlabel: str = "step", ylabel: str = "loss", title: str | None = None, ax: plt.Axes | None = None,
    logy: bool = False, smooth: int = 1,
) -> plt.Axes:
    """Plot named curves (e.g. ``{"train": [...], "val": [...]}``) on one axes.

    ``steps`` gives the x values, shared or per curve; ``smooth`` is a moving-average window.
    """
    ax = _axes(ax, (6, 3.5))
    for i, (name, values) in enumerate(curves.items()):
        y = np.asarray(values, dtype=float)
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        if steps is None:
            x = np.arange(len(y))
        else:
            x_all = np.asarray(steps[name] if isinstance(steps, Mapping) else steps, dtype=float)
            x = x_all[len(x_all) - len(y):]
        ax.plot(x, y, label=name, color=COLORS[i % len(COLORS)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if curves:
        ax.legend()
    return ax


def scatter_2d(
    points: torch.Tensor | np.ndarray, ax: plt.Axes | None = None, label: str | None = None,
    color: str | None = None, s: float = 4.0, alpha: float = 0.5, title: str | None = None,
) -> plt.Axes:
    """Scatter ``[N, 2]`` points with equal axis scales."""
    pts = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape [N, 2], got {pts.shape}")
    ax = _axes(ax, (4.5, 4.5))
    ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, label=label, color=color)
    ax.set_aspect("equal", adjustable="datalim")
    if label:
        ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def density_2d(
    log_density: Callable[[torch.Tensor], torch.Tensor], xlim: tuple[float, float], ylim: tuple[float, float],
    ax: plt.Axes | None = None, resolution: int = 150, filled: bool = True, levels: int | Sequence[float] = 12,
    title: str | None = None,
) -> plt.Axes:
    """Contours of a density given as a function from ``[M, 2]`` points to ``[M]`` log-densities.

    ``levels`` is a number of levels (scaled to this plot) or the level values themselves (a fixed scale).
    """
    xs = torch.linspace(*xlim, resolution)
    ys = torch.linspace(*ylim, resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    with torch.no_grad():
        dens = log_density(grid).exp().reshape(resolution, resolution).cpu().numpy()
    ax = _axes(ax, (4.5, 4.5))
    draw = ax.contourf if filled else ax.contour
    draw(gx.numpy(), gy.numpy(), dens, levels=levels, cmap="viridis")
    ax.set_aspect("equal", adjustable="box")
    if title:
        ax.set_title(title)
    return ax


def roc_curves(
    scores: Mapping[str, tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]], ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Axes:
    """ROC curves of named scores, each ``(normal, anomalous)`` and meant to be **higher** for anomalies.

    One curve per score: the share of anomalies flagged (true-positive rate) against the share of
    normal items flagged (false-positive rate) as the threshold falls; its AUROC is in the legend,
    and the diagonal is chance.
    """
    ax = _axes(ax, (4.5, 4.5))
    for i, (name, (normal, anomalous)) in enumerate(scores.items()):
        normal, anomalous = (torch.as_tensor(s).detach().double().cpu().flatten().numpy() for s in (normal, anomalous))
        labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
        values = np.r_[normal, anomalous]
        fpr, tpr, _ = roc_curve(labels, values)
        ax.plot(fpr, tpr, color=COLORS[i % len(COLORS)], label=f"{name}: AUROC {roc_auc_score(labels, values):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false-positive rate (normal items flagged)",
           ylabel="true-positive rate (anomalies flagged)")
    ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def box_chain(
    labels: Sequence[str], below: tuple[str, int] | None = None, ax: plt.Axes | None = None, gap: float = 2.2,
) -> plt.Axes:
    """Boxes with arrows from each to the next; ``below = (label, i)`` adds a grey box feeding box ``i`` from below."""
    ax = _axes(ax, (12, 2))
    white = {"boxstyle": "round", "fc": "white"}
    boxes = [ax.text(gap * i, 1, label, ha="center", va="center", fontsize=11, bbox=white)
             for i, label in enumerate(labels)]
    pairs = list(zip(boxes[:-1], boxes[1:], strict=True))
    if below is not None:
        label, target = below
        extra = ax.text(gap * target, 0, label, ha="center", va="center", fontsize=11,
                        bbox={"boxstyle": "round", "fc": "0.9"})
        pairs.append((extra, boxes[target]))
    for a, b in pairs:
        ax.annotate("", xy=(0.5, 0.5), xycoords=b, xytext=(0.5, 0.5), textcoords=a,
                    arrowprops={"arrowstyle": "->", "patchA": a.get_bbox_patch(), "patchB": b.get_bbox_patch()})
    ax.set(xlim=(-0.7, gap * (len(labels) - 1) + 0.9), ylim=(-0.5, 1.5))
    ax.axis("off")
    return ax


def loss_terms(
    train: Mapping[str, Sequence[float]], test: Mapping[str, Sequence[float]] | None, title: str,
    steps_per_epoch: float, smooth: int = 1, recon_top: float | None = None, label: str = "training batches",
) -> np.ndarray:
    """Two axes: a VAE's reconstruction term (``train["recon"]``) and KL term (``train["kl"]``) against epochs.

    ``train`` holds one record per step, ``steps_per_epoch`` of them an epoch (above 1: the first 100 are
    also drawn raw, faint); ``test``, if given, adds its ``"epoch"``, ``"recon"`` and ``"kl"`` as points;
    ``recon_top`` cuts the reconstruction axis there, to show a slower fall. Returns the two axes.
    """
    _, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    for ax, term in zip(axes, ("recon", "kl"), strict=True):
        x = [(i + 1) / steps_per_epoch for i in range(len(train[term]))]
        plot_curves({label: train[term]}, steps=x, ax=ax, smooth=smooth, xlabel="epoch", ylabel="nats per image")
        if steps_per_epoch > 1:
            ax.plot(x[:100], train[term][:100], color=COLORS[0], alpha=0.3, lw=0.8, label="first 100 batches, raw")
        if test is not None:
            ax.plot(test["epoch"], test[term], "o-", color=COLORS[1], label="test images")
        ax.legend()
        ax.set(title=f"{title}: {'reconstruction' if term == 'recon' else 'KL'}",
               ylim=(None, recon_top if term == "recon" else None))
    return axes

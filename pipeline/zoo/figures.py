"""The zoo report's combined figures. Each function returns a matplotlib Figure (save with utils.save_figure)."""

from __future__ import annotations

import math

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline.reporting.digits import digit_rows
from pipeline.reporting.figures import subplots

STYLE = "whitegrid"


def codes_2d(panels: list[tuple[str, np.ndarray, tuple[str, str]]], labels: np.ndarray) -> Figure:
    """One scatter per (title, (n, 2) codes, axis names), points coloured by digit, one shared legend."""
    colors = sns.color_palette("tab10", 10)
    with sns.axes_style(STYLE):
        fig, axes = subplots(1, len(panels), (4.2 * len(panels) + 1.2, 4.4))
        for ax, (title, codes, (xlabel, ylabel)) in zip(axes[0], panels, strict=True):
            for digit in range(10):
                pts = codes[labels == digit]
                ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.5, color=colors[digit], label=str(digit), rasterized=True)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, title="digit", loc="center right", markerscale=4, frameon=False)
        fig.suptitle("2-D codes of the test digits, coloured by digit")
        fig.tight_layout(rect=(0, 0, 1 - 0.9 / fig.get_figwidth(), 1))
    return fig


def image_rows(rows: list[np.ndarray], labels: list[str], title: str) -> Figure:
    """Rows of digits (each (n, 784) in [0, 1]), one label per row."""
    return digit_rows([np.clip(r, 0, 1) for r in rows], labels, title)


def loss_curves(histories: dict[str, dict[str, list[float]]], ncols: int = 4) -> Figure:
    """Train and validation loss per epoch, one panel per variant (losses differ in kind and scale)."""
    n = len(histories)
    nrows = max(1, math.ceil(n / ncols))
    with sns.axes_style(STYLE):
        fig, axes = subplots(nrows, ncols, (3.4 * ncols, 2.7 * nrows + 0.6))
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        for ax, (title, history) in zip(axes.flat, histories.items(), strict=False):
            for key, label in (("train_loss", "train"), ("valid_loss", "validation")):
                values = history.get(key, [])
                ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 12 else None, ms=3, label=label)
            ax.set_title(title, fontsize=10)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss per image")
            ax.legend(fontsize=8)
        fig.suptitle("Training and validation loss (each variant's own objective, penalties included)")
        fig.tight_layout()
    return fig


def sparsity_histograms(pairs: list[tuple[str, np.ndarray, str, np.ndarray]], near_zero: float) -> Figure:
    """Per pair, histograms of the hidden activations of a regularised net and of its reference net."""
    colors = sns.color_palette("deep", 2)
    ncols = min(3, max(1, len(pairs)))
    nrows = max(1, math.ceil(len(pairs) / ncols))
    with sns.axes_style(STYLE):
        fig, axes = subplots(nrows, ncols, (4.4 * ncols, 3.2 * nrows + 0.6))
        for ax in axes.flat[len(pairs) :]:
            ax.set_visible(False)
        for ax, (title, h, ref_title, h_ref) in zip(axes.flat, pairs, strict=False):
            top = max(float(np.quantile(h, 0.999)), float(np.quantile(h_ref, 0.999)), 2 * near_zero)
            bins = np.linspace(0, top, 50)
            for k, (values, label) in enumerate(((h_ref, ref_title), (h, title))):
                ax.hist(
                    np.clip(values, 0, top),
                    bins=bins,
                    alpha=0.55,
                    color=colors[k],
                    label=f"{label} (mean {values.mean():.3g})",
                )
            ax.axvline(near_zero, color="k", ls=":", lw=1, label=f"near zero (< {near_zero:g})")
            ax.set_yscale("log")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("|activation| of the first hidden layer")
            ax.set_ylabel("count (test digits x units)")
            ax.legend(fontsize=7)
        if not pairs:
            axes[0, 0].text(0.5, 0.5, "no variant names a reference", ha="center", va="center")
        fig.suptitle("Hidden activations: each regularised net against the same net without the regulariser")
        fig.tight_layout()
    return fig


def tile(images: np.ndarray, ncols: int) -> np.ndarray:
    """(n, 784) images as one (rows*28, ncols*28) array."""
    n = len(images)
    nrows = math.ceil(n / ncols)
    canvas = np.ones((nrows * 28, ncols * 28))
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = 1 - img.reshape(28, 28)
    return canvas


def vae_figure(manifold: np.ndarray | None, grid: np.ndarray, samples: np.ndarray, title: str) -> Figure:
    """Left: decoded grid over the 2-D latent (rows top to bottom: z2 high to low). Right: prior samples."""
    fig, axes = subplots(1, 2, (12, 6.2))
    left, right = axes[0]
    if manifold is not None:
        g = len(grid)
        left.imshow(tile(manifold, g), cmap="gray", vmin=0, vmax=1, extent=(0, g, 0, g))
        shown = np.unique(np.linspace(0, g - 1, min(g, 5)).round().astype(int))
        names = [f"{grid[i] + 0.0:.2f}".replace("-0.00", "0.00") for i in shown]
        left.set_xticks(shown + 0.5, names)
        left.set_yticks(shown + 0.5, names)
        left.set_xlabel("z1 (Gaussian quantiles)")
        left.set_ylabel("z2 (Gaussian quantiles)")
        left.set_title("latent manifold: decoded grid over z")
    else:
        left.text(0.5, 0.5, "latent is not 2-D: no manifold", ha="center", va="center")
        left.set_axis_off()
    ncols = math.ceil(math.sqrt(len(samples)))
    right.imshow(tile(samples, ncols), cmap="gray", vmin=0, vmax=1)
    right.set_xticks([])
    right.set_yticks([])
    right.set_title(f"{len(samples)} samples: decoded z ~ N(0, I)")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def placeholder(text: str) -> Figure:
    fig, axes = subplots(1, 1, (6, 2))
    axes[0, 0].text(0.5, 0.5, text, ha="center", va="center")
    axes[0, 0].set_axis_off()
    return fig

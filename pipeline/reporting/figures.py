"""Report figures. Each function returns a matplotlib Figure; save it with utils.save_figure."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pipeline.evaluation.rates import as_numpy, error_ci95
from pipeline.reporting.tables import PAPER_MODELS, PROBE_NAMES, ordered

STYLE = "whitegrid"


def subplots(nrows: int, ncols: int, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, np.ndarray]:
    """Like plt.subplots (always a 2-d axes array), but without pyplot: the figure renders with Agg on
    savefig, needs no display, and is not kept alive by pyplot's figure registry."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def ours_vs_paper(table: pd.DataFrame) -> Figure:
    """Grouped bars (ours vs paper) per model with 95% error bars; one panel per dataset."""
    datasets = list(dict.fromkeys(table["dataset"]))
    colors = sns.color_palette("deep", 2)
    with sns.axes_style(STYLE):
        fig, axes = subplots(1, len(datasets), (1.4 + 1.3 * table["model"].nunique(), 4))
        for ax, dataset in zip(axes[0], datasets, strict=True):
            t = table[table["dataset"] == dataset]
            models = ordered(list(t["model"]), list(PAPER_MODELS))
            t = t.set_index("model").loc[models]
            x = np.arange(len(models))
            for k, (label, err, ci) in enumerate(
                [("ours", "error_pct", "ci95_pct"), ("paper", "paper_error_pct", "paper_ci95_pct")]
            ):
                ax.bar(
                    x + (k - 0.5) * 0.38,
                    t[err],
                    width=0.38,
                    yerr=t[ci],
                    capsize=3,
                    color=colors[k],
                    label=label,
                )
            ax.set_xticks(x, models, rotation=30, ha="right")
            ax.set_title(f"MNIST-{dataset}" if dataset == "basic" else dataset)
            ax.set_ylabel("test error (%)")
            ax.legend()
        fig.tight_layout()
    return fig


def tile_filters(w: Any, n: int = 100, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """The first n rows of w as images in a square-ish grid, each scaled to [0, 1] on its own."""
    w = as_numpy(w, np.float64)[:n]
    lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
    w = (w - lo) / np.maximum(hi - lo, 1e-12)
    cols = math.ceil(math.sqrt(len(w)))
    rows = math.ceil(len(w) / cols)
    h, wd = shape
    # 1-pixel dark border between tiles, as in the LISA tile_raster_images
    out = np.zeros((rows * (h + 1) + 1, cols * (wd + 1) + 1))
    for i, f in enumerate(w):
        r, c = divmod(i, cols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (wd + 1) : 1 + c * (wd + 1) + wd] = f.reshape(shape)
    return out


def filter_grid(weights_list: list[Any], titles: list[str], n: int = 100) -> Figure:
    """First-layer filters (rows of W, shape (n_hidden, 784)) side by side, e.g. for 0/25/50% noise."""
    fig, axes = subplots(1, len(weights_list), (4 * len(weights_list), 4.3))
    for ax, w, title in zip(axes[0], weights_list, titles, strict=True):
        ax.imshow(tile_filters(w, n), cmap="gray", interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def corrupted_and_reconstructed(clean: Any, corrupted: Any, reconstructed: Any, n: int = 10) -> Figure:
    """Three rows of digits: clean input, corrupted input, reconstruction from the corrupted input."""
    rows = [("clean", clean), ("corrupted", corrupted), ("reconstructed", reconstructed)]
    fig, axes = subplots(3, n, (1.1 * n, 3.6))
    for r, (name, images) in enumerate(rows):
        images = as_numpy(images, np.float64)[:n].reshape(-1, 28, 28)
        for c in range(n):
            ax = axes[r, c]
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, dict[str, list[float]]]) -> Figure:
    """One panel per metric (e.g. train_loss, valid_error), one line per model, against epoch."""
    metrics = list(dict.fromkeys(m for h in histories.values() for m in h))
    colors = dict(zip(histories, sns.color_palette("deep", len(histories)), strict=True))
    with sns.axes_style(STYLE):
        fig, axes = subplots(1, len(metrics), (4.5 * len(metrics), 3.6))
        for ax, metric in zip(axes[0], metrics, strict=True):
            for name, history in histories.items():
                if metric in history and len(history[metric]):
                    values = history[metric]
                    ax.plot(np.arange(1, len(values) + 1), values, label=name, color=colors[name])
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric.replace("_", " "))
            ax.set_title(metric.replace("_", " "))
            ax.legend()
        fig.tight_layout()
    return fig


def pretrain_curves(curves: dict[str, list[dict[str, list[float]]]], metric: str = "valid_loss") -> Figure:
    """One panel per model, one line per layer (the layer's `metric` against its epochs), legend beside."""
    models = list(curves)
    ncols = min(3, len(models))
    nrows = math.ceil(len(models) / ncols)
    depth = max(len(layers) for layers in curves.values())
    colors = sns.color_palette("deep", depth)
    with sns.axes_style(STYLE):
        fig, axes = subplots(nrows, ncols, (4.0 * ncols + 1.2, 3.2 * nrows))
        for ax in axes.flat[len(models) :]:
            ax.set_visible(False)
        for ax, model in zip(axes.flat, models, strict=False):
            for k, history in enumerate(curves[model]):
                values = history.get(metric, [])
                ax.plot(np.arange(1, len(values) + 1), values, color=colors[k], label=f"layer {k + 1}")
            ax.set_title(model)
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric.replace("_", " "))
        handles = [Line2D([], [], color=colors[k], label=f"layer {k + 1}") for k in range(depth)]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        fig.suptitle(f"Pretraining: {metric.replace('_', ' ')} per layer (first candidate of each model)")
        fig.tight_layout()
    return fig


def probe_plot(probe_records: list[dict[str, Any]]) -> Figure:
    """Test error (% ±95%) of each probe on each layer's frozen features; one panel per probe."""
    df = pd.DataFrame(probe_records)
    df["error_pct"] = 100 * df["test_error"]
    df["ci95_pct"] = [100 * error_ci95(p, n) for p, n in zip(df["test_error"], df["n_test"], strict=True)]
    probes = ordered([*PROBE_NAMES, *df["probe"]], list(PROBE_NAMES))
    probes = [p for p in probes if (df["probe"] == p).any()]
    models = list(dict.fromkeys(df["model"]))
    colors = dict(zip(models, sns.color_palette("deep", len(models)), strict=True))
    with sns.axes_style(STYLE):
        fig, axes = subplots(1, len(probes), (4.5 * len(probes), 3.6), sharey=True)
        for ax, probe in zip(axes[0], probes, strict=True):
            for model in models:
                t = df[(df["probe"] == probe) & (df["model"] == model)].sort_values("layer")
                if len(t):
                    ax.errorbar(
                        t["layer"],
                        t["error_pct"],
                        yerr=t["ci95_pct"],
                        marker="o",
                        capsize=3,
                        label=model,
                        color=colors[model],
                    )
            ax.set_xticks(sorted(df["layer"].unique()))
            ax.set_xlabel("layer")
            ax.set_ylabel("test error (%)")
            ax.set_title(f"{PROBE_NAMES.get(probe, probe)} on frozen features")
            ax.legend()
        fig.tight_layout()
    return fig

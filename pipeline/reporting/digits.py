"""Digit-grid figures shared by the stages (sample digits, clean vs corrupted rows)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def digit_rows(
    rows: list[np.ndarray], row_labels: list[str], title: str, col_labels: list[str] | None = None, cmap: str = "gray_r"
) -> Figure:
    """One row of 28x28 images per entry of `rows` (each an (n, 784) array in [0, 1] or uint8).

    The default draws ink dark on white, as digits are usually shown; cmap="gray" shows pixel values as they are,
    each image in a gray frame, so that a white region reaching the border does not merge with the white page
    (a convex image's white region would look like the background).
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(0.9 * n_cols + 1.6, 0.95 * n_rows + 0.6), squeeze=False)
    for i, (images, label) in enumerate(zip(rows, row_labels, strict=True)):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(cmap == "gray" and j < len(images))
                spine.set_edgecolor("0.55")
            if j < len(images):
                vmax = 255 if images.dtype == np.uint8 else 1.0
                ax.imshow(images[j].reshape(28, 28), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=8)
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def samples_figure(x: np.ndarray, y: np.ndarray, per_class: int, title: str, cmap: str = "gray_r") -> Figure:
    """`per_class` images of each class present in `y`, one row per class."""
    classes = np.unique(y)
    rows = [x[np.flatnonzero(y == c)[:per_class]] for c in classes]
    return digit_rows(rows, [str(c) for c in classes], title, cmap=cmap)

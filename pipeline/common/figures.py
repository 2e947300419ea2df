"""Figures as files: a matplotlib figure saved atomically and byte-stably (no timestamp, no software tag)."""

from __future__ import annotations

import os
from typing import Any

from pipeline.common.io import atomic_path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)

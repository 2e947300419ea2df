"""What the benchmark scripts share: the float32 matmul peak, device sync, best-of timing and MNIST from its raw files."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
D = 784


def default_raw_dir() -> str:
    """$MNIST_RAW_DIR, else ../shared/data/MNIST/raw next to the repository (the data mirror of params.yaml)."""
    return os.environ.get("MNIST_RAW_DIR", str(ROOT.parent / "shared/data/MNIST/raw"))


def _idx(path: Path, header: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def _raw_file(raw_dir: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (raw_dir / name).is_file():
            return raw_dir / name
    raise FileNotFoundError(f"no {stem}[.gz] in {raw_dir} (set --raw-dir or MNIST_RAW_DIR)")


def load_mnist(n: int, raw_dir: str | Path, labels: bool = False):
    """The first n MNIST training images as float32 (n, 784) in [0, 1] (and their int64 labels when asked)."""
    raw_dir = Path(raw_dir)
    images = _idx(_raw_file(raw_dir, "train-images-idx3-ubyte"), 16).reshape(-1, D)
    if n > len(images):
        raise ValueError(f"asked for {n} images, MNIST's training set has {len(images)}")
    x = torch.from_numpy(images[:n].astype(np.float32) / 255.0)
    if not labels:
        return x
    y = torch.from_numpy(_idx(_raw_file(raw_dir, "train-labels-idx1-ubyte"), 8)[:n].astype(np.int64))
    return x, y


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, sizes=(2048, 4096), repeats: int = 5) -> float:
    """Best FLOP/s of torch.mm over square float32 products of the given sizes (TF32 as the backend is set)."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        out = torch.empty(n, n, device=device)
        torch.mm(a, b, out=out)
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def best_time(fn: Callable[[], object], device: torch.device, repeats: int = 2) -> float:
    """Best wall time of `repeats` calls of fn(), after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# Matmul FLOPs per epoch of n examples (2 * rows * in * out per product; element-wise work not counted).
def dae_flops(n: int, h: int, d: int = D) -> int:
    """TiedAEGroup.step: x~ W^T, H W, dA W^T and the two weight updates, five products of n * d * h."""
    return 10 * n * d * h


def rbm_flops(n: int, h: int, d: int = D) -> int:
    """RBMGroup.step (CD-1): P(h|v), the visible logits, P(h|v~) and the two weight updates, five products."""
    return 10 * n * d * h


def mlp_flops(n: int, h: int, d: int = D, classes: int = 10) -> int:
    """MLPGroup.step on d-h-h-h-classes: forward and weight gradients of every layer, deltas passed down
    to every layer but the input (6 n P - 2 n d h, P = dh + 2h^2 + 10h the weight count)."""
    weights = d * h + 2 * h * h + h * classes
    return 6 * n * weights - 2 * n * d * h

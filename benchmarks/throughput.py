"""Throughput of the pretraining code: the lean DAE layer against the matmul peak, RBM CD-1 against sklearn.

    python benchmarks/throughput.py [--n 10000] [--repeats 5] [--device auto]

DAE: one epoch of `pretrain_stack("dae", [784, 1000], ...)` (tied sigmoid, cross-entropy, masking noise
nu = 0.25, plain SGD, batch 128) on n MNIST images, i.e. the real training code path.  FLOPs counted:
the five matmuls per minibatch of m rows, 2 * m * d * h each (forward x~ W^T and H W; backward dA W^T,
H^T dA and dZ^T x~), so 10 * n * d * h per epoch; element-wise work, corruption and the small validation
pass are not counted but are inside the timed epoch.  The peak is the best float32 torch.mm rate over
large square products measured in the same run, before, between and after the DAE epochs.

RBM: one epoch of CD-1 through `pretrain_stack("rbm", [784, 1000], ...)` against sklearn's
`BernoulliRBM(n_components=1000, batch_size=128, n_iter=1)` on the same float32 data with the same
learning rate (`rbm_speedup_vs_sklearn`); for reference also against sklearn given float64 data.  Both do
the same five matmuls per minibatch, so no float32 implementation can beat sklearn by more than
sklearn's epoch time / (10 * n * d * h / peak).

Epoch times are the best of `--repeats` epochs (the machine may be shared; the 1-minute load average at
the start is reported).  The last line printed is a JSON object with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.training.layerwise import PretrainConfig, pretrain_stack  # noqa: E402
from pipeline.utils import get_device  # noqa: E402

D, H, BATCH = 784, 1000, 128


def load_mnist(n: int, raw_dir: Path) -> torch.Tensor:
    """The first n training images as float32 (n, 784) in [0, 1], read by torchvision from a copy."""
    import torchvision

    root = Path(tempfile.mkdtemp(prefix="mnist_root_"))
    try:
        (root / "MNIST" / "raw").mkdir(parents=True)
        for f in raw_dir.glob("*-ubyte.gz"):
            shutil.copy(f, root / "MNIST" / "raw" / f.name)
        ds = torchvision.datasets.MNIST(root=str(root), train=True, download=True)
        return ds.data[:n].reshape(n, D).to(torch.float32) / 255.0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, sizes=(2048, 4096), repeats: int = 5) -> float:
    """Best float32 FLOP/s of torch.mm over square products of the given sizes."""
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


def epoch_seconds(
    kind: str, x: torch.Tensor, config: PretrainConfig, device: torch.device, peaks: list[float] | None = None
) -> list[float]:
    """Wall time of each epoch after the first, from pretrain_stack's own per-epoch callback.

    With `peaks`, a matmul peak sample is taken between epochs (outside the timed spans), so that on a
    shared machine both are measured under the same conditions.
    """
    times: list[float] = []
    start = [time.perf_counter()]

    def on_epoch(layer, epoch, metrics):
        sync(device)
        times.append(time.perf_counter() - start[0])
        if peaks is not None:
            peaks.append(matmul_peak(device, sizes=(2048,), repeats=3))
        start[0] = time.perf_counter()

    pretrain_stack(kind, [D, H], x, x[:256], config, seed=0, on_epoch=on_epoch, progress=False, device=device)
    return times[1:]  # the first epoch also holds the set-up


def sklearn_rbm_seconds(x: np.ndarray, lr: float, repeats: int) -> list[float]:
    from sklearn.neural_network import BernoulliRBM

    times = []
    for r in range(repeats):
        rbm = BernoulliRBM(n_components=H, batch_size=BATCH, n_iter=1, learning_rate=lr, random_state=r)
        t0 = time.perf_counter()
        rbm.fit(x)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of MNIST training images")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per measurement (best is kept)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--raw-dir", default=os.environ.get("MNIST_RAW_DIR", "/work/shared/data/MNIST/raw"))
    args = parser.parse_args()
    device = get_device(args.device)
    x = load_mnist(args.n, Path(args.raw_dir))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = torch.get_num_threads()
    print(f"device={device} threads={threads} n={args.n} batch={BATCH} d={D} h={H} load={load:.2f}")

    peaks = [matmul_peak(device)]
    dae_config = PretrainConfig(
        epochs=args.repeats + 1, lr=0.1, batch_size=BATCH, noise_kind="masking", noise_level=0.25
    )
    dae_times = epoch_seconds("dae", x, dae_config, device, peaks)
    peaks.append(matmul_peak(device))
    peak = max(peaks)
    dae_seconds = min(dae_times)
    dae_flops = 10 * args.n * D * H
    dae_rate = dae_flops / dae_seconds
    print(
        f"DAE epoch: {[round(t, 3) for t in dae_times]} s, {dae_flops:.3e} FLOP, {dae_rate / 1e9:.1f} GFLOP/s"
    )
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s -> fraction {dae_rate / peak:.3f}")

    lr = 0.1
    rbm_config = PretrainConfig(epochs=args.repeats + 1, lr=lr, batch_size=BATCH, cd_k=1)
    rbm_times = epoch_seconds("rbm", x, rbm_config, device)
    sk_times = sklearn_rbm_seconds(x.numpy(), lr, args.repeats)
    # sklearn's other common case: float64 data (e.g. fetch_openml / 255), which it trains in float64
    sk64_seconds = min(sklearn_rbm_seconds(x.double().numpy(), lr, min(args.repeats, 2)))
    rbm_seconds, sk_seconds = min(rbm_times), min(sk_times)
    ours, theirs = [round(t, 3) for t in rbm_times], [round(t, 3) for t in sk_times]
    print(f"RBM CD-1 epoch: ours {ours} s, sklearn {theirs} s")
    print(f"RBM speed-up vs sklearn: {sk_seconds / rbm_seconds:.2f}x")

    result = {
        "device": str(device),
        "torch_threads": threads,
        "load_average_1min_at_start": round(load, 2),
        "n_examples": args.n,
        "batch_size": BATCH,
        "dae_epoch_seconds": round(dae_seconds, 4),
        "dae_flops_per_epoch": dae_flops,
        "dae_flops_per_second": round(dae_rate),
        "matmul_peak_flops_per_second": round(peak),
        "dae_peak_fraction": round(dae_rate / peak, 4),
        "rbm_epoch_seconds": round(rbm_seconds, 4),
        "sklearn_rbm_epoch_seconds": round(sk_seconds, 4),
        "rbm_speedup_vs_sklearn": round(sk_seconds / rbm_seconds, 3),
        "sklearn_float64_rbm_epoch_seconds": round(sk64_seconds, 4),
        "rbm_speedup_vs_sklearn_float64": round(sk64_seconds / rbm_seconds, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

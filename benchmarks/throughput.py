"""Throughput of one pretraining candidate: the DAE and RBM layer steps against the matmul peak, the RBM against sklearn.

    python benchmarks/throughput.py [--n 10000] [--repeats 3] [--hidden H] [--batch B] [--device auto] [--threads T]

Each epoch is what `pretrain_stacks` runs per candidate on a CPU (lockstep groups of one), without its
validation and checkpoints (benchmarks/overhead.py measures those): a permutation of n MNIST digits,
then per minibatch of vincent.pretrain.batch_size rows (--batch) one step of
- DAE: `TiedAEGroup` with K = 1, 784 -> vincent.pretrain.hidden[0] (--hidden), masking nu = 0.25 drawn per
  4096-row chunk; five matmuls of 2 * m * d * h FLOPs per minibatch of m rows (x~ W^T, H W, dA W^T and
  the two weight updates), so 10 * n * d * h per epoch;
- RBM: `RBMGroup` with K = 1, CD-1; also five matmuls (P(h|v), the visible logits, P(h|v~) and the two
  weight updates): 10 * n * d * h per epoch.
Element-wise work, sampling and masking are inside the timed epoch but not counted. The peak is the best
float32 torch.mm rate over large square products, measured before, between and after the epochs.

The DAE epoch is also timed with the masks drawn the two earlier ways, ranks = argsort of argsort (two sorts
per row) and one sort whose order is scattered into the mask, against `lowest_ranked` (a selection; sorts only
the rare rows whose scores tie at the boundary; the same masks): `masking_speedup`, `masking_speedup_vs_one_sort`.

The RBM epoch is also timed against sklearn's `BernoulliRBM(n_components=h, batch_size=B, n_iter=1)` with
the same learning rate on the same float32 data (`rbm_speedup_vs_sklearn`), and for reference given float64
data. sklearn draws the hidden sample with a second P(h|v) product (six matmuls per minibatch, not five).

Epoch times are the best of --repeats epochs after a warm-up (the machine may be shared; the 1-minute load
average at the start is printed). The last line printed is a JSON object with the results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    ROOT,
    best_time,
    dae_flops,
    default_raw_dir,
    load_average,
    load_mnist,
    matmul_peak,
    rbm_flops,
)
from benchmarks.lockstep import baseline_masks, dae_epoch, rbm_epoch  # noqa: E402
from pipeline.common.seeding import get_device  # noqa: E402
from pipeline.params import load_params  # noqa: E402

D = 784


def sklearn_rbm_seconds(x: np.ndarray, h: int, batch: int, lr: float, repeats: int, threads: int | None) -> float:
    """Best wall time of `repeats` one-epoch fits of sklearn's BernoulliRBM (its BLAS on `threads` threads if given)."""
    from contextlib import nullcontext

    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    best = float("inf")
    with threadpool_limits(threads, user_api="blas") if threads else nullcontext():
        for r in range(repeats):
            rbm = BernoulliRBM(n_components=h, batch_size=batch, n_iter=1, learning_rate=lr, random_state=r)
            t0 = time.perf_counter()
            rbm.fit(x)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="number of MNIST training images")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per measurement (best is kept)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden units (default: vincent.pretrain.hidden[0])")
    parser.add_argument("--batch", type=int, default=None, help="minibatch (default: vincent.pretrain.batch_size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--raw-dir", default=default_raw_dir(), help="MNIST raw folder (env MNIST_RAW_DIR)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch's and sklearn's BLAS threads (default: theirs)"
    )
    parser.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn comparison")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # a float32 peak and float32 steps
    v = load_params(args.params).vincent
    h = args.hidden or v.pretrain.hidden[0]
    batch = args.batch or v.pretrain.batch_size
    rbm_lr = next((s.lr[0] for s in v.stacks.values() if s.kind == "rbm"), 0.1)
    ae_lr = next((s.lr[0] for s in v.stacks.values() if s.kind == "ae"), 0.1)
    device = get_device(args.device)
    x = load_mnist(args.n, args.raw_dir)
    threads = torch.get_num_threads()
    load = load_average()
    print(f"device={device} threads={threads} n={args.n} batch={batch} d={D} h={h} load={load:.2f}")

    xd = x.to(device)
    peaks = [matmul_peak(device)]
    dae_seconds = best_time(dae_epoch(xd, 1, h, batch, device, lr=ae_lr, noise=0.25), device, args.repeats)
    baseline = {}
    for kind in ("ranks", "one_sort"):
        with baseline_masks(kind):
            baseline[kind] = best_time(dae_epoch(xd, 1, h, batch, device, lr=ae_lr, noise=0.25), device, args.repeats)
    peaks.append(matmul_peak(device))
    rbm_seconds = best_time(rbm_epoch(xd, 1, h, batch, device, lr=rbm_lr), device, args.repeats)
    peaks.append(matmul_peak(device))
    peak = max(peaks)
    dae_fl, rbm_fl = dae_flops(args.n, h), rbm_flops(args.n, h)
    dae_frac, rbm_frac = dae_fl / dae_seconds / peak, rbm_fl / rbm_seconds / peak
    print(f"matmul peak (float32): {peak / 1e9:.1f} GFLOP/s (samples {[round(p / 1e9, 1) for p in peaks]})")
    print(f"DAE epoch: {dae_seconds:.3f} s, {dae_fl / dae_seconds / 1e9:.1f} GFLOP/s = {dae_frac:.3f} of peak")
    print(f"RBM epoch: {rbm_seconds:.3f} s, {rbm_fl / rbm_seconds / 1e9:.1f} GFLOP/s = {rbm_frac:.3f} of peak")
    masking_speedup, vs_one_sort = baseline["ranks"] / dae_seconds, baseline["one_sort"] / dae_seconds
    print(
        f"DAE epoch with masks by ranks (two sorts): {baseline['ranks']:.3f} s, by one sort: "
        f"{baseline['one_sort']:.3f} s; by selection {masking_speedup:.2f}x and {vs_one_sort:.2f}x faster"
    )

    result = {
        "device": str(device),
        "torch_threads": threads,
        "load_average_1min_at_start": round(load, 2),
        "n_examples": args.n,
        "batch_size": batch,
        "hidden": h,
        "matmul_peak_flops_per_second": round(peak),
        "dae_flops_per_epoch": dae_fl,
        "rbm_flops_per_epoch": rbm_fl,
        "dae_epoch_seconds": round(dae_seconds, 4),
        "dae_peak_fraction": round(dae_frac, 4),
        "rbm_epoch_seconds": round(rbm_seconds, 4),
        "rbm_peak_fraction": round(rbm_frac, 4),
        "dae_ranks_mask_epoch_seconds": round(baseline["ranks"], 4),
        "masking_speedup": round(masking_speedup, 3),
        "dae_one_sort_mask_epoch_seconds": round(baseline["one_sort"], 4),
        "masking_speedup_vs_one_sort": round(vs_one_sort, 3),
    }
    if not args.no_sklearn:
        xs = x.numpy()
        sk = sklearn_rbm_seconds(xs, h, batch, rbm_lr, args.repeats, args.threads)
        # sklearn's other common case: float64 data (e.g. fetch_openml / 255), which it trains in float64
        sk64 = sklearn_rbm_seconds(xs.astype(np.float64), h, batch, rbm_lr, min(args.repeats, 2), args.threads)
        print(f"sklearn BernoulliRBM epoch (batch {batch}): float32 {sk:.3f} s, float64 {sk64:.3f} s")
        print(f"RBM speed-up vs sklearn: {sk / rbm_seconds:.2f}x (float32), {sk64 / rbm_seconds:.2f}x (float64)")
        result |= {
            "sklearn_rbm_epoch_seconds": round(sk, 4),
            "rbm_speedup_vs_sklearn": round(sk / rbm_seconds, 3),
            "sklearn_float64_rbm_epoch_seconds": round(sk64, 4),
            "rbm_speedup_vs_sklearn_float64": round(sk64 / rbm_seconds, 3),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""What training K candidates in lockstep buys: epoch time per candidate against one candidate alone.

    python benchmarks/lockstep.py [--n 10000] [--hidden 1000] [--batch 32] [--groups 1,4,16,36] [--device auto]

For each group size K, one epoch (n examples, batch --batch) of
- a tied DAE layer 784 -> hidden with masking 0.25 (TiedAEGroup: 10*n*784*hidden FLOPs per candidate),
- an RBM layer 784 -> hidden, CD-1 (RBMGroup: 10*n*784*hidden, five matmuls per minibatch as the DAE's),
- fine-tuning a 784-h-h-h-10 MLP (MLPGroup, closed-form backward: 6*n*(784h + 2h^2 + 10h) - 2*n*784h),
as seconds per candidate-epoch and as a fraction of the float32 matmul peak measured in the same run
(and of the TF32 peak on CUDA, when --tf32). Group size 1 is the CPU pipeline's; a ratio column says
how much faster per candidate each K is than K = 1. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import best_time, dae_flops, matmul_peak, mlp_flops, rbm_flops  # noqa: E402
from pipeline.common.seeding import get_device  # noqa: E402
from pipeline.training.families import autoencoder as ae  # noqa: E402
from pipeline.training.families.autoencoder import TiedAEGroup  # noqa: E402
from pipeline.training.families.rbm import RBMGroup  # noqa: E402
from pipeline.training.mlp_group import MLPGroup  # noqa: E402

D = 784


def _by_ranks(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The masks as first written: ranks (argsort of argsort, two sorts per row) < count."""
    return scores.argsort(dim=-1).argsort(dim=-1) < counts.view(-1, 1, 1)


def _by_one_sort(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The masks as the pipeline drew them until the selection: the first counts[k] of one sort order, scattered."""
    k, m, d = scores.shape
    by_rank = (torch.arange(d, device=scores.device) < counts.view(k, 1, 1)).expand(k, m, d)
    return torch.empty(k, m, d, dtype=torch.bool, device=scores.device).scatter_(-1, scores.argsort(dim=-1), by_rank)


MASKS = {"ranks": _by_ranks, "one_sort": _by_one_sort}  # baselines for `lowest_ranked` (the same masks)


@contextmanager
def baseline_masks(kind: str) -> Iterator[None]:
    """Inside: masks drawn by an earlier way of `MASKS` (the same masks as `lowest_ranked`, tests/test_lockstep.py),
    a baseline for the selection's speed."""
    saved = ae.lowest_ranked
    ae.lowest_ranked = MASKS[kind]
    try:
        yield
    finally:
        ae.lowest_ranked = saved


def dae_epoch(x: torch.Tensor, k: int, h: int, batch: int, device: torch.device, lr: float = 0.05, noise: float = 0.25):
    """One epoch of K tied DAEs as `pretrain_stacks` steps them (4096-row chunks corrupted at once), nothing else."""
    group = TiedAEGroup(torch.rand(h, D, device=device) * 0.1 - 0.05, [lr] * k, [noise] * k)
    gen = torch.Generator(device=device).manual_seed(0)

    def epoch() -> None:
        perm = torch.randperm(len(x), generator=gen, device=device)
        for start in range(0, len(x), 4096):
            clean = x[perm[start : start + 4096]].unsqueeze(0)
            noisy = group.corrupt(clean, gen)
            for s in range(0, clean.shape[1], batch):
                group.step(clean[:, s : s + batch], noisy[:, s : s + batch])

    return epoch


def rbm_epoch(x: torch.Tensor, k: int, h: int, batch: int, device: torch.device, lr: float = 0.05):
    """One epoch of K RBMs by CD-1, nothing else."""
    group = RBMGroup(torch.randn(h, D, device=device) * 0.01, [lr] * k)
    gen = torch.Generator(device=device).manual_seed(0)

    def epoch() -> None:
        perm = torch.randperm(len(x), generator=gen, device=device)
        for idx in perm.split(batch):
            group.step(x[idx].unsqueeze(0), None, gen)

    return epoch


def mlp_epoch(x: torch.Tensor, y: torch.Tensor, k: int, h: int, batch: int, device: torch.device, lr: float = 0.1):
    """One fine-tuning epoch of K 784-h-h-h-10 sigmoid MLPs, nothing else."""
    layers = []
    for n_in in (D, h, h):
        layers += [torch.randn(h, n_in) * 0.05, torch.zeros(h)]
    layers += [torch.zeros(10, h), torch.zeros(10)]
    group = MLPGroup([layers] * k, [lr] * k, device)
    gen = torch.Generator(device=device).manual_seed(0)

    def epoch() -> None:
        perm = torch.randperm(len(x), generator=gen, device=device)
        for idx in perm.split(batch):
            group.step(x[idx], y[idx])

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--groups", default="1,4,16,36")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tf32", action="store_true", help="on CUDA, allow TF32 matmuls (as pipeline.explore does)")
    args = parser.parse_args()
    device = get_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.n, D, generator=gen).round().to(device)
    y = torch.randint(0, 10, (args.n,), generator=gen).to(device)
    peak = matmul_peak(device)
    h, n = args.hidden, args.n
    flops = {"dae": dae_flops(n, h), "rbm": rbm_flops(n, h), "finetune": mlp_flops(n, h)}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"device: {name}; matmul peak {peak / 1e9:.0f} GFLOP/s (tf32={args.tf32}); n={n}, hidden={h}, batch={args.batch}"
    )
    print(f"{'what':<10}{'K':>4}{'s/epoch':>10}{'s/cand-epoch':>14}{'of peak':>9}{'vs K=1':>8}")
    results = []
    for what in ("dae", "rbm", "finetune"):
        base = None
        for k in (int(g) for g in args.groups.split(",")):
            if what == "dae":
                fn = dae_epoch(x, k, h, args.batch, device)
            elif what == "rbm":
                fn = rbm_epoch(x, k, h, args.batch, device)
            else:
                fn = mlp_epoch(x, y, k, h, args.batch, device)
            seconds = best_time(fn, device)
            per = seconds / k
            base = base or per
            frac = flops[what] * k / seconds / peak
            print(f"{what:<10}{k:>4}{seconds:>10.3f}{per:>14.4f}{frac:>9.2f}{base / per:>8.1f}")
            results.append(
                {"what": what, "k": k, "seconds": seconds, "fraction_of_peak": frac, "speedup_vs_k1": base / per}
            )
    print(json.dumps({"device": name, "peak_gflops": peak / 1e9, "tf32": args.tf32, "results": results}))


if __name__ == "__main__":
    main()

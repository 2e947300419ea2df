"""What the pipeline's training epochs cost beyond the bare step, at the batch sizes the default params use.

    python benchmarks/overhead.py [--n 10000] [--valid 2000] [--repeats 3] [--device auto]

Measured in one run, on the same data:
- DAE pretraining (784 -> vincent.pretrain.hidden[0], masking 0.25, batch vincent.pretrain.batch_size):
  the bare epoch (a permutation, fresh masking per chunk, TiedSigmoidStep.sgd_step per minibatch, nothing
  else) against an epoch of `pretrain_stack` as the pretrain stage runs it (validation loss and an atomic
  checkpoint after every epoch), and both as a fraction of the float32 matmul peak measured in the same run
  (10 * n * d * h FLOPs per epoch: five matmuls per minibatch).
- Fine-tuning (784-h-h-h-10 sigmoid MLP, batch vincent.finetune.batch_size): the bare epoch (forward,
  cross-entropy, backward, SGD step per minibatch) against an epoch of `finetune` as the stage runs it
  (validation error, early-stopping state and an atomic checkpoint after every epoch).
The overhead is pipeline epoch / bare epoch (best of --repeats epochs each). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.throughput import load_mnist, matmul_peak, sync  # noqa: E402
from pipeline.data.corruption import corrupt  # noqa: E402
from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder, TiedSigmoidStep  # noqa: E402
from pipeline.models.mlp import MLPClassifier  # noqa: E402
from pipeline.training.finetune import finetune  # noqa: E402
from pipeline.training.layerwise import PretrainConfig, pretrain_stack  # noqa: E402
from pipeline.utils import get_device  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
D = 784


def timed(fn, repeats: int, device: torch.device) -> float:
    """Best wall time of `repeats` calls of fn() (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def bare_dae_epoch(x: torch.Tensor, h: int, batch: int, lr: float, device: torch.device):
    model = DenseAutoencoder(DenseAEConfig(sizes=[D, h], noise_kind="masking", noise_level=0.25)).to(device)
    step = TiedSigmoidStep(model, batch)
    g = torch.Generator(device=device).manual_seed(0)
    chunk = batch * max(1, 4096 // batch)

    def epoch() -> None:
        perm = torch.randperm(len(x), generator=g, device=device)
        for start in range(0, len(x), chunk):
            clean = x[perm[start : start + chunk]]
            noisy = corrupt(clean, "masking", 0.25, g)
            for s in range(0, len(clean), batch):
                step.sgd_step(clean[s : s + batch], noisy[s : s + batch], lr)

    return epoch


def pipeline_epoch_seconds(run) -> list[float]:
    """Per-epoch wall times from a training function's on_epoch callback (the first epoch dropped)."""
    times, start = [], [time.perf_counter()]

    def on_epoch(layer, epoch, metrics):
        times.append(time.perf_counter() - start[0])
        start[0] = time.perf_counter()

    run(on_epoch)
    return times[1:]


def bare_finetune_epoch(x: torch.Tensor, y: torch.Tensor, sizes: list[int], batch: int, lr: float, device):
    mlp = MLPClassifier(sizes).to(device)
    opt = torch.optim.SGD(mlp.parameters(), lr=lr)
    g = torch.Generator(device=device).manual_seed(0)

    def epoch() -> None:
        for idx in torch.randperm(len(x), generator=g, device=device).split(batch):
            loss = F.cross_entropy(mlp(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--valid", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--raw-dir", default=os.environ.get("MNIST_RAW_DIR", str(ROOT.parent / "shared/data/MNIST/raw")))
    args = parser.parse_args()
    v = yaml.safe_load(Path(args.params).read_text())["vincent"]
    h, pre_batch, ft_batch = v["pretrain"]["hidden"][0], v["pretrain"]["batch_size"], v["finetune"]["batch_size"]
    pre_lr, ft_lr = v["pretrain"]["ae_lr"][0], v["finetune"]["lr"][0]
    device = get_device(args.device)
    data = load_mnist(args.n + args.valid, Path(args.raw_dir)).to(device)
    x, x_valid = data[: args.n], data[args.n :]
    print(f"device={device} threads={torch.get_num_threads()} n={args.n} valid={args.valid} h={h} "
          f"batch pretrain={pre_batch} finetune={ft_batch} load={os.getloadavg()[0]:.2f}")  # fmt: skip

    peak_before = matmul_peak(device)
    bare_dae = timed(bare_dae_epoch(x, h, pre_batch, pre_lr, device), args.repeats, device)
    with tempfile.TemporaryDirectory() as tmp:
        config = PretrainConfig(epochs=args.repeats + 1, lr=pre_lr, batch_size=pre_batch, noise_level=0.25)
        pipe_dae = min(pipeline_epoch_seconds(lambda cb: pretrain_stack(
            "dae", [D, h], x, x_valid, config, seed=0, checkpoint_dir=Path(tmp) / "dae", on_epoch=cb,
            progress=False, device=device)))  # fmt: skip
    peak = max(peak_before, matmul_peak(device))
    flops = 10 * args.n * D * h
    print(f"DAE epoch (batch {pre_batch}): bare {bare_dae:.3f} s ({flops / bare_dae / peak:.2f} of peak), "
          f"pipeline {pipe_dae:.3f} s ({flops / pipe_dae / peak:.2f} of peak): overhead {pipe_dae / bare_dae:.2f}x")  # fmt: skip

    y = torch.randint(0, 10, (args.n,), device=device)  # labels do not change the cost of an epoch
    y_valid = torch.randint(0, 10, (args.valid,), device=device)
    sizes = [D, h, h, h]
    bare_ft = timed(bare_finetune_epoch(x, y, sizes, ft_batch, ft_lr, device), args.repeats, device)
    with tempfile.TemporaryDirectory() as tmp:
        pipe_ft = min(pipeline_epoch_seconds(lambda cb: finetune(
            MLPClassifier(sizes), x, y, x_valid, y_valid, lr=ft_lr, max_epochs=args.repeats + 1,
            patience=args.repeats + 1, batch_size=ft_batch, seed=0, checkpoint_path=Path(tmp) / "ft.pt",
            on_epoch=cb, progress=False, device=device)))  # fmt: skip
    print(f"fine-tuning epoch (batch {ft_batch}): bare {bare_ft:.3f} s, pipeline {pipe_ft:.3f} s: "
          f"overhead {pipe_ft / bare_ft:.2f}x")  # fmt: skip
    print(json.dumps({
        "device": str(device), "threads": torch.get_num_threads(), "n": args.n, "hidden": h,
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "dae_batch": pre_batch, "dae_bare_epoch_s": round(bare_dae, 4), "dae_pipeline_epoch_s": round(pipe_dae, 4),
        "dae_bare_peak_fraction": round(flops / bare_dae / peak, 3), "dae_overhead": round(pipe_dae / bare_dae, 3),
        "finetune_batch": ft_batch, "finetune_bare_epoch_s": round(bare_ft, 4),
        "finetune_pipeline_epoch_s": round(pipe_ft, 4), "finetune_overhead": round(pipe_ft / bare_ft, 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

"""What the pipeline's training costs beyond the bare step, and what its search saves, at the default params.

    python benchmarks/overhead.py [--n 10000] [--valid 2000] [--repeats 2] [--rounds 2] [--device auto]
                                 [--params params.yaml] [--raw-dir DIR] [--threads T] [--hidden H] [--timings DIR]

Printed in one run, on n MNIST digits (and a --valid validation set), at the batch sizes of --params:
1. Bare epochs, one candidate (lockstep groups of K = 1, as on a CPU): a permutation and one step per
   minibatch, nothing else (benchmarks/lockstep.py's dae_epoch, rbm_epoch, mlp_epoch):
   - DAE 784 -> h (vincent.pretrain.hidden[0]), masking 0.25, batch vincent.pretrain.batch_size: `TiedAEGroup`;
   - RBM 784 -> h, CD-1, same batch: `RBMGroup`;
   - fine-tuning 784-h-h-h-10, the basic row's batch (vincent.finetune, with vincent.rows.basic): `MLPGroup`;
   each in seconds and as a fraction of the float32 matmul peak measured in the same run (before and
   after; FLOP counts in benchmarks/common.py: 10 n 784 h for the DAE and the RBM, five products per
   minibatch each; 6 n P - 2 n 784 h for the MLP with P weights).
2. Pipeline epochs: the same work as the stages run it. Pretraining: `pretrain_stacks` on one candidate
   (one layer) with a checkpoint directory, so every epoch also computes the validation loss and writes an
   atomic checkpoint; fine-tuning: `halving_search` on one stack and one learning rate (no rungs, patience
   never reached), so every epoch also computes the validation error, the history and the best weights
   (its checkpoint is written per rung segment). Each is called with 1 epoch and with 1 + --repeats
   epochs, --rounds times each, interleaved, keeping the fastest call of each length: the pipeline epoch is
   their difference / --repeats, and what a call costs besides its epochs (set-up, the segment checkpoint)
   is printed as "per call". The overhead is pipeline epoch / bare epoch (best of --repeats after a warm-up).
3. What the search's sharing saves, counted from the grids of --params without training:
   - pretraining, in layer-epochs (one layer of one candidate for one epoch = 1), by `pretrain_stacks`'
     rule: the first layer is trained once per prefix (kind, hidden, lr, noise) to its largest epoch
     count, every deeper layer once per (prefix, epoch count); from scratch, every candidate trains all its
     layers (and, per model, DBN-1 would train apart from DBN-3); beside it the `work` the last
     pretrain@basic-<stack> run wrote to results/pretrain/basic/<stack>.json, where there is one;
   - fine-tuning, in candidate-epochs: the most successive halving can train (every candidate to the
     first rung, the best 1/eta to the next, ...; early stopping only lowers it) against every candidate
     to max_epochs, beside the `work` of results/finetune/basic/<stack>.json where there is one.
4. The table column's stage times: the last wall time of each stage the report lists (logs/timings/).
The last line printed is one JSON object with all of it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    ROOT,
    D,
    best_time,
    dae_flops,
    default_raw_dir,
    load_average,
    load_mnist,
    matmul_peak,
    mlp_flops,
    rbm_flops,
    sync,
)
from benchmarks.lockstep import dae_epoch, mlp_epoch, rbm_epoch  # noqa: E402
from pipeline.common.seeding import get_device  # noqa: E402
from pipeline.params import load_params  # noqa: E402
from pipeline.training.families.autoencoder import initial_weights  # noqa: E402
from pipeline.training.halving import halving_search, schedule  # noqa: E402
from pipeline.training.layer_kind import StackSpec, stack_specs  # noqa: E402
from pipeline.training.search import pretrain_stacks

NOISE = 0.25  # the DAE's masking level (SdA-3's)


# --- 2. pipeline epochs ---------------------------------------------------------------------------------------------


def per_epoch(run: Callable[[int], None], repeats: int, rounds: int, device: torch.device) -> tuple[float, float]:
    """(seconds per epoch, seconds per call besides its epochs) of run(epochs), from the best of `rounds` calls
    with 1 epoch and the best of `rounds` calls with 1 + repeats epochs (interleaved)."""

    def seconds(epochs: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        run(epochs)
        sync(device)
        return time.perf_counter() - t0

    one = many = float("inf")
    for _ in range(rounds):
        one = min(one, seconds(1))
        many = min(many, seconds(1 + repeats))
    epoch = max(many - one, 0.0) / repeats
    return epoch, one - epoch


def pretrain_run(kind: str, h: int, lr: float, noise: float, x, x_valid, batch: int, seed: int, device):
    def run(epochs: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pretrain_stacks(
                [StackSpec(kind, h, lr, epochs, noise)],
                1,
                x,
                x_valid,
                seed=seed,
                batch_size=batch,
                device=device,
                group_size=1,
                checkpoint_dir=tmp,
                progress=False,
            )

    return run


def finetune_run(h: int, lr: float, x, y, x_valid, y_valid, batch: int, seed: int, device):
    layers = [(initial_weights(i, (h, n_in), seed), torch.zeros(h)) for i, n_in in enumerate((D, h, h))]

    def run(epochs: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            halving_search(
                {"stack": layers},
                [lr],
                x,
                y,
                x_valid,
                y_valid,
                max_epochs=epochs,
                patience=epochs + 1,
                rungs=[],
                eta=2,
                batch_size=batch,
                seed=seed,
                device=device,
                group_size=1,
                checkpoint_path=Path(tmp) / "search.pt",
                progress=False,
            )

    return run


# --- 3. sharing -----------------------------------------------------------------------------------------------------


def shared_layer_epochs(specs: Sequence[StackSpec], layers: int) -> int:
    """SearchCost.trained of pretrain_stacks(specs, layers), counted without training: per prefix, the first
    layer to the largest epoch count, each deeper layer once per distinct epoch count."""
    by_prefix: dict[tuple, set[int]] = {}
    for s in dict.fromkeys(specs):
        by_prefix.setdefault(s.prefix, set()).add(s.epochs)
    return sum(max(es) + (layers - 1) * sum(es) for es in by_prefix.values())


def scratch_layer_epochs(specs: Sequence[StackSpec], layers: int) -> int:
    return sum(s.epochs for s in dict.fromkeys(specs)) * layers


def halving_bound(candidates: int, max_epochs: int, rungs: Sequence[int], eta: int) -> int:
    """The most candidate-epochs halving_search can train: all to the first rung, the best 1/eta to the next, ..."""
    total, running, start = 0, candidates, 0
    for end in schedule(max_epochs, rungs):
        total += running * (end - start)
        if end < max_epochs:
            running = max(1, math.ceil(running / eta))
        start = end
    return total


DATASET = "basic"  # the row whose recorded work and stage times are shown


def recorded_work(stage: str, name: str, model: str | None = None) -> dict | None:
    """The `work` a stage recorded for the basic row: results/<stage>/basic/<stack>.json (per model for finetune)."""
    path = ROOT / "results" / stage / DATASET / f"{name}.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return (record.get(model, {}) if model else record).get("work")
    except (OSError, ValueError):
        return None


def saved(part: float, whole: float) -> str:
    return f"{1 - part / whole:.0%}" if whole else "-"


def sharing(v) -> dict:
    stacks, models = {}, {}
    print("pretraining, layer-epochs (one layer of one candidate for one epoch = 1):")
    print(f"  {'stack':<8}{'kind':<6}{'cands':>6}{'layers':>7}{'shared':>8}{'scratch':>9}{'saved':>7}  last run")
    # the basic row's grids (vincent.stacks with vincent.rows.basic), each stack's candidates once
    grids = {name: v.stack_for("basic", name) for name in v.stacks}
    specs_of = {name: stack_specs(v.pretrain.hidden, st) for name, st in grids.items()}
    for name, st in grids.items():
        specs = specs_of[name]
        shared, scratch = shared_layer_epochs(specs, st.layers), scratch_layer_epochs(specs, st.layers)
        rec = recorded_work("pretrain", name)
        last = (
            "not run" if rec is None else f"{rec.get('layer_epochs_trained')} of {rec.get('layer_epochs_from_scratch')}"
        )
        print(
            f"  {name:<8}{st.kind:<6}{len(specs):>6}{st.layers:>7}{shared:>8}{scratch:>9}{saved(shared, scratch):>7}  {last}"
        )
        stacks[name] = {
            "candidates": len(specs),
            "layers": st.layers,
            "layer_epochs_shared": shared,
            "layer_epochs_from_scratch": scratch,
            "last_run": rec,
        }
    shared = sum(s["layer_epochs_shared"] for s in stacks.values())
    scratch = sum(s["layer_epochs_from_scratch"] for s in stacks.values())
    per_model = sum(scratch_layer_epochs(specs_of[m.stack], m.layers) for m in v.models.values())
    print(f"  {'total':<27}{shared:>8}{scratch:>9}{saved(shared, scratch):>7}")
    print(
        f"  every model from scratch (shallower models pretrained apart): {per_model}, {saved(shared, per_model)} saved"
    )

    print("fine-tuning, candidate-epochs (one candidate for one epoch = 1):")
    f = v.finetune_for("basic")
    print(
        f"  {'model':<8}{'cands':>6}{'halving':>9}{'without':>9}{'saved':>7}  last run "
        f"(max_epochs {f.max_epochs}, rungs {f.rungs}, eta {f.eta}; halving = its upper bound)"
    )
    for name, m in v.models.items():
        n = len(specs_of[m.stack]) * len(f.lr)
        bound, without = halving_bound(n, f.max_epochs, f.rungs, f.eta), n * f.max_epochs
        rec = recorded_work("finetune", m.stack, name)
        last = (
            "not measured"
            if rec is None
            else f"{rec.get('candidate_epochs')} of {rec.get('candidate_epochs_without_halving')}"
        )
        print(f"  {name:<8}{n:>6}{bound:>9}{without:>9}{saved(bound, without):>7}  {last}")
        models[name] = {
            "candidates": n,
            "candidate_epochs_bound": bound,
            "candidate_epochs_without_halving": without,
            "last_run": rec,
        }
    bound = sum(m["candidate_epochs_bound"] for m in models.values())
    without = sum(m["candidate_epochs_without_halving"] for m in models.values())
    print(f"  {'total':<14}{bound:>9}{without:>9}{saved(bound, without):>7}")
    return {
        "pretrain": {
            "stacks": stacks,
            "layer_epochs_shared": shared,
            "layer_epochs_from_scratch": scratch,
            "layer_epochs_every_model_from_scratch": per_model,
        },
        "finetune": {"models": models, "candidate_epochs_bound": bound, "candidate_epochs_without_halving": without},
    }


# --- 4. stage times -------------------------------------------------------------------------------------------------


def column_stages(v) -> list[str]:
    """The stages of the basic row (as its report's time table lists them, pipeline/stages/report.py)."""
    d = DATASET
    return [
        "prepare",
        f"evaluate_svm@{d}-rbf",
        f"evaluate_svm@{d}-poly",
        "filters",
        *(f"{stage}@{d}-{s}" for s in v.stacks for stage in ("pretrain", "finetune", "evaluate")),
    ]


def stage_times(v, folder: Path) -> dict:
    found: dict[str, float] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            found[str(record["stage"])] = float(record["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    column = column_stages(v)
    times = {s: found.get(s) for s in column}
    total = sum(t for t in times.values() if t is not None)
    missing = [s for s, t in times.items() if t is None]
    rel = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    if not found:
        print(f"stage times: none found in {rel} (each stage writes its own when dvc repro runs it)")
    else:
        print(f"stage times of the column, seconds (last run of each on this machine, {rel}):")
        for s, t in times.items():
            print(f"  {s:<22}{'-' if t is None else f'{t:.1f}':>9}")
        print(
            f"  {'total':<22}{total:>9.1f}  ({total / 60:.1f} min; {len(column) - len(missing)} of {len(column)} "
            f"stages timed)"
        )
        other = {s: t for s, t in found.items() if s not in times}
        if other:
            print("  other stages timed: " + ", ".join(f"{s} {t:.1f}" for s, t in other.items()))
    return {
        "column": times,
        "column_total_seconds": round(total, 1),
        "not_timed": missing,
        "other": {s: t for s, t in found.items() if s not in times},
    }


# --- main -----------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="training digits per epoch")
    parser.add_argument("--valid", type=int, default=2_000, help="validation digits")
    parser.add_argument("--repeats", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="pipeline calls of each length (the best is kept)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--raw-dir", default=default_raw_dir(), help="MNIST raw folder (env MNIST_RAW_DIR)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden units (default: vincent.pretrain.hidden[0])")
    parser.add_argument("--timings", default=str(ROOT / "logs/timings"), help="folder of the stages' wall times")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 steps against a float32 peak (the vincent stages' setting)
    params = load_params(args.params)
    v, seed = params.vincent, params.seed
    h = args.hidden or v.pretrain.hidden[0]
    ft = v.finetune_for("basic")  # the basic column's fine-tuning (vincent.finetune with vincent.rows.basic)
    pre_batch, ft_batch = v.pretrain.batch_size, ft.batch_size
    ae_lr = next(
        (s.lr[0] for s in v.stacks.values() if s.kind == "ae" and max(s.noise) > 0),
        next((s.lr[0] for s in v.stacks.values() if s.kind == "ae"), 0.1),
    )
    rbm_lr = next((s.lr[0] for s in v.stacks.values() if s.kind == "rbm"), 0.1)
    ft_lr = ft.lr[0]
    device = get_device(args.device)
    x_all, y_all = load_mnist(args.n + args.valid, args.raw_dir, labels=True)
    x, y, x_valid, y_valid = x_all[: args.n], y_all[: args.n], x_all[args.n :], y_all[args.n :]
    threads = torch.get_num_threads()
    print(
        f"device={device} threads={threads} n={args.n} valid={args.valid} h={h} batch pretrain={pre_batch} "
        f"finetune={ft_batch} repeats={args.repeats} rounds={args.rounds} load={load_average():.2f}"
    )

    # 1. bare epochs and 2. pipeline epochs, each kind's two measured back to back (the machine may be shared)
    xd, yd = x.to(device), y.to(device)
    bare_epochs = {
        "dae": dae_epoch(xd, 1, h, pre_batch, device, lr=ae_lr, noise=NOISE),
        "rbm": rbm_epoch(xd, 1, h, pre_batch, device, lr=rbm_lr),
        "finetune": mlp_epoch(xd, yd, 1, h, ft_batch, device, lr=ft_lr),
    }
    pipeline_runs = {
        "dae": pretrain_run("ae", h, ae_lr, NOISE, x, x_valid, pre_batch, seed, device),
        "rbm": pretrain_run("rbm", h, rbm_lr, 0.0, x, x_valid, pre_batch, seed, device),
        "finetune": finetune_run(h, ft_lr, x, y, x_valid, y_valid, ft_batch, seed, device),
    }
    peaks = [matmul_peak(device)]
    bare, pipe = {}, {}
    for what, epoch in bare_epochs.items():
        bare[what] = best_time(epoch, device, args.repeats)
        pipe[what] = per_epoch(pipeline_runs[what], args.repeats, args.rounds, device)
    peaks.append(matmul_peak(device))
    peak = max(peaks)
    flops = {"dae": dae_flops(args.n, h), "rbm": rbm_flops(args.n, h), "finetune": mlp_flops(args.n, h)}
    del xd, yd, bare_epochs

    print(f"matmul peak (float32): {peak / 1e9:.1f} GFLOP/s (before {peaks[0] / 1e9:.1f}, after {peaks[1] / 1e9:.1f})")
    labels = {
        "dae": f"DAE 784-{h} nu={NOISE:g}",
        "rbm": f"RBM 784-{h} CD-1",
        "finetune": f"fine-tune 784-{h}x3-10",
    }
    print(
        f"  {'epoch':<24}{'bare s':>8}{'of peak':>8}{'pipeline s':>11}{'of peak':>8}{'overhead':>9}{'per call s':>11}"
    )
    epochs = {}
    for what, label in labels.items():
        b, (p, setup) = bare[what], pipe[what]
        fb, over = flops[what] / b / peak, p / b
        fp = flops[what] / p / peak if p > 0 else None  # p = 0: the difference drowned in the machine's noise
        shown = "-" if fp is None else f"{fp:.2f}"
        print(f"  {label:<24}{b:>8.3f}{fb:>8.2f}{p:>11.3f}{shown:>8}{over:>8.2f}x{setup:>11.3f}")
        epochs[what] = {
            "batch": ft_batch if what == "finetune" else pre_batch,
            "flops_per_epoch": flops[what],
            "bare_epoch_s": round(b, 4),
            "bare_peak_fraction": round(fb, 4),
            "pipeline_epoch_s": round(p, 4),
            "pipeline_peak_fraction": fp and round(fp, 4),
            "overhead": round(over, 4),
            "pipeline_per_call_s": round(setup, 4),
        }

    # 3. sharing; 4. stage times
    work = sharing(v)
    times = stage_times(v, Path(args.timings).resolve())
    print(
        json.dumps(
            {
                "device": str(device),
                "threads": threads,
                "n": args.n,
                "valid": args.valid,
                "hidden": h,
                "repeats": args.repeats,
                "rounds": args.rounds,
                "matmul_peak_gflops": round(peak / 1e9, 2),
                "epochs": epochs,
                "work": work,
                "stage_seconds": times,
            }
        )
    )


if __name__ == "__main__":
    main()

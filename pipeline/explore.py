"""The wide model search of one dataset, outside `dvc repro`: every candidate's validation error.

    python -m pipeline.explore [--params params.yaml] [--out reports/search] [--device auto]
    python -m pipeline.explore --scheduler tcp://host:8786 [--workspace PATH]   # the shards on a Dask cluster

The grid is params.yaml's `explore` section (Vincent et al. JMLR 2010's ranges; `columns` narrows it to some of the
table's columns, e.g. a GPU session's [SdA-3, DBN-3] at 2000 units). For each width, the autoencoder stacks (every
learning rate x masking level x epochs) and the RBM stacks are pretrained as a tree of shared prefixes
(pipeline.training.search); then each column of the table is fine-tuned by successive halving
(pipeline.training.halving) over its own candidates: SAA-3 (masking 0), SdA-3 (masking > 0), DBN-1 (the first RBM
layer) and DBN-3. Selection uses the validation split only; once every column is selected, the test error of each
column's `top` best candidates is measured, to show how sensitive the result is. Writes <out>/<dataset>.csv (one row
per candidate) and <out>/<dataset>.json (selection, work saved, timings, device), rewritten after every shard so an
interrupted run keeps what it finished. Built for a GPU (candidates in lockstep groups); runs anywhere.

A shard is one pretraining tree (a width and a kind) with the fine-tuning of the columns built on it, and
`run_shard` is the one place its work is done. Without a scheduler the shards run here one after the other. With
one (`--scheduler`, or Dask's DASK_SCHEDULER_ADDRESS) each is a Dask task on whichever worker is free, asking for a
`GPU` when some worker declares one, as pipeline.execution.cluster's training stages do; the workers read the prepared data
from the workspace (the same path on every worker, a shared mount; `--workspace` if it differs there) and send back
the rows, the work entries and the weights of each column's `top` best only. This machine merges the finished
shards in the one-worker order, so the CSV and the selection are a one-worker run's (timings aside; the shards'
seeds come from the candidates' names, not from what ran before), and it alone reads the test split, after the last
shard. Ctrl-C cancels the shards not started (one running finishes on its worker, which Dask cannot interrupt, and is
dropped); the outputs keep those that finished.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.cli import configure_logging, exits_on_bad_input, tool_parser

if TYPE_CHECKING:
    import torch

    from pipeline.data.arrays import Split
    from pipeline.params import Params
    from pipeline.training.halving import Trial
    from pipeline.training.stack import StackSpec

log = logging.getLogger("pipeline.explore")
COLUMNS = {"SAA-3": ("ae", 3), "SdA-3": ("ae", 3), "DBN-1": ("rbm", 1), "DBN-3": ("rbm", 3)}


@dataclass
class Shard:
    """What one shard found: the same whether a Dask worker sent it or the local loop made it, so both merge alike.

    `top` holds, per column, the shard's best trials (only they keep their best weights, for the test errors) and
    the index of each one's row in `rows`."""

    hidden: int
    kind: str
    device: str
    tf32: bool
    pretraining: dict
    finetuning: dict[str, dict]
    rows: list[dict]
    top: dict[str, list[tuple[Trial, int]]]


def stack_specs(params: Params, hidden: int, kind: str) -> list[StackSpec]:
    """The stacks of one pretraining tree: every learning rate x epochs (x masking level, for autoencoders)."""
    from pipeline.training.stack import StackSpec

    e = params.explore
    if kind == "rbm":
        return [StackSpec("rbm", hidden, lr, ep) for lr in e.rbm_lr for ep in e.epochs]
    # masking 0 is SAA-3's, masking > 0 SdA-3's: only the levels of the columns searched are pretrained
    noise = [nu for nu in e.noise if ("SAA-3" if nu == 0 else "SdA-3") in e.columns]
    return [StackSpec("ae", hidden, lr, ep, nu) for lr in e.ae_lr for nu in noise for ep in e.epochs]


def shards(params: Params) -> list[tuple[int, str]]:
    """The (width, kind) of every tree some column needs, in the one-worker order: the order of the CSV's rows."""
    kinds = {COLUMNS[c][0] for c in params.explore.columns}
    return [(h, k) for h in params.explore.hidden for k in ("ae", "rbm") if k in kinds and stack_specs(params, h, k)]


def run_shard(
    params: Params, hidden: int, kind: str, train: Split, valid: Split, device: torch.device, progress: bool = False
) -> Shard:
    """Pretrain one tree of stacks, then fine-tune each column built on it by successive halving (validation only)."""
    from pipeline.training.halving import halving_search
    from pipeline.training.search import pretrain_stacks

    e, v = params.explore, params.vincent
    specs = stack_specs(params, hidden, kind)
    t0 = time.perf_counter()
    stacks, cost = pretrain_stacks(
        specs,
        3,
        train.x,
        valid.x,
        seed=params.seed,
        batch_size=v.pretrain.batch_size,
        device=device,
        group_size=e.group_size,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    shard = Shard(
        hidden,
        kind,
        device_name(device),
        bool(e.tf32 and device.type == "cuda"),
        {
            "seconds": round(seconds, 1),
            "stacks": len(specs),
            "layer_epochs_trained": cost.trained,
            "layer_epochs_from_scratch": cost.from_scratch,
            "saved_fraction": round(cost.saved_fraction, 3),
        },
        {},
        [],
        {},
    )
    log.info(
        "pretrained %d %s stacks of width %d in %.0f s (%.0f%% of the layer-epochs saved by sharing)",
        len(specs),
        kind,
        hidden,
        seconds,
        100 * cost.saved_fraction,
    )
    by_name = {s.name: s for s in specs}
    for column in e.columns:
        ckind, depth = COLUMNS[column]
        if ckind != kind:
            continue
        chosen = {
            s.name: stacks[s.name].weights[:depth]
            for s in specs
            if (kind == "rbm" or (s.noise == 0) == (column == "SAA-3")) and stacks[s.name].diverged is None
        }
        t0 = time.perf_counter()
        trials = halving_search(
            chosen,
            e.finetune_lr,
            train.x,
            train.y,
            valid.x,
            valid.y,
            max_epochs=e.max_epochs,
            patience=e.patience,
            rungs=e.rungs,
            eta=e.eta,
            batch_size=v.finetune_for(e.dataset).batch_size,
            seed=params.seed,
            device=device,
            group_size=e.group_size,
            progress=progress,
        )
        seconds = time.perf_counter() - t0
        shard.finetuning[f"{column}-h{hidden}"] = {
            "seconds": round(seconds, 1),
            "candidates": len(trials),
            "candidate_epochs": sum(t.epochs for t in trials),
            "candidate_epochs_without_halving": len(trials) * e.max_epochs,
        }
        first = len(shard.rows)
        for t in trials:
            s = by_name[t.stack]
            shard.rows.append(
                {
                    "column": column,
                    "candidate": t.name,
                    "hidden": hidden,
                    "pretrain_lr": s.lr,
                    "pretrain_epochs": s.epochs,
                    "noise": s.noise,
                    "finetune_lr": t.lr,
                    "valid_error_pct": round(100 * t.best_error, 3),
                    "best_epoch": t.best_epoch,
                    "epochs_trained": t.epochs,
                    "status": t.status,
                    "valid_rank": "",
                    "test_error_pct": "",
                }
            )
        ranked = sorted(range(len(trials)), key=lambda i: best_first(trials[i]))[: e.top]  # stable: ties keep order
        shard.top[column] = [(trials[i], first + i) for i in ranked]
        for i, t in enumerate(trials):  # keep only the weights that may still be reported
            t.params = []
            if i not in ranked:
                t.best_params = None
        if ranked:
            log.info(
                "%s h%d: %d candidates in %.0f s, best %s at %.2f%% validation error",
                column,
                hidden,
                len(trials),
                seconds,
                trials[ranked[0]].name,
                100 * trials[ranked[0]].best_error,
            )
    return shard


def best_first(trial: Trial) -> tuple[float, float]:
    """The one order of a column's candidates, in a shard and across shards: as the table's (Trial.rank_key)."""
    return trial.rank_key


def shard_task(params: Params, hidden: int, kind: str, workspace: str, device: str) -> Shard:
    """On a Dask worker: `run_shard` on the workspace's prepared train and valid splits (the test split stays with the
    coordinator), with this task's share of the worker's cores, as pipeline.execution.cluster gives a stage's command."""
    import torch

    from pipeline.core import paths
    from pipeline.data.arrays import load_split
    from pipeline.execution import cluster

    torch.set_num_threads(cluster.worker_threads())
    where = use_device(device, params.explore.tf32)
    folder = Path(workspace) / paths.prepared(params.explore.dataset)
    return run_shard(
        params, hidden, kind, load_split(folder, "train", where), load_split(folder, "valid", where), where
    )


def merge(done: list[Shard | None], summary: dict, top: int) -> tuple[list[dict], dict[str, list]]:
    """The rows and each column's `top` best (trial, row) of the shards finished so far (the others None), in the
    one-worker order, so that rows and ties come out as one worker gives them; fills the summary's work entries so."""
    rows: list[dict] = []
    best: dict[str, list] = {c: [] for c in summary["grid"]["columns"]}
    summary["pretraining"], summary["finetuning"] = {}, {}
    done = [shard for shard in done if shard is not None]
    for shard in done:
        base = len(rows)
        rows += [dict(row) for row in shard.rows]
        summary["pretraining"][f"{shard.kind}-h{shard.hidden}"] = shard.pretraining
        summary["finetuning"] |= shard.finetuning
        for column, ranked in shard.top.items():
            both = best[column] + [(t, rows[base + i]) for t, i in ranked]
            best[column] = sorted(both, key=lambda tr: best_first(tr[0]))[:top]
    if done:  # where the shards ran: the workers' devices
        summary["device"] = ", ".join(dict.fromkeys(s.device for s in done))
        summary["tf32"] = any(s.tf32 for s in done)
    return rows, best


@exits_on_bad_input("explore")
def main(argv: list[str] | None = None) -> None:
    parser = tool_parser(__doc__, "reports/search")
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the shards on this Dask cluster (tcp://host:8786; default DASK_SCHEDULER_ADDRESS, "
        "else here, one after the other)",
    )
    parser.add_argument("--workspace", metavar="PATH", help="this folder's path on the workers (default: the same)")
    args = parser.parse_args(argv)
    configure_logging()

    import torch

    from pipeline.core import paths
    from pipeline.data.arrays import load_array, load_split
    from pipeline.execution import cluster
    from pipeline.params import load_params
    from pipeline.training.lockstep import MLPGroup

    params = load_params(args.params)
    e = params.explore
    device = use_device(args.device, e.tf32)
    summary = {
        "dataset": e.dataset,
        "device": device_name(device),
        "torch": torch.__version__,
        "tf32": bool(e.tf32 and device.type == "cuda"),
        "seed": params.seed,
        "grid": e.model_dump(),
        "pretraining": {},
        "finetuning": {},
        "columns": {},
    }
    plan = shards(params)
    done: list[Shard | None] = [None] * len(plan)

    def finished(i: int, shard: Shard) -> None:
        done[i] = shard
        write_outputs(args.out, e.dataset, merge(done, summary, e.top)[0], summary)

    start_all = time.perf_counter()
    folder = paths.prepared(e.dataset)
    for name in ("x_test.npy", "y_test.npy"):  # read after the search: a missing or cut file must stop it before
        load_array(folder / name, mmap=True)  # the header only; the test data stay unread until selection is final
    try:
        if address := args.scheduler or cluster.configured_address():
            from pipeline.explore import shard_task  # by reference, not as __main__'s copy: workers import it

            workspace = args.workspace or str(Path.cwd())
            client = cluster.connect(address, workspace)  # a ClusterError exits 2 through the wrapper
            log.info("%d shards of the search, on the Dask cluster at %s", len(plan), address)
            with client:
                calls = [(f"explore-{k}-h{h}", (params, h, k, workspace, args.device)) for h, k in plan]
                cluster.run_tasks(client, shard_task, calls, finished)
        else:
            train, valid = load_split(folder, "train", device), load_split(folder, "valid", device)
            for i, (hidden, kind) in enumerate(plan):
                finished(i, run_shard(params, hidden, kind, train, valid, device, progress=not args.no_progress))
    except KeyboardInterrupt:  # Ctrl-C: the outputs keep the shards finished, without test errors
        print(
            f"interrupted: {args.out} holds the {len(plan) - done.count(None)} of {len(plan)} shards that finished",
            file=sys.stderr,
        )
        sys.exit(130)
    rows, best = merge(done, summary, e.top)
    # Selection is final: only now is the test split read, for each column's `top` candidates.
    test = load_split(folder, "test", device)
    for column, ranked in best.items():
        for rank, (t, row) in enumerate(ranked, start=1):
            net = MLPGroup([t.best_params], [t.lr], device, head=t.head)
            row["test_error_pct"] = round(100 * float(net.errors(test.x, test.y)[0]), 3)
            row["valid_rank"] = rank
        if ranked:
            t, row = ranked[0]
            summary["columns"][column] = {
                "selected": t.name,
                "valid_error_pct": row["valid_error_pct"],
                "test_error_pct": row["test_error_pct"],
            }
    summary["total_seconds"] = round(time.perf_counter() - start_all, 1)
    write_outputs(args.out, e.dataset, rows, summary)
    for column, s in summary["columns"].items():
        log.info(
            "%s: %s, validation %.2f%%, test %.2f%%", column, s["selected"], s["valid_error_pct"], s["test_error_pct"]
        )
    log.info("search finished in %.0f s on %s", summary["total_seconds"], summary["device"])


def use_device(requested: str, tf32: bool) -> torch.device:
    """The device asked for ('auto': CUDA when present), with TF32 matmuls there when the grid allows them."""
    import torch

    from pipeline.common.seeding import get_device

    device = get_device(requested, "--device")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return device


def device_name(device: torch.device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def write_outputs(out: Path, dataset: str, rows: list[dict], summary: dict) -> None:
    """<out>/<dataset>.csv (every candidate), .json (selection, work, timings) and .md (the summary), atomically."""
    import pandas as pd

    from pipeline.common.io import atomic_path, write_csv, write_json
    from pipeline.reporting.search import search_markdown

    write_csv(out / f"{dataset}.csv", rows)
    write_json(out / f"{dataset}.json", summary)
    with atomic_path(out / f"{dataset}.md") as tmp:
        tmp.write_text(search_markdown(pd.DataFrame(rows), summary))


if __name__ == "__main__":
    main()

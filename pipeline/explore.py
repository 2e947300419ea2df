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
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.cli import configure_logging, exits_on_bad_input, tool_parser

if TYPE_CHECKING:
    from pipeline.execution.shards import Shard

log = logging.getLogger("pipeline.explore")


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
    from pipeline.execution.shards import device_name, merge, run_shard, shard_task, shards, use_device
    from pipeline.params import load_params
    from pipeline.training.select import error_rate

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
            row["test_error_pct"] = round(100 * error_rate(t, test, device), 3)
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

"""The wide model search of one dataset, outside `dvc repro`: every candidate's validation error.

    python -m pipeline.explore [--params params.yaml] [--out reports/search] [--device auto]

The grid is params.yaml's `explore` section (Vincent et al. JMLR 2010's ranges; `columns` narrows it to some of
the table's columns, e.g. a GPU session's [SdA-3, DBN-3] at 2000 units). For each width, the
autoencoder stacks (every learning rate x masking level x epochs) and the RBM stacks are pretrained as
a tree of shared prefixes (pipeline.training.search); then each column of the table is fine-tuned by
successive halving (pipeline.training.halving) over its own candidates: SAA-3 (masking 0), SdA-3
(masking > 0), DBN-1 (the first RBM layer) and DBN-3. Selection uses the validation split only; once
every column is selected, the test error of each column's `top` best candidates is measured, to show
how sensitive the result is. Writes <out>/<dataset>.csv (one row per candidate) and <out>/<dataset>.json
(selection, work saved, timings, device), rewritten after every column so an interrupted run keeps
what it finished. Built for a GPU (candidates in lockstep groups); runs anywhere.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.cli import configure_logging, tool_parser

log = logging.getLogger("pipeline.explore")
COLUMNS = {"SAA-3": ("ae", 3), "SdA-3": ("ae", 3), "DBN-1": ("rbm", 1), "DBN-3": ("rbm", 3)}


def main(argv: list[str] | None = None) -> None:
    parser = tool_parser(__doc__, "reports/search")
    args = parser.parse_args(argv)
    configure_logging()

    import torch

    from pipeline import paths
    from pipeline.data.arrays import load_splits
    from pipeline.params import load_params
    from pipeline.training.halving import halving_search
    from pipeline.training.search import StackSpec, pretrain_stacks
    from pipeline.utils import get_device

    params = load_params(args.params)
    e, v = params.explore, params.vincent
    device = get_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = e.tf32
    splits = load_splits(paths.prepared(e.dataset), device)
    train, valid = splits["train"], splits["valid"]
    group = e.group_size
    summary = {
        "dataset": e.dataset, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "tf32": bool(e.tf32 and device.type == "cuda"), "seed": params.seed,
        "grid": e.model_dump(), "pretraining": {}, "finetuning": {}, "columns": {},
    }  # fmt: skip
    rows: list[dict] = []
    best: dict[str, list] = {c: [] for c in e.columns}  # per column: the `top` best (trial, row) so far
    start_all = time.perf_counter()
    columns = {c: COLUMNS[c] for c in e.columns}
    # masking 0 is SAA-3's, masking > 0 SdA-3's: only the levels of the columns searched are pretrained
    noise = [nu for nu in e.noise if ("SAA-3" if nu == 0 else "SdA-3") in columns]
    for hidden in e.hidden:
        for kind in ("ae", "rbm"):
            if kind == "ae":
                specs = [StackSpec("ae", hidden, lr, ep, nu) for lr in e.ae_lr for nu in noise for ep in e.epochs]
            else:
                specs = [StackSpec("rbm", hidden, lr, ep) for lr in e.rbm_lr for ep in e.epochs]
            if not specs or all(ckind != kind for ckind, _ in columns.values()):
                continue
            t0 = time.perf_counter()
            stacks, cost = pretrain_stacks(
                specs, 3, train.x, valid.x, seed=params.seed, batch_size=v.pretrain.batch_size, device=device,
                group_size=group, progress=not args.no_progress,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            summary["pretraining"][f"{kind}-h{hidden}"] = {
                "seconds": round(seconds, 1), "stacks": len(specs), "layer_epochs_trained": cost.trained,
                "layer_epochs_from_scratch": cost.from_scratch, "saved_fraction": round(cost.saved_fraction, 3),
            }  # fmt: skip
            log.info("pretrained %d %s stacks of width %d in %.0f s (%.0f%% of the layer-epochs saved by sharing)",
                     len(specs), kind, hidden, seconds, 100 * cost.saved_fraction)  # fmt: skip
            for column, (ckind, depth) in columns.items():
                if ckind != kind:
                    continue
                chosen = {
                    s.name: stacks[s.name].weights[:depth] for s in specs
                    if (kind == "rbm" or (s.noise == 0) == (column == "SAA-3")) and stacks[s.name].diverged is None
                }  # fmt: skip
                t0 = time.perf_counter()
                trials = halving_search(
                    chosen, e.finetune_lr, train.x, train.y, valid.x, valid.y, max_epochs=e.max_epochs,
                    patience=e.patience, rungs=e.rungs, eta=e.eta, batch_size=v.finetune_for(e.dataset).batch_size,
                    seed=params.seed, device=device, group_size=group, progress=not args.no_progress,
                )  # fmt: skip
                seconds = time.perf_counter() - t0
                epochs = sum(t.epochs for t in trials)
                summary["finetuning"][f"{column}-h{hidden}"] = {
                    "seconds": round(seconds, 1), "candidates": len(trials), "candidate_epochs": epochs,
                    "candidate_epochs_without_halving": len(trials) * e.max_epochs,
                }  # fmt: skip
                by_name = {s.name: s for s in specs}
                for t in trials:
                    s = by_name[t.stack]
                    row = {
                        "column": column, "candidate": t.name, "hidden": hidden, "pretrain_lr": s.lr,
                        "pretrain_epochs": s.epochs, "noise": s.noise, "finetune_lr": t.lr,
                        "valid_error_pct": round(100 * t.best_error, 3), "best_epoch": t.best_epoch,
                        "epochs_trained": t.epochs, "status": t.status, "valid_rank": "", "test_error_pct": "",
                    }  # fmt: skip
                    rows.append(row)
                    best[column].append((t, row))
                best[column] = sorted(best[column], key=lambda tr: tr[0].best_error)[: e.top]
                for t in trials:  # keep only the weights that may still be reported
                    if all(t is not b for b, _ in best[column]):
                        t.best_params = None
                log.info("%s h%d: %d candidates in %.0f s, best %s at %.2f%% validation error", column, hidden,
                         len(trials), seconds, best[column][0][0].name, 100 * best[column][0][0].best_error)  # fmt: skip
                write_outputs(args.out, e.dataset, rows, summary)
    # Selection is final: only now is the test split read, for each column's `top` candidates.
    from pipeline.training.lockstep import MLPGroup

    test = splits["test"]
    for column, ranked in best.items():
        for rank, (t, row) in enumerate(ranked, start=1):
            net = MLPGroup([t.best_params], [t.lr], device, head=t.head)
            row["test_error_pct"] = round(100 * float(net.errors(test.x, test.y)[0]), 3)
            row["valid_rank"] = rank
        if ranked:
            t, row = ranked[0]
            summary["columns"][column] = {"selected": t.name, "valid_error_pct": row["valid_error_pct"],
                                          "test_error_pct": row["test_error_pct"]}  # fmt: skip
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

    from pipeline.reporting.search import search_markdown
    from pipeline.utils import atomic_path, write_csv, write_json

    write_csv(out / f"{dataset}.csv", rows)
    write_json(out / f"{dataset}.json", summary)
    with atomic_path(out / f"{dataset}.md") as tmp:
        tmp.write_text(search_markdown(pd.DataFrame(rows), summary))


if __name__ == "__main__":
    main()

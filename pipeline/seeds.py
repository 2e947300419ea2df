"""Each column's selected configuration retrained with other seeds: how much of the table is the seed?

    python -m pipeline.seeds [--dataset basic] [--models sda3 dbn3] [--seeds 1 2] [--out reports/seeds] [--device auto]
    python -m pipeline.seeds --dataset rect --models claim -j 2    # the claim: SdA-3 and the row's best other column

For each model, the pretraining candidate and fine-tuning rate that the committed run selected
(results/finetune/<dataset>/<stack>.json) are trained again from scratch with each seed (initial weights,
minibatch order, corruption, Gibbs sampling), fine-tuned with the same early stopping on validation,
and tested once. Writes <out>/<dataset>.csv (one row per model and seed; the committed run's own seed
from results/evaluate) and <out>/<dataset>.md (mean and standard deviation per model). Outside
`dvc repro`: on a GPU it takes minutes; results on another device differ in rounding, not in law.

`--models claim` seeds what the paper's claim rests on: SdA-3, and the row's best other trained column in the
committed table (results/report/<dataset>.csv), each as the entry the report chose on validation (DBN-1 may be
`dbn1` or the lab's `dbn1j`). An SVM that is the best other column has no seed to vary: it is left out.
`-j N` trains N (model, seed) runs at once, one thread each; each run depends on its seed alone, so the
results are the same for any N. `--resume` keeps the runs <out>/<dataset>.csv already has for an entry whose
committed run there is today's (same candidate, same validation and test error), and trains only the others: a
run killed part-way, at a session's end, loses only the runs it had not finished.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import TYPE_CHECKING

from pipeline.core.cli import configure_logging, exits_on_bad_input, tool_parser

if TYPE_CHECKING:
    from pipeline.params import Params

log = logging.getLogger("pipeline.seeds")


def read_result(stage: str, dataset: str, stack: str, model: str | None = None, keys: tuple[str, ...] = ()) -> dict:
    """results/<stage>/<dataset>/<stack>.json (or its entry `model`, with `keys`), which the stage
    `<stage>@<dataset>-<stack>` writes; one missing, truncated or without them is a DataFileError naming the file
    and that stage."""
    from pipeline.core import paths
    from pipeline.data.arrays import DataFileError
    from pipeline.reporting.vincent import read_json

    path = paths.results(stage, f"{dataset}/{stack}")
    writer = f"{stage}@{dataset}-{stack}"
    try:
        body = read_json(path)
    except ValueError as exc:  # json.JSONDecodeError
        why = f"not valid JSON ({exc}); the file is truncated or corrupt"
        raise DataFileError(f"{path}: {why}: restore it with `dvc checkout {path}` or rerun {writer}") from None
    entry = body.get(model) if isinstance(body, dict) and model is not None else body
    if not isinstance(entry, dict) or any(k not in entry for k in keys):
        what = "a mapping" if model is None else f"an entry {model!r} with {list(keys)}"
        raise DataFileError(f"{path}: lacks {what}; expected the layout {writer} writes: rerun it")
    return entry


def claim_models(params, dataset: str) -> list[str]:
    """The entries of SdA-3 and of the best other trained column of the committed row, as the report chose them."""
    import pandas as pd

    from pipeline.core import paths
    from pipeline.reporting.vincent import select_entries

    v = params.vincent
    records = []
    for stack in v.stacks_of(dataset):
        evaluated = read_result("evaluate", dataset, stack)
        finetuned = read_result("finetune", dataset, stack)
        records += [
            evaluated[m]["record"] | {"valid_loss": finetuned[m].get("valid_loss")}
            for m in v.models_of(stack)
            if m in evaluated
        ]
    chosen = {r["model"]: r["entry"] for r in select_entries(records)[0]}
    row = pd.read_csv(paths.vincent_row(dataset)).dropna(subset=["error_pct"])
    others = row[row["model"] != "SdA-3"].sort_values("error_pct", kind="stable")
    best = str(others.iloc[0]["model"])
    if best not in chosen:
        log.info("%s: the best other column is %s (no seed to vary): only SdA-3 is retrained", dataset, best)
        return [chosen["SdA-3"]]
    return [chosen["SdA-3"], chosen[best]]


def retrain(params_path: str, dataset: str, model: str, seed: int, device_name: str, progress: bool) -> dict:
    """One run: `model`'s selected candidate pretrained and fine-tuned again with `seed`, tested once."""
    import torch

    from pipeline.common.seeding import get_device
    from pipeline.core import paths
    from pipeline.core.errors import StageError
    from pipeline.data.arrays import DataFileError, load_splits
    from pipeline.params import load_params
    from pipeline.training.layer_kind import StackSpec
    from pipeline.training.search import pretrain_stacks
    from pipeline.training.select import select_and_test

    params = load_params(params_path)
    v = params.vincent
    spec, f = v.models[model], v.finetune_for(dataset)
    device = get_device(device_name, "--device")
    splits = load_splits(paths.prepared(dataset), device)
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    finetuned = read_result("finetune", dataset, spec.stack, model, ("selected", "trials"))
    selected = next((t for t in finetuned["trials"] if t["name"] == finetuned["selected"]), None)
    if selected is None:
        raise DataFileError(
            f"{paths.results('finetune', f'{dataset}/{spec.stack}')}: {model!r} selected "
            f"{finetuned['selected']!r}, which is not among its trials: rerun finetune@{dataset}-{spec.stack}"
        )
    stack = StackSpec(**selected["pretrain"])
    start = time.perf_counter()
    stacks, _ = pretrain_stacks(
        [stack],
        spec.layers,
        train.x,
        valid.x,
        seed=seed,
        batch_size=v.pretrain.batch_size,
        device=device,
        progress=progress,
        labels=(train.y, valid.y),
    )
    if stacks[stack.name].diverged is not None:
        raise StageError(f"{stack.name} seed {seed}: pretraining diverged ({stacks[stack.name].diverged})")
    selection = select_and_test(  # one candidate and one rate: no halving, the same early stopping
        {stack.name: stacks[stack.name].weights},
        [selected["lr"]],
        train,
        valid,
        test,
        layers=spec.layers,
        top=1,
        device=device,
        max_epochs=f.max_epochs,
        patience=f.patience,
        rungs=[],
        eta=2,
        batch_size=f.batch_size,
        seed=seed,
        progress=progress,
    )
    (trial,) = selection.trials
    test_error = selection.test_errors[0]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "model": spec.table_name,
        "entry": model,
        "candidate": selected["name"],
        "seed": seed,
        "device": name,
        "valid_error_pct": 100 * trial.best_error,
        "test_error_pct": 100 * test_error,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _worker_start(parent: int) -> None:
    """A pool worker: one torch thread, and it ends with its parent. A pool's worker would otherwise go on with its
    run (up to hours) after `pipeline.seeds` is killed, and only then see the parent gone."""
    import threading

    import torch

    torch.set_num_threads(1)

    def end_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()


@exits_on_bad_input("seeds")
def main(argv: list[str] | None = None) -> None:
    parser = tool_parser(__doc__, "reports/seeds")
    parser.add_argument("--dataset", default="basic", help="a row of the table (an entry of vincent.datasets)")
    parser.add_argument("--models", nargs="*", help="keys of vincent.models (default: the row's), or `claim`")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("-j", "--jobs", type=int, default=1, help="runs at once, one thread each (default 1)")
    parser.add_argument("--resume", action="store_true", help="keep the runs <out>/<dataset>.csv already has")
    args = parser.parse_args(argv)
    configure_logging()

    import concurrent.futures as cf
    import multiprocessing

    from pipeline.params import load_params
    from pipeline.reporting.seeds import finished_runs, write_outputs

    params = load_params(args.params)
    check_args(args, params)
    v = params.vincent
    row = list(v.row_models(args.dataset))
    models = claim_models(params, args.dataset) if args.models == ["claim"] else (args.models or row)
    rows: dict[tuple[str, int], dict] = {}
    for model in models:
        spec = v.models[model]
        record = read_result("evaluate", args.dataset, spec.stack, model, ("record",))["record"]
        selected = read_result("finetune", args.dataset, spec.stack, model, ("selected", "trials"))["selected"]
        rows[model, params.seed] = {
            "model": spec.table_name,
            "entry": model,
            "candidate": selected,
            "seed": params.seed,
            "device": "committed run (cpu)",
            "valid_error_pct": 100 * record["valid_error"],
            "test_error_pct": 100 * record["test_error"],
            "seconds": "",
        }
    order = [(m, s) for m in models for s in [params.seed, *args.seeds]]
    if args.resume:
        kept = finished_runs(args.out / f"{args.dataset}.csv", rows, args.seeds)
        log.info("--resume: %d of %d runs already in %s", len(kept), len(models) * len(args.seeds), args.out)
        rows |= kept
        write_outputs(args.out, args.dataset, [rows[k] for k in order if k in rows])
    runs = [
        (str(args.params), args.dataset, m, s, args.device, not args.no_progress)
        for m in models
        for s in args.seeds
        if (m, s) not in rows
    ]

    def done(row: dict) -> None:
        rows[row["entry"], row["seed"]] = row
        log.info(
            "%s seed %d: validation %.2f%%, test %.2f%% (%.0f s)",
            row["entry"],
            row["seed"],
            row["valid_error_pct"],
            row["test_error_pct"],
            row["seconds"],
        )
        write_outputs(args.out, args.dataset, [rows[k] for k in order if k in rows])

    if args.jobs <= 1:
        for run in runs:
            done(retrain(*run))
        return
    context = multiprocessing.get_context("spawn")  # torch's threads do not survive fork
    with cf.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
    ) as pool:
        futures = [pool.submit(retrain, *run[:-1], False) for run in runs]
        try:
            for future in cf.as_completed(futures):
                done(future.result())
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise


def check_args(args: argparse.Namespace, params: Params) -> None:
    """--dataset, --models and --seeds name what params.yaml has, and --device one this machine has: a StageError."""
    from pipeline.common.seeding import get_device
    from pipeline.core.cli import check_choice
    from pipeline.core.errors import StageError

    v = params.vincent
    check_choice("--dataset", args.dataset, "vincent.datasets", v.datasets)
    if args.models != ["claim"]:
        row = list(v.row_models(args.dataset))
        for model in args.models or []:
            if model not in v.models:
                expected = f"expected some of {row}, or `claim` alone"
                raise StageError(f"--models {model!r} is not in vincent.models; {expected}")
            if model not in row:
                raise StageError(
                    f"--models {model!r}: row {args.dataset!r} does not run its stack {v.models[model].stack!r} "
                    f"(vincent.rows.{args.dataset}.stacks); expected some of {row}, or `claim` alone"
                )
    for seed in args.seeds:
        if seed < 0:
            raise StageError(f"--seeds {seed}: a seed must be >= 0, as params.yaml's seed")
    get_device(args.device, "--device")


if __name__ == "__main__":
    main()

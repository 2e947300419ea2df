"""Each column's selected configuration retrained with other seeds: how much of the table is the seed?

    python -m pipeline.seeds [--dataset basic] [--models sda3 dbn3] [--seeds 1 2] [--out reports/seeds] [--device auto]

For each model, the pretraining candidate and fine-tuning rate that the committed run selected
(results/finetune/<dataset>/<stack>.json) are trained again from scratch with each seed (initial weights,
minibatch order, corruption, Gibbs sampling), fine-tuned with the same early stopping on validation,
and tested once. Writes <out>/<dataset>.csv (one row per model and seed; the committed run's own seed
from results/evaluate) and <out>/<dataset>.md (mean and standard deviation per model). Outside
`dvc repro`: on a GPU it takes minutes; results on another device differ in rounding, not in law.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.cli import configure_logging, tool_parser

log = logging.getLogger("pipeline.seeds")


def main(argv: list[str] | None = None) -> None:
    parser = tool_parser(__doc__, "reports/seeds")
    parser.add_argument("--dataset", default="basic", help="a row of the table (an entry of vincent.datasets)")
    parser.add_argument("--models", nargs="*", help="keys of vincent.models (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args(argv)
    configure_logging()

    import torch

    from pipeline import paths
    from pipeline.data.arrays import load_splits
    from pipeline.params import load_params
    from pipeline.reporting.vincent import read_json
    from pipeline.training.halving import halving_search
    from pipeline.training.lockstep import MLPGroup
    from pipeline.training.search import StackSpec, pretrain_stacks
    from pipeline.utils import get_device

    params = load_params(args.params)
    v = params.vincent
    device = get_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    splits = load_splits(paths.prepared(args.dataset), device)
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    rows: list[dict] = []
    for model in args.models or list(v.models):
        spec, f = v.models[model], v.finetune_for(args.dataset)
        finetuned = read_json(paths.results("finetune", f"{args.dataset}/{spec.stack}"))[model]
        selected = next(t for t in finetuned["trials"] if t["name"] == finetuned["selected"])
        stack = StackSpec(**selected["pretrain"])
        record = read_json(paths.results("evaluate", f"{args.dataset}/{spec.stack}"))[model]["record"]
        rows.append({"model": spec.table_name, "entry": model, "candidate": selected["name"], "seed": params.seed,
                     "device": "committed run (cpu)", "valid_error_pct": 100 * record["valid_error"],
                     "test_error_pct": 100 * record["test_error"], "seconds": ""})  # fmt: skip
        for seed in args.seeds:
            start = time.perf_counter()
            stacks, _ = pretrain_stacks(
                [stack], spec.layers, train.x, valid.x, seed=seed, batch_size=v.pretrain.batch_size, device=device,
                progress=not args.no_progress, labels=(train.y, valid.y),
            )  # fmt: skip
            if stacks[stack.name].diverged is not None:
                raise SystemExit(
                    f"seeds: {stack.name} seed {seed}: pretraining diverged ({stacks[stack.name].diverged})"
                )
            (trial,) = halving_search(
                {stack.name: stacks[stack.name].weights[: spec.layers]}, [selected["lr"]], train.x, train.y, valid.x,
                valid.y, max_epochs=f.max_epochs, patience=f.patience, rungs=[], eta=2, batch_size=f.batch_size,
                seed=seed, device=device, progress=not args.no_progress,
            )  # fmt: skip
            net = MLPGroup([trial.best_params], [trial.lr], device, head=trial.head)
            test_error = float(net.errors(test.x, test.y)[0])
            seconds = time.perf_counter() - start
            rows.append({"model": spec.table_name, "entry": model, "candidate": selected["name"], "seed": seed,
                         "device": name, "valid_error_pct": 100 * trial.best_error, "test_error_pct": 100 * test_error,
                         "seconds": round(seconds, 1)})  # fmt: skip
            log.info("%s seed %d: validation %.2f%%, test %.2f%% (%.0f s)", model, seed, 100 * trial.best_error,
                     100 * test_error, seconds)  # fmt: skip
            write_outputs(args.out, args.dataset, rows)


def write_outputs(out: Path, dataset: str, rows: list[dict]) -> None:
    """<out>/<dataset>.csv (every run) and .md (mean and standard deviation of the test error per model)."""
    import pandas as pd

    from pipeline.reporting.tables import markdown_table
    from pipeline.utils import atomic_path, write_csv

    write_csv(out / f"{dataset}.csv", rows)
    frame = pd.DataFrame(rows)
    summary = []
    for model, group in frame.groupby("model", sort=False):
        errors = group["test_error_pct"]
        per_seed = ", ".join(f"{e:.2f} (seed {s})" for e, s in zip(errors, group["seed"], strict=True))
        summary.append([str(model), str(len(group)), per_seed, f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}"
                        if len(group) > 1 else "-"])  # fmt: skip
    text = "\n".join([
        f"# The selected configurations with other seeds (`{dataset}`)", "",
        "`python -m pipeline.seeds`: each column's selected pretraining candidate and fine-tuning rate, trained",
        "again from scratch with each seed and tested once. Mean ± sample standard deviation over the seeds.", "",
        markdown_table(["model", "runs", "test error % per seed", "mean ± std"], summary),
        f"Every run: `{dataset}.csv`.", "",
    ])  # fmt: skip
    with atomic_path(out / f"{dataset}.md") as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    main()

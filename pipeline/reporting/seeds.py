"""The report of `python -m pipeline.seeds`: <out>/<dataset>.csv (every run) and .md (per model, the test error over
the seeds), and the runs an earlier report holds that `--resume` keeps."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pipeline.common.io import atomic_path, write_csv
from pipeline.reporting.tables import markdown_table


def finished_runs(csv: Path, committed: dict[tuple[str, int], dict], seeds: list[int]) -> dict[tuple[str, int], dict]:
    """The runs with `seeds` in an earlier `pipeline.seeds` output, for the entries whose committed run it lists is
    the one in `committed` ((entry, seed) -> row): a committed run trained again (a rerun) voids its seeds' runs."""
    if not csv.is_file():
        return {}

    def same(a: dict, b: dict) -> bool:
        return a["candidate"] == b["candidate"] and all(
            math.isclose(float(a[k]), float(b[k]), abs_tol=1e-9) for k in ("valid_error_pct", "test_error_pct")
        )

    earlier = {(r["entry"], int(r["seed"])): r | {"seed": int(r["seed"])} for r in pd.read_csv(csv).to_dict("records")}
    current = set()
    for (entry, seed), row in committed.items():
        listed = earlier.get((entry, seed))
        if listed is not None and same(row, listed):
            current.add(entry)
    return {(entry, seed): row for (entry, seed), row in earlier.items() if entry in current and seed in seeds}


def write_outputs(out: Path, dataset: str, rows: list[dict]) -> None:
    """<out>/<dataset>.csv (every run) and .md (mean and standard deviation of the test error per model)."""
    write_csv(out / f"{dataset}.csv", rows)
    frame = pd.DataFrame(rows)
    summary = []
    for model, group in frame.groupby("model", sort=False):
        errors = group["test_error_pct"]
        per_seed = ", ".join(f"{e:.2f} (seed {s})" for e, s in zip(errors, group["seed"], strict=True))
        summary.append(
            [
                str(model),
                str(len(group)),
                per_seed,
                f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}" if len(group) > 1 else "-",
            ]
        )
    text = "\n".join(
        [
            f"# The selected configurations with other seeds (`{dataset}`)",
            "",
            "`python -m pipeline.seeds`: each column's selected pretraining candidate and fine-tuning rate, trained",
            "again from scratch with each seed and tested once. Mean ± sample standard deviation over the seeds.",
            "",
            markdown_table(["model", "runs", "test error % per seed", "mean ± std"], summary),
            f"Every run: `{dataset}.csv`.",
            "",
        ]
    )
    with atomic_path(out / f"{dataset}.md") as tmp:
        tmp.write_text(text)

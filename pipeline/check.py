"""The CI gate: the report's metrics against the paper (or a reference run), and stale-report detection.

    python -m pipeline.check                      # every cell of reports/vincent2008.csv vs the paper (check.*)
    python -m pipeline.check --report R --reference tests/smoke_reference.csv   # vs a reference run, both ways
    python -m pipeline.check --stale              # which stages' code, params or outputs changed since dvc.lock

Exits 1 with a table of every breach (model, ours, reference, allowed, excess), 0 when all pass. Against the
paper it also counts the cells within the paper's 95% interval or better (the fidelity target, apart from the
allowances) and names the others. `--stale --fail-on-stale` exits 1 when a stage is stale. Bad input (a params
file, a report that cannot be read, a damaged dvc.lock) exits 2 with a message naming the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core.cli import exits_on_bad_input
from pipeline.core.errors import StageError
from pipeline.params import Params, load_params
from pipeline.reporting.tables import interval_summary, markdown_table, read_report

REPORT = "reports/vincent2008.csv"
LATER = "reports/reference/later_results.csv"  # the published values of the columns beyond the paper's six


@dataclass(frozen=True)
class Breach:
    dataset: str
    model: str
    ours: float
    reference: float
    allowed: float
    two_sided: bool = False
    """against a reference run a difference either way counts; against the paper only an excess"""

    @property
    def excess(self) -> float:
        difference = self.ours - self.reference
        return (abs(difference) if self.two_sided else difference) - self.allowed


def with_published(table: pd.DataFrame, later_csv: str | Path = LATER) -> pd.DataFrame:
    """The table with each column beyond the paper's (CAE-2...) given its published value as the reference the gate
    holds it to, where there is one for its row (later_results.csv); without one its cells are not gated."""
    from pipeline.reporting.vincent_table import published

    values = published(later_csv)
    reference = [
        values.get((d, m), (float("nan"), ""))[0] if pd.isna(p) else p
        for d, m, p in zip(table["dataset"], table["model"], table["paper_error_pct"], strict=True)
    ]
    return table.assign(paper_error_pct=reference)


def against_paper(
    table: pd.DataFrame,
    allowed: dict[str, float],
    by_dataset: dict[str, dict[str, float]] | None = None,
    not_run: Collection[tuple[str, str]] = (),
) -> list[Breach]:
    """Every cell whose error exceeds the paper's by more than its allowance (a missing result is a breach), except
    the (dataset, model) cells of `not_run` (`cells_not_run`: columns their row does not run).

    The allowance of a cell: `by_dataset[dataset][model]` where given, else `allowed[model]`."""
    breaches, skipped = [], set(not_run)
    for row in table.itertuples():
        limit = (by_dataset or {}).get(row.dataset, {}).get(row.model, allowed.get(row.model))
        if limit is None or (row.dataset, row.model) in skipped:
            continue
        b = Breach(row.dataset, row.model, row.error_pct, row.paper_error_pct, limit)
        if pd.isna(row.error_pct) or b.excess > 1e-9:
            breaches.append(b)
    return breaches


SVMS = ("SVM_rbf", "SVM_poly")  # every row runs both (evaluate_svm@<row>-<kernel>), whatever its stacks


def cells_not_run(params: Params, table: pd.DataFrame) -> list[tuple[str, str]]:
    """The (dataset, model) cells of `table` whose row of vincent.datasets has no such column: no model of the stacks
    it runs (vincent.rows.<row>.stacks) has that table_name. Such a cell is empty by design, not a missing result."""
    v = params.vincent
    columns = {d: {*SVMS, *(m.table_name for m in v.row_models(d).values())} for d in v.datasets}
    return [
        (d, m) for d, m in zip(table["dataset"], table["model"], strict=True) if d in columns and m not in columns[d]
    ]


def against_reference(table: pd.DataFrame, reference: pd.DataFrame, tolerance: float) -> list[Breach]:
    """Every model whose error differs from the reference run's by more than `tolerance` points, either way."""
    ours = table.set_index(["dataset", "model"])["error_pct"]
    breaches = []
    for row in reference.itertuples():
        value = ours.get((row.dataset, row.model), float("nan"))
        b = Breach(row.dataset, row.model, value, row.error_pct, tolerance, two_sided=True)
        if pd.isna(value) or b.excess > 1e-9:
            breaches.append(b)
    return breaches


def breach_table(breaches: list[Breach], reference_name: str) -> str:
    rows = [
        [b.dataset, b.model, f"{b.ours:.2f}", f"{b.reference:.2f}", f"{b.allowed:.2f}", f"{b.excess:+.2f}"]
        for b in breaches
    ]
    return markdown_table(["dataset", "model", "ours %", f"{reference_name} %", "allowed", "excess"], rows)


def stale_stages(status: dict) -> dict[str, list[str]]:
    """From `dvc status --json`: stages whose code, params or command changed since dvc.lock, or whose outputs no
    longer match the md5 it records (a report edited by hand).

    Missing data and outputs (a fresh clone has none: deleted, not in cache) are not staleness; modified or new
    files and changed params are.
    """
    stale: dict[str, list[str]] = {}
    for stage, entries in status.items():
        reasons = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                reasons.append(str(entry))
                continue
            if "changed command" in entry:
                reasons.append("command changed")
            for dep, state in entry.get("changed deps", {}).items():
                if isinstance(state, dict):
                    reasons += [f"param {name} {s}" for name, s in state.items()]
                elif state in ("modified", "new"):
                    reasons.append(f"{dep} {state}")
            for out, state in entry.get("changed outs", {}).items():
                if state == "modified":
                    reasons.append(f"output {out} modified since dvc.lock recorded it")
                elif state == "new":
                    reasons.append(f"output {out} not recorded in dvc.lock")
        if reasons:
            stale[stage] = reasons
    return stale


def locked_stages(lock: str | Path = "dvc.lock") -> set[str]:
    """The stages dvc.lock records (a stage never run has no results to be stale); none without a dvc.lock."""
    return set(read_lock(lock).get("stages", {})) if Path(lock).is_file() else set()


def read_lock(lock: str | Path = "dvc.lock") -> dict:
    """dvc.lock, parsed. One that is not the mapping `dvc repro` writes (not YAML, empty, a list) raises StageError
    naming it; a missing one, FileNotFoundError."""
    import yaml

    path = Path(lock)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; `dvc repro` writes it")
    expected = "expected the mapping `dvc repro` writes (schema: '2.0', stages: {<stage>: its cmd, deps, outs})"
    restore = f"restore it with `git checkout -- {path}` or rerun `dvc repro`"
    try:
        lock_file = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 500 KB
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = f"line {mark.line + 1}: {exc.problem}" if mark is not None else str(exc).splitlines()[0]
        raise StageError(f"{path}: not valid YAML ({reason}); {expected}: {restore}") from None
    if lock_file is None:
        found = "is empty"
    elif not isinstance(lock_file, dict):
        found = f"holds a YAML {type(lock_file).__name__}"
    elif not isinstance(lock_file.get("stages", {}), dict):
        found = f"holds a YAML {type(lock_file['stages']).__name__} under `stages`"
    else:
        return lock_file
    raise StageError(f"{path} {found}; {expected}: {restore}")


def dvc_status(*targets: str) -> dict:
    """`dvc status --json` of the whole pipeline, or of the stages named."""
    result = subprocess.run(["dvc", "status", *targets, "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise StageError(f"dvc status failed: {result.stderr.strip()}")
    try:
        return json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        raise StageError(f"dvc status --json printed no JSON: {result.stdout.strip()[:200]!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.check", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--report", default=REPORT, help=f"report CSV (default {REPORT})")
    parser.add_argument("--reference", help="CSV of a reference run (dataset,model,error_pct); default: the paper")
    parser.add_argument("--stale", action="store_true", help="only report stages changed since dvc.lock")
    parser.add_argument("--fail-on-stale", action="store_true", help="with --stale: exit 1 when any stage is stale")
    args = parser.parse_args(argv)
    with exits_on_bad_input("check"):
        params = load_params(args.params)
        if args.stale:
            return stale_report(args.fail_on_stale)
        table = read_report(
            args.report,
            ("error_pct",) if args.reference else ("error_pct", "paper_error_pct"),
            optional=("paper_ci95_pct",),
        )
        if args.reference:
            reference = read_report(args.reference)
            breaches = against_reference(table, reference, params.check.smoke_tolerance_pct)
            name = "reference"
        else:
            not_run = cells_not_run(params, table)
            breaches = against_paper(
                with_published(table), params.check.allowed_excess_pct, params.check.row_allowed_excess_pct, not_run
            )
            name = "paper"
            if not_run:
                cells = ", ".join(f"{d} {m}" for d, m in not_run)
                print(f"note: cells of columns their row does not run (vincent.rows.<row>.stacks; not gated): {cells}")
                skipped = set(not_run)
                table = table[[k not in skipped for k in zip(table["dataset"], table["model"], strict=True)]]
            pending = [d for d in params.vincent.datasets if d not in set(table["dataset"])]
            if pending:
                print(f"note: rows of vincent.datasets not in {args.report} yet (not gated): {', '.join(pending)}")
    checked = len(table) if not args.reference else len(reference)
    if breaches:
        print(
            f"FAIL: {len(breaches)} of {checked} results of {args.report} leave their tolerance against the {name}:\n"
        )
        print(breach_table(breaches, name))
    else:
        print(f"OK: all {checked} results of {args.report} are within tolerance of the {name}.")
    if not args.reference and "paper_ci95_pct" in table:
        print(interval_summary(table))
    return 1 if breaches else 0


def stale_report(fail_on_stale: bool) -> int:
    """Print the stages of dvc.lock that are stale (code, params or outputs changed), and the files of dvc.yaml's wiring
    that no longer match the code and params (`python -m pipeline.wire`); 1 if any and `fail_on_stale`."""
    from pipeline import wire

    unwired = sorted(str(p.relative_to(wire.ROOT)) for p in wire.outdated())
    for name in unwired:
        print(
            f"{name} is out of date with the code and params.yaml (a stage's imports, a dataset or a stack): run "
            "python -m pipeline.wire, so that dvc.yaml's stages depend on what they run"
        )
    locked = locked_stages()
    stale = {k: v for k, v in stale_stages(dvc_status()).items() if k in locked}
    if not stale and unwired:
        return 1 if fail_on_stale else 0
    if not stale:
        print("dvc.lock matches the code and params: the committed report is current.")
        return 0
    bar = "!" * 78
    print(f"{bar}\nSTALE REPORT: these stages' code, params or outputs changed since dvc.lock; the committed")
    print("report and metrics do not reflect them. Rerun `dvc repro` and commit dvc.lock with the results; restore")
    print("an output edited by hand with `git checkout -- <file>` (`dvc checkout <file>` for data and models).")
    for stage, reasons in stale.items():
        print(f"  {stage}: {', '.join(reasons)}")
    print(bar)
    return 1 if fail_on_stale else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m pipeline.check | head -1`: the reader left, which is no error of the gate's
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exiting flushes nowhere, quietly
        sys.exit(1)

"""The Vincent 2008 report: select one entry per table column, check the targets, write the Markdown.

Everything here works from the stages' metrics records (dicts read from metrics/*.json); the report
stage loads them, calls these functions and writes what they return.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.data.arrays import DataFileError
from pipeline.params import Params, StackParams
from pipeline.params.finetune import FinetuneParams
from pipeline.params.stacks import KINDS
from pipeline.reporting.datasets import DESCRIPTIONS, dataset_origin
from pipeline.reporting.tables import bold_mask, markdown_table, probe_markdown, vincent_markdown


def read_json(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataFileError(f"{path}: missing; run the stage that writes it (dvc repro)") from None


def params_hash(params: Params) -> str:
    """Hash of every setting the table depends on (not tracking, zoo or check): all of vincent, other rows' stacks
    too, though a row's report declares its own (a report rerun after a change elsewhere shows another hash)."""
    relevant = {
        "seed": params.seed,
        "data": params.data.model_dump(),
        "prepare": params.prepare.model_dump(),
        "vincent": params.vincent.model_dump(),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def select_entries(records: list[dict]) -> tuple[list[dict], dict[str, list[dict]]]:
    """One record per table column: the entry with the lowest validation error (ties: the lower validation
    cross-entropy that fine-tuning recorded, `valid_loss`, as among one entry's candidates)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["model"], []).append(r)
    key = lambda r: (r["valid_error"], math.inf if r.get("valid_loss") is None else r["valid_loss"], r.get("entry", ""))  # noqa: E731
    chosen = [min(group, key=key) for group in groups.values()]
    return chosen, groups


def target_lines(table: pd.DataFrame) -> list[str]:
    """The targets of one row, checked on our numbers: each cell within the paper's interval or better;
    SdA-3 at or below the paper's value, and the best of the row or tied with it (the bold rule)."""
    lines = []
    for row in table.dropna(subset=["error_pct"]).itertuples():
        ok = row.error_pct <= row.paper_error_pct + row.paper_ci95_pct
        gap = row.error_pct - (row.paper_error_pct + row.paper_ci95_pct)
        verdict = "met" if ok else f"**missed by {gap:.2f} points** (beyond the paper's upper 95% bound)"
        lines.append(
            f"- {row.model}: {row.error_pct:.2f}% vs the paper's {row.paper_error_pct:.2f} ±{row.paper_ci95_pct:.2f}: {verdict}"
        )
    done = table.dropna(subset=["error_pct"])
    if "SdA-3" in set(done["model"]):
        sda = done.set_index("model").loc["SdA-3"]
        paper = sda.paper_error_pct
        lines.append(
            f"- SdA-3 <= the paper's {paper:.2f}%: "
            f"{'met' if sda.error_pct <= paper else f'**missed by {sda.error_pct - paper:.2f} points**'}"
        )
        bold = dict(zip(done["model"], bold_mask(list(done["error_pct"]), list(done["ci95_pct"])), strict=True))
        best = done.loc[done["error_pct"].idxmin()]
        lines.append(
            f"- SdA-3 best of the row or tied (95% intervals overlap the best): "
            f"{'met' if bold['SdA-3'] else f'**missed** (best: {best.model} {best.error_pct:.2f}%)'}"
        )
    return lines


def stage_seconds(stages: list[str], timings: str | Path = "logs/timings") -> dict[str, float | None]:
    """The wall time this machine measured for each stage (pipeline.core.timings: killed runs included), None where none is.

    Timings are no DVC dependency (they change on every run), so the report shows the latest it finds.
    """
    out: dict[str, float | None] = {}
    for stage in stages:
        path = Path(timings) / f"{stage}.json"
        out[stage] = json.loads(path.read_text())["seconds"] if path.is_file() else None
    return out


def selected_curves(finetuned: dict[str, dict]) -> dict[str, dict[str, list[float]]]:
    """Per model, the train loss and validation error per epoch of the selected fine-tuning trial."""
    out = {}
    for model, f in finetuned.items():
        trial = next(t for t in f["trials"] if t["name"] == f["selected"])
        out[model] = {k: trial["history"][k] for k in ("train_loss", "valid_error")}
    return out


def mcnemar_rows(chosen: list[dict]) -> list[list[str]]:
    """SdA-3 against every other column: McNemar's exact test on the test examples each gets wrong."""
    from pipeline.evaluation.rates import mcnemar

    by_model = {r["model"]: r for r in chosen if "test_wrong" in r}
    sda = by_model.get("SdA-3")
    if sda is None:
        return []
    rows = []
    for name, r in by_model.items():
        if name == "SdA-3":
            continue
        m = mcnemar(sda["test_wrong"], r["test_wrong"])
        verdict = "SdA-3 better" if m["only_a_wrong"] < m["only_b_wrong"] else "SdA-3 worse"
        verdict = verdict if m["p_value"] < 0.05 else "no significant difference"
        rows.append(
            [
                name,
                f"{100 * sda['test_error']:.2f} vs {100 * r['test_error']:.2f}",
                str(m["only_a_wrong"]),
                str(m["only_b_wrong"]),
                f"{m['p_value']:.2g}",
                verdict,
            ]
        )
    return rows


def with_mcnemar(table: pd.DataFrame, chosen: list[dict]) -> pd.DataFrame:
    """The row's table with SdA-3 against each column on the same test examples (McNemar, as mcnemar_rows):
    mcnemar_b = wrong only by SdA-3, mcnemar_c = wrong only by the column, mcnemar_p; empty for SdA-3 itself."""
    from pipeline.evaluation.rates import mcnemar

    by_model = {r["model"]: r for r in chosen if "test_wrong" in r}
    out = table.copy()
    for column in ("mcnemar_b", "mcnemar_c", "mcnemar_p"):
        out[column] = float("nan")
    sda = by_model.get("SdA-3")
    for i, model in out["model"].items():
        if sda is not None and model != "SdA-3" and model in by_model:
            m = mcnemar(sda["test_wrong"], by_model[model]["test_wrong"])
            out.loc[i, ["mcnemar_b", "mcnemar_c", "mcnemar_p"]] = [m["only_a_wrong"], m["only_b_wrong"], m["p_value"]]
    return out.astype({"mcnemar_b": "Int64", "mcnemar_c": "Int64"})


def selection_rows(params: Params, finetuned: dict[str, dict], evaluated: dict[str, dict]) -> list[list[str]]:
    """Per column, the best fine-tuning candidates on validation (the first is the selected one), with the test
    errors evaluate measured for them once selection was final."""
    rows = []
    for model, f in finetuned.items():
        trials = {t["name"]: t for t in f["trials"]}
        for rank, top in enumerate(evaluated[model]["record"].get("top", []), start=1):
            t = trials[top["name"]]
            rows.append(
                [
                    params.vincent.models[model].table_name if rank == 1 else "",
                    str(rank),
                    t["name"],
                    f"{100 * top['valid_error']:.2f}",
                    f"{100 * top['test_error']:.2f}",
                    str(t["best_epoch"]),
                    t["status"],
                ]
            )
    return rows


def row_note(default: FinetuneParams, row: FinetuneParams) -> str:
    """What this row's fine-tuning does differently from vincent.finetune (vincent.rows), for the search's sentence."""
    changed = [f"{k} {v}" for k, v in row.model_dump().items() if v != getattr(default, k) and k != "lr"]
    return f" ({', '.join(changed)}: this row's own, `vincent.rows`)" if changed else ""


def stack_note(name: str, default: StackParams, row: StackParams) -> str:
    """One stack's pretraining grid for the search's sentence, marked where the row has its own (vincent.rows)."""
    noise = f", noise {row.noise}" if KINDS[row.kind].noise else ""
    noise += "".join(f", {k} {v}" for k, v in sorted(row.options.items()))
    own = " (this row's own, `vincent.rows`)" if row != default else ""
    return f"`{name}` {row.kind}, lr {row.lr}, epochs {row.epochs}{noise}{own}"


def search_lines(params: Params, finetuned: dict[str, dict]) -> list[str]:
    v = params.vincent
    lines = []
    for model, f in finetuned.items():
        spec = v.models[model]
        work = f.get("work", {})
        lines.append(
            f"- {spec.table_name} (`{model}`: the first {spec.layers} layer(s) of stack `{spec.stack}`): "
            f"{len(f['trials'])} candidates, {work.get('candidate_epochs', '?')} candidate-epochs of fine-tuning "
            f"instead of {work.get('candidate_epochs_without_halving', '?')} without halving"
        )
    return lines


def row_markdown(
    params: Params,
    dataset: str,
    table: pd.DataFrame,
    finetuned: dict[str, dict],
    evaluated: dict[str, dict],
    probes: list[dict[str, Any]],
    seconds: dict[str, float | None],
    figures: list[str],
    revision: str,
    sizes: dict[str, int],
    mcnemar: list[list[str]],
) -> str:
    v = params.vincent
    f = v.finetune_for(dataset)
    stacks = "; ".join(stack_note(k, v.stacks[k], v.stack_for(dataset, k)) for k in v.stacks_of(dataset))
    lines = [
        f"# Vincent et al. 2008, Table 1, row `{dataset}`: our reproduction",
        "",
        f"Generated by `dvc repro` (stage `report@{dataset}`) from code revision `{revision}`, params hash "
        f"`{params_hash(params)}` (seed {params.seed}; `{dataset}`. {DESCRIPTIONS.get(dataset, dataset)}: "
        f"{sizes['train']:,} train / {sizes['valid']:,} valid / {sizes['test']:,} test, {dataset_origin(params, dataset)}). "
        "The whole table: [reports/vincent2008.md](../vincent2008.md).",
        "",
        vincent_markdown(table),
        "",
        "## Targets",
        "",
        *target_lines(table),
        "",
        "## The search (validation split only)",
        "",
        f"Pretraining grids, {v.pretrain.hidden} units per layer: {stacks}. Fine-tuning: every (pretrained candidate, "
        f"learning rate in {f.lr}) pair by successive halving (rungs {f.rungs}, the best 1/{f.eta} go on), early "
        f"stopping after {f.patience} epochs without improvement, at most {f.max_epochs} epochs"
        f"{row_note(v.finetune, f)}. These compact grids are "
        "drawn from the wide search in `reports/search/` (`python -m pipeline.explore`).",
        "",
        *search_lines(params, finetuned),
        "",
        markdown_table(
            ["column", "rank", "candidate", "valid error %", "test error %", "best epoch", "status"],
            selection_rows(params, finetuned, evaluated),
        ),
        "The first row of each column is the network in the table. The test errors of the others were measured",
        "after selection, to show how much the choice among near-equal candidates matters.",
        "",
        "## Is the ranking real? McNemar's test, SdA-3 against each column",
        "",
        "On the same test examples: b = wrong only by SdA-3, c = wrong only by the other model; exact two-sided",
        "binomial test of b against b + c.",
        "",
        markdown_table(["vs", "test error % (SdA-3 vs it)", "b", "c", "p", "at 5%"], mcnemar)
        if mcnemar
        else "(no SdA-3)",
        "",
        "## The pretrained layers by themselves (frozen features, before fine-tuning)",
        "",
        probe_markdown(probes),
        "",
        "## Figures",
        "",
        *(f"![{Path(path).stem}](../figures/vincent/{dataset}/{Path(path).name})" for path in figures),
        "",
        "## Wall time per stage",
        "",
        "Each stage's wall time on the machine that made this report, since the stage last finished: runs of it killed "
        "part-way and resumed from their checkpoints included (logs/timings/, also in MLflow).",
        "",
        markdown_table(["stage", "seconds"], [[k, "-" if t is None else f"{t:.1f}"] for k, t in seconds.items()]),
        f"Total: {sum(t for t in seconds.values() if t is not None) / 60:.1f} minutes.",
        "",
    ]
    return "\n".join(lines)

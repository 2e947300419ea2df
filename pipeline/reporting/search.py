"""The wide search's results (reports/search/<dataset>.csv and .json) as Markdown: per column, the best candidates
on validation, what each grid value does at its best, and what sharing and halving saved."""

from __future__ import annotations

import pandas as pd

from pipeline.reporting.tables import markdown_table

GRID_COLUMNS = ("hidden", "pretrain_lr", "pretrain_epochs", "noise", "finetune_lr")


def best_by_value(rows: pd.DataFrame, column: str) -> list[list[str]]:
    """For each grid column, its values' best validation error (how much each setting matters)."""
    out = []
    for key in GRID_COLUMNS:
        best = rows.groupby(key)["valid_error_pct"].min()
        if len(best) > 1:
            out.append([key, ", ".join(f"{v:g}: {e:.2f}" for v, e in best.items())])
    return out


def search_markdown(rows: pd.DataFrame, summary: dict, top: int = 5) -> str:
    grid = summary["grid"]
    lines = [
        f"# The wide search on `{summary['dataset']}`",
        "",
        f"`python -m pipeline.explore` on {summary['device']} (torch {summary['torch']}, TF32 matmuls: "
        f"{summary['tf32']}, seed {summary['seed']}). Grid: {grid['hidden']} units; autoencoder lr {grid['ae_lr']}, "
        f"masking {grid['noise']} (0 = SAA-3); RBM lr {grid['rbm_lr']}; {grid['epochs']} pretraining epochs per "
        f"layer; fine-tuning lr {grid['finetune_lr']} by successive halving (rungs {grid['rungs']}, best 1/{grid['eta']} "
        f"go on), patience {grid['patience']}, at most {grid['max_epochs']} epochs. Every candidate's validation "
        f"error: `{summary['dataset']}.csv`; selection uses the validation split only. Successive halving favours",
        "fast starters: a small fine-tuning rate is judged at the first rung, so its best-value row below understates it.",
        "",
    ]
    if "total_seconds" not in summary:
        done = sorted({f"{c} h{h}" for c, h in rows[["column", "hidden"]].itertuples(index=False)})
        lines += [
            f"**Interrupted** (the run's time limit) after: {', '.join(done)}. The test errors of the best "
            "candidates are measured only once the whole search has finished, so none are shown.",
            "",
        ]
    for column, group in rows.groupby("column", sort=False):
        ranked = group.sort_values(["valid_error_pct", "candidate"]).head(top)
        table = [
            [
                str(r.candidate),
                f"{r.valid_error_pct:.2f}",
                "" if pd.isna(r.test_error_pct) or r.test_error_pct == "" else f"{float(r.test_error_pct):.2f}",
                str(r.best_epoch),
                str(r.status),
            ]
            for r in ranked.itertuples()
        ]
        lines += [
            f"## {column}: {len(group)} candidates",
            "",
            markdown_table(["candidate", "valid error %", "test error %", "best epoch", "status"], table),
            "Best validation error per grid value:",
            "",
            markdown_table(["setting", "value: best valid error %"], best_by_value(group, column)),
            "",
        ]
    work = [
        [
            k,
            str(v["stacks"]),
            str(v["layer_epochs_trained"]),
            str(v["layer_epochs_from_scratch"]),
            f"{100 * v['saved_fraction']:.0f}%",
            f"{v['seconds']:.0f}",
        ]
        for k, v in summary["pretraining"].items()
    ]
    lines += [
        "## Work saved",
        "",
        "Pretraining (one layer of one candidate for one epoch = 1 layer-epoch):",
        "",
        markdown_table(["stacks", "candidates", "layer-epochs", "from scratch", "saved", "seconds"], work),
    ]
    ft = [
        [
            k,
            str(v["candidates"]),
            str(v["candidate_epochs"]),
            str(v["candidate_epochs_without_halving"]),
            f"{100 * (1 - v['candidate_epochs'] / v['candidate_epochs_without_halving']):.0f}%",
            f"{v['seconds']:.0f}",
        ]
        for k, v in summary["finetuning"].items()
    ]
    lines += [
        "Fine-tuning (candidate-epochs; without halving = every candidate to max_epochs):",
        "",
        markdown_table(["column", "candidates", "candidate-epochs", "without halving", "saved", "seconds"], ft),
        "",
    ]
    return "\n".join(lines)

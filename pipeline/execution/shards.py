"""The wide search's shards (pipeline.explore): one pretraining tree (a width and a kind) with the fine-tuning of the
table's columns built on it, run here or as a Dask task, and merged in the one-worker order.

`run_shard` is the one place a shard's work is done: `shard_task` runs it on a Dask worker (from the workspace's
prepared train and valid splits; the test split stays with the coordinator), the coordinator's loop here. Each
column's candidates are selected by pipeline.training.select on validation alone; a shard sends back its rows, its
work entries and the weights of each column's `top` best only, and `merge` orders what the finished shards found as
one worker would, so the coordinator tests the same candidates whichever worker ran which shard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from pipeline.data.arrays import Split
    from pipeline.params import Params
    from pipeline.training.halving import Trial
    from pipeline.training.layer_kind import StackSpec

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
    from pipeline.training.layer_kind import StackSpec

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
    from pipeline.training.search import pretrain_stacks
    from pipeline.training.select import select_and_test

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
    diverged = {name for name, stack in stacks.items() if stack.diverged is not None}
    for column in e.columns:
        ckind, depth = COLUMNS[column]
        if ckind != kind:
            continue
        # SAA-3 is fine-tuned on the masking-0 stacks, SdA-3 on the others, a DBN column on every RBM stack
        chosen = {
            s.name: stacks[s.name].weights for s in specs if kind == "rbm" or (s.noise == 0) == (column == "SAA-3")
        }
        t0 = time.perf_counter()
        selection = select_and_test(
            chosen,
            e.finetune_lr,
            train,
            valid,
            None,  # the test split is read by the coordinator, once every shard's selection is merged
            layers=depth,
            top=e.top,
            device=device,
            diverged=diverged,
            max_epochs=e.max_epochs,
            patience=e.patience,
            rungs=e.rungs,
            eta=e.eta,
            batch_size=v.finetune_for(e.dataset).batch_size,
            seed=params.seed,
            group_size=e.group_size,
            progress=progress,
        )
        trials = selection.trials
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
        ranked = selection.order[: e.top]
        shard.top[column] = [(trials[i], first + i) for i in ranked]
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

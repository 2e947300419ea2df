"""Selection among pretrained candidates, then the test: drop the diverged, fine-tune by successive halving, rank on
validation, and only once that ranking is final measure the test error of the best `top`.

The one flow of the table's fine-tuning and the tools outside `dvc repro`: pipeline/stages/finetune.py per model of a
stack (no test split: it keeps the best TOP = 5 and evaluate tests them), pipeline.explore per column of a shard (its
selection spans shards, so it passes no test split and tests the merged best with `error_rate` after the last shard),
pipeline.extend per model on the grown stack, pipeline.seeds for one selected configuration with a seed (top 1).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import torch

from pipeline.core.errors import StageError
from pipeline.data.arrays import Split
from pipeline.training import halving  # the module, not its names: a test.s patch of halving_search reaches the call
from pipeline.training.halving import Trial
from pipeline.training.mlp_group import MLPGroup


@dataclass
class Selection:
    """What `select_and_test` found. `trials` are every (candidate, rate) pair, in halving_search's order (the
    candidates as given, each with every rate); `order` their indices best first on validation; `test_errors` the
    test error rate (a fraction) of each of the best `top` by index, empty when no test split was given."""

    trials: list[Trial]
    order: list[int]
    test_errors: dict[int, float]

    @property
    def ranks(self) -> list[int]:
        """Each trial's rank on validation (1: the selected), in the trials' order."""
        ranks = [0] * len(self.trials)
        for rank, i in enumerate(self.order, start=1):
            ranks[i] = rank
        return ranks


def select_and_test(
    stacks: Mapping[str, Sequence[tuple[torch.Tensor, ...]]],
    lrs: Sequence[float],
    train: Split,
    valid: Split,
    test: Split | None,
    *,
    layers: int,
    top: int,
    device: torch.device,
    diverged: Collection[str] = (),
    **search,
) -> Selection:
    """Fine-tune each stack of `stacks` (name -> its pretrained layers) not in `diverged`, truncated to its first
    `layers`, with every rate of `lrs` by successive halving on `valid` (`search`: halving_search's keywords), rank
    the trials on validation (Trial.rank_key, ties in trial order: `ranked`), and measure on `test` (when given) the
    error of the best `top`. Only those keep their best weights: every trial's current weights and the others' best
    are dropped (what a Dask worker sends back, and what the memory holds, stays small)."""
    candidates = {name: list(weights[:layers]) for name, weights in stacks.items() if name not in diverged}
    if not candidates:
        raise StageError(
            f"every pretrained candidate diverged ({', '.join(sorted(stacks))}): nothing to fine-tune; lower the "
            "pretraining learning rates"
        )
    trials = halving.halving_search(candidates, lrs, train.x, train.y, valid.x, valid.y, device=device, **search)
    position = {id(t): i for i, t in enumerate(trials)}
    order = [position[id(t)] for t in halving.ranked(trials)]
    best = set(order[:top])
    for i, t in enumerate(trials):
        t.params = []
        if i not in best:
            t.best_params = None
    errors = {} if test is None else {i: error_rate(trials[i], test, device) for i in order[:top]}
    return Selection(trials, order, errors)


def error_rate(trial: Trial, split: Split, device: torch.device) -> float:
    """The error rate on `split` of `trial`'s network at its best validation epoch (the test split: once selection is
    final)."""
    return float(MLPGroup([trial.best_params], [trial.lr], device, head=trial.head).errors(split.x, split.y)[0])

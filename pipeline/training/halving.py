"""Fine-tuning many candidates with successive halving (Jamieson & Talwalkar 2016) and early stopping.

Every candidate (a pretrained stack and a fine-tuning learning rate) starts; at each rung epoch the
candidates still running are ranked by their best validation error so far and only the best 1/eta go
on. A candidate also stops when its validation error has not improved for `patience` epochs, or when its
training loss diverges (too large a learning rate); each keeps the weights of its best epoch. The winner is the
lowest best validation error. Ties, between epochs or candidates, go to the lower validation cross-entropy: on a
small validation split (rect's 200 examples: 0.5% steps) many candidates tie on errors, and the first listed was
a coin toss (rect's SdA-3: three candidates at 1.00%, 1.8-3.3% on test). The test set is never seen here.

Candidates of one shape train in lockstep (`MLPGroup`), up to `group_size` at a time. The minibatch
order of epoch e is drawn from a generator seeded by (seed, e), the same for every candidate and every
grouping. After each group finishes a rung segment the whole search state is saved, so a killed search
resumes from the last finished segment and ends identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from pipeline.common.seeding import make_generator
from pipeline.training.checkpoints import config_hash, data_fingerprint, load_checkpoint, save_checkpoint
from pipeline.training.loop import check_input, check_labels
from pipeline.training.mlp_group import MLPGroup

Phase = Literal["running", "pruned", "patience", "diverged", "finished"]


@dataclass
class Trial:
    name: str
    stack: str
    lr: float
    params: list[torch.Tensor]  # current weights (CPU): hidden W, b pairs, then the head's (MLPGroup)
    head: str = "softmax"  # "joint": a stack whose top is the lab DBN's joint RBM (families/rbm.py)
    best_params: list[torch.Tensor] | None = None
    best_error: float = math.inf
    best_loss: float = math.inf  # validation cross-entropy at the best epoch: breaks ties of best_error
    best_epoch: int = 0
    bad_epochs: int = 0
    epochs: int = 0
    phase: Phase = "running"
    stopped_at: int | None = None  # the epoch a pruned, patience or diverged trial stopped at
    history: dict[str, list[float]] = field(
        default_factory=lambda: {"train_loss": [], "train_error": [], "valid_error": [], "valid_loss": []}
    )

    @property
    def status(self) -> str:
        """ "running", "finished", or how and when it stopped: "pruned at epoch 15" (what the results record)."""
        return self.phase if self.stopped_at is None else f"{self.phase} at epoch {self.stopped_at}"

    def stop(self, phase: Phase, epoch: int) -> None:
        self.phase, self.stopped_at = phase, epoch

    @property
    def rank_key(self) -> tuple[float, float]:
        """Best first: the lower best validation error, then the lower validation cross-entropy at that epoch."""
        return self.best_error, self.best_loss

    def summary(self) -> dict:
        return {
            "name": self.name,
            "stack": self.stack,
            "lr": self.lr,
            "valid_error": self.best_error,
            "valid_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "status": self.status,
            "history": self.history,
        }


def schedule(max_epochs: int, rungs: Sequence[int]) -> list[int]:
    """Segment ends: the rungs below max_epochs, then max_epochs."""
    return sorted({r for r in rungs if 0 < r < max_epochs}) + [max_epochs]


def halving_search(
    stacks: dict[str, list[tuple[torch.Tensor, torch.Tensor]]],
    lrs: Sequence[float],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_valid: torch.Tensor,
    y_valid: torch.Tensor,
    *,
    max_epochs: int,
    patience: int,
    rungs: Sequence[int],
    eta: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    group_size: int = 1,
    checkpoint_path: str | Path | None = None,
    progress: bool = True,
) -> list[Trial]:
    """Fine-tune every (stack, lr) pair under successive halving; returns the trials, in input order."""
    if eta < 2:
        raise ValueError(f"eta={eta}: successive halving keeps 1/eta of the candidates, need eta >= 2")
    trials = [
        Trial(f"{name}-ftlr{lr:g}", name, float(lr), *_initial_params(layers))
        for name, layers in stacks.items()
        for lr in lrs
    ]
    width = trials[0].params[0].shape[1]
    for x, y in ((x_train, y_train), (x_valid, y_valid)):
        check_input(x, width=width, unit_interval=False, model="fine-tuning search", epoch=1)
        check_labels(y, len(x), trials[0].params[-1].shape[0], model="fine-tuning search")
    data = [t.to(device) for t in (x_train, y_train, x_valid, y_valid)]
    ends = schedule(max_epochs, rungs)
    run_hash = config_hash(
        [t.name for t in trials],
        [data_fingerprint(p) for t in trials for p in t.params],
        max_epochs,
        patience,
        ends,
        eta,
        batch_size,
        seed,
        device.type,
        *(data_fingerprint(t.float()) for t in data),
        "valid-loss-ties",
        "typed-phase",  # a checkpoint of the string-status trials does not resume
    )
    seg0, running, done = 0, None, []
    state = (
        None
        if checkpoint_path is None
        else load_checkpoint(checkpoint_path, run_hash, ("trials", "seg", "running", "done"))
    )
    if state is not None:  # resume: the segment in progress, its running candidates, its finished groups
        trials = [Trial(**t) for t in state["trials"]]
        seg0, running, done = state["seg"], state["running"], state["done"]
    by_name = {t.name: t for t in trials}

    def save(seg: int, running: list[str], done: list[int]) -> None:
        if checkpoint_path is not None:
            state = {
                "config_hash": run_hash,
                "trials": [dataclasses.asdict(t) for t in trials],
                "seg": seg,
                "running": running,
                "done": done,
            }
            save_checkpoint(checkpoint_path, state)

    bar = tqdm(total=len(trials) * max_epochs, desc="fine-tuning search", disable=not progress, leave=False)
    for seg in range(seg0, len(ends)):
        start, end = (ends[seg - 1] if seg else 0), ends[seg]
        if running is None:
            running = [t.name for t in trials if t.phase == "running"]
        size = max(1, group_size)
        for g in range(0, len(running), size):
            if g not in done:
                group = [by_name[n] for n in running[g : g + size]]
                _train_segment(group, start, end, data, patience, batch_size, seed, device, bar)
                done = [*done, g]
                save(seg, running, done)
        alive = [by_name[n] for n in running if by_name[n].phase == "running"]
        if end < max_epochs:  # a rung: keep the best 1/eta
            keep = max(1, math.ceil(len(alive) / eta))
            for t in sorted(alive, key=lambda t: (*t.rank_key, trials.index(t)))[keep:]:
                t.stop("pruned", end)
        running, done = None, []
        save(seg + 1, [t.name for t in trials if t.phase == "running"], [])
    for t in trials:
        if t.phase == "running":
            t.phase = "finished"
    bar.close()
    return trials


def ranked(trials: Sequence[Trial]) -> list[Trial]:
    """Best first: by best validation error, then validation cross-entropy, then the order the candidates were given."""
    order = {id(t): i for i, t in enumerate(trials)}
    return sorted(trials, key=lambda t: (*t.rank_key, order[id(t)]))


def best_trial(trials: Sequence[Trial]) -> Trial:
    return ranked(trials)[0]


def _initial_params(layers: list[tuple[torch.Tensor, ...]], n_classes: int = 10) -> tuple[list[torch.Tensor], str]:
    """A stack's layers and the head's starting weights: a zero softmax layer on a stack of (W, b) pairs, or the
    pretrained joint top RBM (W, b, U, e) itself; and which head that is."""
    params = [p.detach().float().cpu().clone() for layer in layers for p in layer]
    if len(layers[-1]) == 4:
        return params, "joint"
    return params + [torch.zeros(n_classes, layers[-1][0].shape[0]), torch.zeros(n_classes)], "softmax"


@torch.no_grad()
def _validate(model: MLPGroup, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> tuple[list[float], list[float]]:
    """Every candidate's validation error and mean cross-entropy, in one pass (as MLPGroup.errors chunks it)."""
    import torch.nn.functional as F

    chunk = chunk if model.head == "softmax" else chunk // 8
    sums = torch.zeros(2, model.size, dtype=torch.float64, device=x.device)
    for xb, yb in zip(x.split(chunk), y.split(chunk), strict=True):
        logits = model(xb)
        k, m, n_classes = logits.shape
        nll = F.cross_entropy(logits.reshape(k * m, n_classes), yb.repeat(k), reduction="none").view(k, m)
        sums[0] += (logits.argmax(2) != yb).sum(1).double()
        sums[1] += nll.sum(1).double()
    return (sums[0] / len(x)).tolist(), (sums[1] / len(x)).tolist()


def _train_segment(group: list[Trial], start, end, data, patience, batch_size, seed, device, bar) -> None:
    x_train, y_train, x_valid, y_valid = data
    model = MLPGroup([t.params for t in group], [t.lr for t in group], device, head=group[0].head)
    alive = list(range(len(group)))  # positions in `group` of the candidates still in `model`
    for epoch in range(start + 1, end + 1):
        perm = torch.randperm(len(x_train), generator=make_generator(seed, "finetune", epoch), device="cpu").to(device)
        sums = torch.zeros(2, len(alive), dtype=torch.float64, device=device)
        for idx in perm.split(batch_size):
            loss, err = model.step(x_train[idx], y_train[idx])
            sums += torch.stack([loss, err]).double() * len(idx)
        sums = (sums / len(x_train)).tolist()
        valid, valid_loss = _validate(model, x_valid, y_valid)
        stop = []
        for j, i in enumerate(alive):
            t = group[i]
            t.epochs = epoch
            if not math.isfinite(sums[0][j]):  # a too-large learning rate: this candidate stops, the search goes on
                t.stop("diverged", epoch)
                stop.append(j)
                bar.update(1)
                continue
            t.history["train_loss"].append(sums[0][j])
            t.history["train_error"].append(sums[1][j])
            t.history["valid_error"].append(valid[j])
            t.history["valid_loss"].append(valid_loss[j])
            if valid[j] < t.best_error:
                t.best_error, t.best_loss, t.best_epoch, t.bad_epochs = valid[j], valid_loss[j], epoch, 0
                t.best_params = model.candidate_params(j)
            else:
                if valid[j] == t.best_error and valid_loss[j] < t.best_loss:  # a tie: the lower loss is kept, but
                    t.best_loss, t.best_epoch = valid_loss[j], epoch  # patience counts improvements of the error only
                    t.best_params = model.candidate_params(j)
                t.bad_epochs += 1
                if t.bad_epochs >= patience:
                    t.stop("patience", epoch)
                    stop.append(j)
            bar.update(1)
        if stop:
            for j in stop:
                if group[alive[j]].phase != "diverged":
                    group[alive[j]].params = model.candidate_params(j)
            kept = [j for j in range(len(alive)) if j not in stop]
            alive = [alive[j] for j in kept]
            if not alive:
                return
            model.keep(torch.tensor(kept, device=device))
    for j, i in enumerate(alive):
        group[i].params = model.candidate_params(j)

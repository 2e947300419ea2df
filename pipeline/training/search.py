"""Layer-wise pretraining of many candidate stacks as a tree of shared prefixes.

A candidate stack is (kind, hidden units, learning rate, epochs per layer, masking level). Nothing is
computed twice:
- candidates that differ only in their epochs share their first layer: it is trained once, to the
  largest epoch count, and read at every smaller count from a snapshot;
- a shallower model is a prefix of a deeper one (DBN-1 is DBN-3's first layer): each candidate is
  trained to `layers` layers and a model of depth k reads the first k;
- candidates of one shape train in lockstep groups (`pipeline.training.lockstep`) of up to `group_size`,
  one batched product for all: worth it on a GPU, group_size 1 on a CPU.
Layer j > 0 trains on the clean codes of the candidate's own layers < j. Every layer-group is run by
`run_epochs`, so it is checkpointed each epoch and an interrupted search resumes where it stopped.
A candidate whose training or validation loss stops being finite or passes DIVERGED_FACTOR times its untrained
loss (about log 2 per input) has diverged (too large a rate): it is frozen at its initial weights, marked
`status="diverged"` with the layer, epoch and loss, and gets no further layers; the others go on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipeline.models.dense_ae import init_range, uniform_weights
from pipeline.training.checkpoints import config_hash, data_fingerprint
from pipeline.training.lockstep import RBMGroup, TiedAEGroup
from pipeline.training.loop import History, check_input, run_epochs
from pipeline.utils import make_generator

CHUNK_ROWS = 4096  # rows gathered and corrupted at once
DIVERGED_FACTOR = 10.0  # a loss above this many times the untrained layer's validation loss has diverged
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackSpec:
    """One pretraining candidate. kind: "ae" (autoencoder layers; noise > 0 makes them denoising) or "rbm"."""

    kind: str
    hidden: int
    lr: float
    epochs: int
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("ae", "rbm") or self.hidden < 1 or self.lr <= 0 or self.epochs < 1:
            raise ValueError(f"bad stack candidate {self}")
        if not 0 <= self.noise < 1 or (self.kind == "rbm" and self.noise):
            raise ValueError(f"bad noise level in {self}")

    @property
    def name(self) -> str:
        nu = f"-nu{self.noise:g}" if self.kind == "ae" else ""
        return f"h{self.hidden}-lr{self.lr:g}-e{self.epochs}{nu}"

    @property
    def prefix(self) -> tuple:
        """What the first layer depends on: candidates with the same prefix share it."""
        return (self.kind, self.hidden, self.lr, self.noise)


@dataclass
class Stack:
    spec: StackSpec
    weights: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # encoder (W (out, in), b), CPU
    visible_biases: list[torch.Tensor] = field(default_factory=list)
    history: list[History] = field(default_factory=list)  # per layer: train_loss, valid_loss per epoch
    diverged: dict | None = None  # where training diverged: layer, epoch, loss (name), value, limit

    @property
    def status(self) -> str:
        return "ok" if self.diverged is None else "diverged"


@dataclass
class SearchCost:
    """Layer-epochs trained (one layer of one candidate for one epoch = 1) against running every candidate alone."""

    trained: int = 0
    from_scratch: int = 0

    @property
    def saved_fraction(self) -> float:
        return 1 - self.trained / self.from_scratch if self.from_scratch else 0.0


@dataclass
class _Node:
    """One layer of one or more candidates that are identical up to this layer."""

    specs: list[StackSpec]  # the candidates this node serves
    epochs: int  # epochs trained
    snapshots: list[int]  # epochs at which the weights are kept (one per distinct candidate epoch count)
    parent: _Node | None = None
    parent_epoch: int | None = None
    result: dict[int, tuple] = field(default_factory=dict)  # epoch -> (W, b, c)
    history: History = field(default_factory=dict)
    diverged: dict | None = None  # epoch, loss, value, limit: the epoch it diverged at (see `Stack.diverged`)


class _Snapshots:
    """The weights at the snapshot epochs, the noise generator's state and the candidates that diverged (by
    index in the group), checkpointed with the group (run_epochs' `extra`; run_epochs saves the order generator)."""

    def __init__(self, noise: torch.Generator):
        self.saved: dict[int, dict[str, torch.Tensor]] = {}
        self.diverged: dict[int, dict] = {}
        self.noise = noise

    def state_dict(self) -> dict:
        return {"saved": self.saved, "noise": self.noise.get_state(), "diverged": self.diverged}

    def load_state_dict(self, state: dict) -> None:
        self.saved = state["saved"]
        self.noise.set_state(state["noise"])
        self.diverged = state.get("diverged", {})


def propagate(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sigmoid(x W^T + b): the code (autoencoder) or P(h=1|v) (RBM) of a sigmoid layer."""
    return torch.addmm(b.to(x.device), x, w.to(x.device).T).sigmoid_()


def initial_weights(kind: str, layer: int, shape: tuple[int, int], seed: int) -> torch.Tensor:
    """The same starting weights for every candidate of a layer: U(+-4 sqrt(6/(in+out))) for autoencoders
    (as `DenseAutoencoder`), N(0, 0.01) for RBMs (as `RBM`)."""
    if kind == "rbm":
        return torch.randn(shape, generator=make_generator(seed, "init", "rbm", layer)) * 0.01
    r = init_range(shape[1], shape[0], "sigmoid")
    return uniform_weights(shape, r, make_generator(seed, "init", "autoencoder", layer))


def pretrain_stacks(
    specs: Sequence[StackSpec],
    layers: int,
    x_train: torch.Tensor,
    x_valid: torch.Tensor,
    *,
    seed: int,
    batch_size: int,
    device: torch.device,
    group_size: int = 1,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Stack], SearchCost]:
    """Pretrain `layers` layers of every candidate; returns {spec.name: Stack} and the work done."""
    specs = list(dict.fromkeys(specs))
    for x in (x_train, x_valid):
        check_input(x, width=x_train.shape[1], unit_interval=True, model="stack search", layer=0, epoch=1)
    data = (x_train.to(device, torch.float32), x_valid.to(device, torch.float32))
    cost = SearchCost(from_scratch=sum(s.epochs for s in specs) * layers)
    # Layer 0: one node per prefix, trained to the largest epoch count of its candidates.
    by_prefix: dict[tuple, list[StackSpec]] = {}
    for s in specs:
        by_prefix.setdefault(s.prefix, []).append(s)
    level = [_Node(ss, max(s.epochs for s in ss), sorted({s.epochs for s in ss})) for ss in by_prefix.values()]
    stacks = {s.name: Stack(s) for s in specs}
    for layer in range(layers):
        for group in _groups(level, group_size):
            cost.trained += sum(n.epochs for n in group)
            _train_group(group, layer, data, seed, batch_size, device, checkpoint_dir, progress)
        for node in level:
            for s in node.specs:
                stack = stacks[s.name]
                stack.history.append({k: v[: s.epochs] for k, v in node.history.items()})
                # Layer 0 serves several epoch counts: a candidate read before the divergence is sound.
                if node.diverged is not None and node.diverged["epoch"] <= s.epochs:
                    stack.diverged = {"layer": layer, **node.diverged}
                    continue
                w, b, c = node.result[s.epochs if layer == 0 else node.epochs]
                stack.weights.append((w, b))
                stack.visible_biases.append(c)
        # Above layer 0 every candidate epoch count is its own branch; a diverged candidate gets no more layers.
        level = [
            _Node(alive, e, [e], parent=node, parent_epoch=e)
            for node in level
            for e in sorted({s.epochs for s in node.specs})
            if (alive := [s for s in node.specs if s.epochs == e and stacks[s.name].diverged is None])
        ]
    return stacks, cost


def _groups(nodes: list[_Node], size: int) -> list[list[_Node]]:
    """Nodes of one kind, width and epoch count, in groups of at most `size`, in a fixed order."""
    by_shape: dict[tuple, list[_Node]] = {}
    for n in nodes:
        by_shape.setdefault((n.specs[0].kind, n.specs[0].hidden, n.epochs), []).append(n)
    return [ns[i : i + size] for ns in by_shape.values() for i in range(0, len(ns), max(1, size))]


def _node_name(node: _Node, layer: int) -> str:
    kind, hidden, lr, noise = node.specs[0].prefix
    base = f"{kind}-h{hidden}-lr{lr:g}" + (f"-nu{noise:g}" if kind == "ae" else "")
    return f"{base}@{layer}" if layer == 0 else f"{base}-e{node.epochs}@{layer}"


def _codes(node: _Node, layer: int, data: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean input of `node`'s layer: the data through the candidate's own lower layers."""
    chain, n = [], node
    while n.parent is not None:
        chain.append(n.parent.result[n.parent_epoch])
        n = n.parent
    out = []
    for x in data:
        for w, b, _ in reversed(chain):
            x = propagate(x, w, b)
        out.append(x)
    return out[0], out[1]


def _train_group(group, layer, data, seed, batch_size, device, checkpoint_dir, progress) -> None:
    kind, epochs = group[0].specs[0].kind, group[0].epochs
    inputs = [_codes(n, layer, data) for n in group]
    x = torch.stack([i[0] for i in inputs]) if layer else data[0].unsqueeze(0)
    xv = torch.stack([i[1] for i in inputs]) if layer else data[1].unsqueeze(0)
    # A node is named by what it depends on: its prefix (layer 0), plus its epochs above layer 0. Its noise
    # stream follows from the names, so a candidate does not depend on which other epoch counts are searched.
    names = [_node_name(n, layer) for n in group]
    w0 = initial_weights(kind, layer, (group[0].specs[0].hidden, x.shape[-1]), seed).to(device)
    lrs = [n.specs[0].lr for n in group]
    model = RBMGroup(w0, lrs) if kind == "rbm" else TiedAEGroup(w0, lrs, [n.specs[0].noise for n in group])
    order = make_generator(seed, "pretrain", kind, layer, device=device)
    noise = make_generator(seed, "noise", layer, *names, device=device)
    valid_in = xv if kind == "rbm" else model.corrupt(xv, make_generator(seed, "valid", layer, device=device))
    snaps = _Snapshots(noise)
    keep = {e for n in group for e in n.snapshots}
    chunk = batch_size * max(1, CHUNK_ROWS // batch_size)
    limits = DIVERGED_FACTOR * (model.loss(valid_in) if kind == "rbm" else model.loss(valid_in, xv))
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def train_epoch(epoch: int) -> dict[str, float]:
        for i in snaps.diverged:  # frozen (after a resume too: the rates are not checkpointed)
            model.lr[i] = 0.0
        perm = torch.randperm(x.shape[1], generator=order, device=device)
        total = torch.zeros(len(group), dtype=torch.float64, device=device)
        for start in range(0, len(perm), chunk):
            clean = x[:, perm[start : start + chunk]]
            noisy = None if kind == "rbm" else model.corrupt(clean, noise)
            for s in range(0, clean.shape[1], batch_size):
                batch = clean[:, s : s + batch_size]
                # step returns the mean loss per example of the minibatch: weighted by its rows, the epoch's sum
                loss = model.step(batch, noise) if kind == "rbm" else model.step(batch, noisy[:, s : s + batch_size])
                total += loss * batch.shape[1]
        valid = model.loss(valid_in) if kind == "rbm" else model.loss(valid_in, xv)
        metrics = {}
        for i, values in enumerate(zip(total / x.shape[1], valid, strict=True)):
            if i in snaps.diverged:
                continue
            losses = {"train_loss": float(values[0]), "valid_loss": float(values[1])}
            bad = [k for k, v in losses.items() if not math.isfinite(v) or v > float(limits[i])]
            if bad:
                value = losses[bad[0]]
                snaps.diverged[i] = {"epoch": epoch, "loss": bad[0], "limit": float(limits[i]),
                                     "value": value if math.isfinite(value) else str(value)}  # fmt: skip
                log.warning("%s layer %d diverged at epoch %d: %s %.4g > %.4g (%.0fx the untrained loss); frozen",
                            names[i], layer, epoch, bad[0], value, limits[i], DIVERGED_FACTOR)  # fmt: skip
                for key, tensor in model.state_dict().items():  # finite again, so the others' checks still hold
                    tensor[i] = initial[key][i]
                model.lr[i] = 0.0
            metrics |= {f"{i}.{k}": v for k, v in losses.items() if math.isfinite(v)}
        if epoch in keep:
            snaps.saved[epoch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return metrics

    run_hash = config_hash(
        kind, names, epochs, batch_size, seed, device.type, data_fingerprint(x), data_fingerprint(xv)
    )
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"layer{layer}-{run_hash}.pt"
    history = run_epochs(
        train_epoch, name=f"{names[0]}+{len(group) - 1}" if len(group) > 1 else names[0], layer=layer,
        module=model, generator=order, epochs=epochs, extra=snaps, checkpoint_path=path,
        config_hash=run_hash, on_epoch=None, progress=progress,
    )  # fmt: skip
    for i, node in enumerate(group):
        node.history = {key: history.get(f"{i}.{key}", []) for key in ("train_loss", "valid_loss")}
        node.diverged = snaps.diverged.get(i)
        for e in node.snapshots:
            st = snaps.saved[e]
            node.result[e] = (st["weight"][i], st["hidden_bias"][i], st["visible_bias"][i])

"""Layer-wise pretraining of many candidate stacks as a tree of shared prefixes.

A candidate stack is (kind, hidden units, learning rate, epochs per layer, noise level). Nothing is
computed twice:
- candidates that differ only in their epochs share their first layer: it is trained once, to the
  largest epoch count, and read at every smaller count from a snapshot;
- a shallower model is a prefix of a deeper one (DBN-1 is DBN-3's first layer): each candidate is
  trained to `layers` layers and a model of depth k reads the first k;
- candidates of one shape train in lockstep groups (a kind's `LayerGroup`, pipeline/training/layer_kind.py) of up to `group_size`,
  one batched product for all: worth it on a GPU, group_size 1 on a CPU.
Layer j > 0 trains on the clean codes of the candidate's own layers < j. Every layer-group is run by
`layer_group.train_layers` (checkpointed each epoch: an interrupted search resumes where it stopped). A candidate
whose loss diverges (layer_group.DIVERGED_FACTOR) is frozen there, marked `status="diverged"` with the layer,
epoch and loss, and gets no further layers; the others go on. A stack with `top="joint"` (RBMs only: the lab's
DBN, families/rbm.py) makes its last layer a joint RBM over (the layer below, the label): its layers below are
the plain stack's, bit for bit (the same names, so the same seeds), and its last layer is (W, b, U, e).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipeline.training.layer_group import train_layers
from pipeline.training.layer_kind import StackSpec
from pipeline.training.loop import History, check_input, check_labels
from pipeline.training.stack import propagate


@dataclass
class Stack:
    spec: StackSpec
    weights: list[tuple[torch.Tensor, ...]] = field(default_factory=list)  # encoder (W (out, in), b), CPU; joint: +U, e
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
    result: dict[int, tuple] = field(default_factory=dict)  # epoch -> (W, b, c), then (U, e) for a joint top
    history: History = field(default_factory=dict)
    diverged: dict | None = None  # epoch, loss, value, limit: the epoch it diverged at (see `Stack.diverged`)


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
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict[str, Stack], SearchCost]:
    """Pretrain `layers` layers of every candidate; returns {spec.name: Stack} and the work done.

    `labels` (y_train, y_valid, int64 classes) are needed by candidates with a joint top, and read by them only."""
    specs = list(dict.fromkeys(specs))
    for x in (x_train, x_valid):
        check_input(x, width=x_train.shape[1], unit_interval=True, model="stack search", layer=0, epoch=1)
    if any(s.top == "joint" for s in specs):
        if labels is None:
            raise ValueError("candidates with a joint top need the labels (y_train, y_valid)")
        for x, y in zip((x_train, x_valid), labels, strict=True):
            check_labels(y, len(x), 10, model="stack search")
    data = (x_train.to(device, torch.float32), x_valid.to(device, torch.float32))
    cost = SearchCost(from_scratch=sum(sum(s.schedule(k)[1] for k in range(layers)) for s in specs))
    # Layer 0: one node per prefix, trained to the largest epoch count of its candidates.
    by_prefix: dict[tuple, list[StackSpec]] = {}
    for s in specs:
        by_prefix.setdefault(s.prefix, []).append(s)
    level = [_Node(ss, max(s.epochs for s in ss), sorted({s.epochs for s in ss})) for ss in by_prefix.values()]
    stacks = {s.name: Stack(s) for s in specs}
    for layer in range(layers):
        for group in _groups(level, group_size):
            cost.trained += sum(n.epochs for n in group)
            joint = layer == layers - 1 and group[0].specs[0].top == "joint"
            _train_group(
                group, layer, data, seed, batch_size, device, checkpoint_dir, progress, labels if joint else None
            )
        for node in level:
            for s in node.specs:
                stack = stacks[s.name]
                epochs = s.schedule(layer)[1]  # node.epochs above layer 0
                stack.history.append({k: v[:epochs] for k, v in node.history.items()})
                # Layer 0 serves several epoch counts: a candidate read before the divergence is sound.
                if node.diverged is not None and node.diverged["epoch"] <= epochs:
                    stack.diverged = {"layer": layer, **node.diverged}
                    continue
                w, b, c, *label = node.result[epochs]
                stack.weights.append((w, b, *label))
                stack.visible_biases.append(c)
        # Above layer 0 every candidate epoch count (and schedule of the layers above) is its own branch, on the
        # snapshot of its epochs below; a diverged candidate gets no more layers.
        level = [
            _Node(alive, up[1], [up[1]], parent=node, parent_epoch=e)
            for node in level
            for e, up in sorted({(s.schedule(layer)[1], s.schedule(layer + 1)) for s in node.specs})
            if (
                alive := [
                    s
                    for s in node.specs
                    if (s.schedule(layer)[1], s.schedule(layer + 1)) == (e, up) and stacks[s.name].diverged is None
                ]
            )
        ]
    return stacks, cost


def _groups(nodes: list[_Node], size: int) -> list[list[_Node]]:
    """Nodes of one kind, width and epoch count, in groups of at most `size`, in a fixed order."""
    by_shape: dict[tuple, list[_Node]] = {}
    for n in nodes:
        by_shape.setdefault((n.specs[0].kind, n.specs[0].hidden, n.specs[0].top, n.epochs), []).append(n)
    return [ns[i : i + size] for ns in by_shape.values() for i in range(0, len(ns), max(1, size))]


def _node_name(node: _Node, layer: int, joint: bool) -> str:
    """What a node's layer depends on: its prefix (layer 0), plus its epochs above layer 0, and whether it is a joint
    top (a joint stack's lower layers are named, so seeded, as the plain stack's)."""
    spec = node.specs[0]  # its prefix: every spec of the node shares kind, width, rate and levels (and above layer
    # 0 the first layer's epochs and the schedule above)
    base = f"{spec.kind}-h{spec.hidden}-lr{spec.lr:g}{spec.levels}"
    name = f"{base}@{layer}" if layer == 0 else f"{base}-e{spec.epochs}{spec.upper_name}@{layer}"
    return name + ("-joint" if joint else "")


def _codes(node: _Node, layer: int, data: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean input of `node`'s layer: the data through the candidate's own lower layers."""
    chain, n = [], node
    while n.parent is not None:
        chain.append(n.parent.result[n.parent_epoch])
        n = n.parent
    out = []
    for x in data:
        for w, b, *_ in reversed(chain):
            x = propagate(x, w, b)
        out.append(x)
    return out[0], out[1]


def _train_group(group, layer, data, seed, batch_size, device, checkpoint_dir, progress, labels) -> None:
    """Train one lockstep group of nodes (the same kind, width and epochs) on their own inputs; fill in each node's
    history, divergence and snapshots. Its noise stream follows from the names, so a candidate does not depend on
    which other epoch counts are searched."""
    spec = group[0].specs[0]
    inputs = [_codes(n, layer, data) for n in group]
    x = torch.stack([i[0] for i in inputs]) if layer else data[0].unsqueeze(0)
    xv = torch.stack([i[1] for i in inputs]) if layer else data[1].unsqueeze(0)
    results = train_layers(
        spec.kind,
        spec.hidden,
        [n.specs[0].schedule(layer)[0] for n in group],
        [n.specs[0].noise for n in group],
        [_node_name(n, layer, labels is not None) for n in group],
        x,
        xv,
        layer=layer,
        epochs=group[0].epochs,
        keep={e for n in group for e in n.snapshots},
        seed=seed,
        batch_size=batch_size,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        labels=labels,
        options=[dict(n.specs[0].options) for n in group],
    )
    for node, r in zip(group, results, strict=True):
        node.history, node.diverged = r.history, r.diverged
        node.result = {e: r.snapshots[e] for e in node.snapshots}

"""The layer-kind interface: what one pretraining layer of the table's stacks is, one file per kind in `kinds/`.

A kind is a module `pipeline/training/kinds/<name>.py` defining `KIND = LayerKind(...)`; `vincent.stacks.<stack>.kind`
names it. The pretraining search (`layer_group.train_layers`) knows no kind: it asks the kind for its starting
weights and a `LayerGroup` of K candidates, and runs every kind through the same four calls (corrupt, step, loss,
state). A kind builds on a family (`families/`: the autoencoders, the RBMs), its line in `pipeline.params.stacks.KINDS`
says which, and what its stacks may set (a noise grid, a joint top, its own options). Only the pretraining stages of
a kind's stacks declare its file and its family's (dvc.yaml's `pretrain` items, written by `python -m pipeline.wire`),
so an edit to one kind reruns its own stacks and nothing else.

A new kind: a file like `kinds/cae.py` (a family's group with its own `step`, tested against autograd as
tests/test_kinds.py does), its line in KINDS, a stack in params.yaml, and `python -m pipeline.wire`.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.params import StackParams
from pipeline.params.stacks import KINDS

KINDS_DIR = Path(__file__).with_name("kinds")
TOPS = ("softmax", "joint")
Options = Mapping[str, float]  # one candidate's own hyperparameters (StackSpec.options)


def per_candidate(values: Sequence[float] | torch.Tensor, k: int, device: torch.device) -> torch.Tensor:
    """One value per candidate as a (K,) float tensor on `device`."""
    t = torch.as_tensor(values, dtype=torch.float32, device=device).reshape(-1)
    if t.numel() != k:
        raise ValueError(f"need one value per candidate ({k}), got {t.numel()}")
    return t


class LayerGroup(nn.Module):
    """K layers d -> h of one shape, one candidate per learning rate: weights (K, h, d) from the same w0, zero biases.

    A kind's group overrides `step` and `loss` (and `corrupt` if it trains on corrupted inputs); `STATE` names the
    buffers a pretrained layer keeps, encoder (W, b) first, in the order the stacks store them."""

    STATE: tuple[str, ...] = ("weight", "hidden_bias", "visible_bias")

    def __init__(self, w0: torch.Tensor, lr: Sequence[float]):
        super().__init__()
        h, d = w0.shape
        k = len(lr)
        self.register_buffer("weight", w0.detach().float().expand(k, h, d).clone())
        self.register_buffer("hidden_bias", torch.zeros(k, h, device=w0.device))
        self.register_buffer("visible_bias", torch.zeros(k, d, device=w0.device))
        self.lr = per_candidate(lr, k, w0.device)

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(K or 1, n, d) -> (K, n, h) codes: sigmoid(x W^T + b), P(h = 1 | v) for an RBM."""
        return torch.baddbmm(self.hidden_bias.unsqueeze(1), x.expand(self.size, -1, -1), self.weight.mT).sigmoid_()

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The input the layer trains on from clean x (K or 1, m, d): x itself unless the kind corrupts it."""
        return x

    def step(
        self, x: torch.Tensor, x_in: torch.Tensor, generator: torch.Generator, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One update on clean x from x_in = corrupt(x) (and labels y for a joint top); the (K,) loss before it."""
        raise NotImplementedError

    def loss(self, x_in: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(K,) validation loss of x from x_in (mean over examples): what divergence and the curves read."""
        raise NotImplementedError


@dataclass(frozen=True)
class LayerKind:
    """A pretraining layer kind: `group(w0, lrs, noise, top, options)` builds K candidates (each with its learning rate,
    noise level and options: its own hyperparameters, KINDS' `options`) from the starting weights
    `initial_weights(layer, (out, in), seed)`. What its stacks may set (a noise grid, a joint top) is its line of
    `pipeline.params.stacks.KINDS`, read when params.yaml is, before anything trains."""

    name: str
    group: Callable[[torch.Tensor, Sequence[float], Sequence[float], str, Sequence[Options]], LayerGroup]
    initial_weights: Callable[[int, tuple[int, int], int], torch.Tensor]


@dataclass(frozen=True)
class StackSpec:
    """One pretraining candidate: `layers` of a kind (a file of kinds/) with `hidden` units, trained at `lr` for
    `epochs` per layer, at noise level `noise` (for a kind that takes one); top "joint": its last layer is a joint RBM
    over (the layer below, the label), for a kind whose `tops` allow it. `upper` (lr, epochs): the layers above the
    first train on that schedule instead (None: lr and epochs for every layer)."""

    kind: str
    hidden: int
    lr: float
    epochs: int
    noise: float = 0.0
    top: str = "softmax"
    options: tuple[tuple[str, float], ...] = ()  # the kind's own hyperparameters, (name, value) sorted by name
    upper: tuple[float, int] | None = None

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.lr <= 0 or self.epochs < 1:
            raise ValueError(f"bad stack candidate {self}")
        if self.upper is not None and (self.upper[0] <= 0 or self.upper[1] < 1):
            raise ValueError(f"bad schedule of the layers above the first in {self}")
        if not 0 <= self.noise < 1:
            raise ValueError(f"bad noise level in {self}")
        traits = KINDS.get(self.kind)
        if traits is None:
            raise ValueError(f"bad kind in {self}: expected one of {sorted(KINDS)}")
        if (self.noise and traits.noise is None) or self.top not in TOPS or self.top not in traits.tops:
            raise ValueError(f"bad noise level or top in {self}: kind {self.kind!r} takes {traits}")
        if [k for k, _ in self.options] != sorted(traits.options):
            raise ValueError(f"bad options in {self}: kind {self.kind!r} takes {sorted(traits.options)}, sorted")

    @property
    def name(self) -> str:
        joint = "-joint" if self.top == "joint" else ""
        return f"h{self.hidden}-lr{self.lr:g}-e{self.epochs}{self.levels}{self.upper_name}{joint}"

    @property
    def upper_name(self) -> str:
        """The name's part for the layers above the first: "-up0.01x100" on a schedule of their own, else nothing."""
        return "" if self.upper is None else f"-up{self.upper[0]:g}x{self.upper[1]}"

    def schedule(self, layer: int) -> tuple[float, int]:
        """(learning rate, epochs) of layer `layer` (0 is the first)."""
        return (self.lr, self.epochs) if layer == 0 or self.upper is None else self.upper

    @property
    def levels(self) -> str:
        """The name's part for the kind's own levels: "-nu0.25" for a kind that takes noise, then each option's."""
        nu = f"-nu{self.noise:g}" if KINDS[self.kind].noise else ""
        return nu + "".join(f"-{k}{v:g}" for k, v in self.options)

    @property
    def prefix(self) -> tuple:
        """What the first layer depends on: candidates with the same prefix share it."""
        return (self.kind, self.hidden, self.lr, self.noise, self.top, self.options)

    def hparams(self) -> dict:
        """The candidate's hyperparameters as its stage records them (options only for a kind that has some)."""
        out = dataclasses.asdict(self)
        if not self.options:
            del out["options"]
        else:
            out["options"] = dict(self.options)
        if self.upper is None:
            del out["upper"]
        else:
            out["upper"] = {"lr": self.upper[0], "epochs": self.upper[1]}
        return out


def stack_specs(hidden: list[int], s: StackParams) -> list[StackSpec]:
    """Every pretraining candidate of a stack (`VincentParams.stack_for`: a row's own grid) with vincent.pretrain.hidden
    units per layer: hidden x lr x noise x epochs, in a fixed order."""
    names = sorted(s.options)
    upper = None if s.upper is None else (s.upper.lr, s.upper.epochs)
    return [
        StackSpec(s.kind, h, lr, e, nu, s.top, tuple(zip(names, values, strict=True)), upper)
        for h, lr, nu, values, e in itertools.product(
            hidden, s.lr, s.noise, itertools.product(*(s.options[k] for k in names)), s.epochs
        )
    ]


def kind_files() -> list[str]:
    """The kinds there are code for: the modules of `kinds/`."""
    return sorted(p.stem for p in KINDS_DIR.glob("*.py") if not p.stem.startswith("_"))


def load_kind(name: str) -> LayerKind:
    """The kind `name` (its module's KIND); ValueError naming the kinds there are when there is none."""
    if name not in kind_files():
        raise ValueError(f"unknown layer kind {name!r}; expected one of {kind_files()} (files of {KINDS_DIR})")
    return importlib.import_module(f"pipeline.training.kinds.{name}").KIND

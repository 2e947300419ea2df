"""The pretraining stacks (vincent.stacks) and the models, the table's columns, built on them (vincent.models)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_serializer, model_validator

from pipeline.params.base import IntGrid, NoiseLevel, PositiveGrid, PositiveInt, Section, describe


class UpperSchedule(Section):
    """One learning rate and epoch count for every layer above the first (a stack's `upper`)."""

    lr: Annotated[float, Field(gt=0)]
    epochs: PositiveInt


@dataclass(frozen=True)
class KindTraits:
    """A layer kind's family (the file of pipeline/training/families/ it builds on) and what its stacks may set:
    `noise`, what its noise grid means (None: it takes none, and its candidates' names carry none); `tops`, the tops
    it may have; `options`, the names of its own hyperparameters, each a grid every stack of the kind sets."""

    family: str
    noise: str | None = None
    tops: tuple[str, ...] = ("softmax",)
    options: tuple[str, ...] = ()


# The pretraining layer kinds: each is the file pipeline/training/kinds/<kind>.py (tests/test_kinds.py keeps the two
# in step); a new kind adds its line here.
KINDS = {
    "rbm": KindTraits("rbm", tops=("softmax", "joint")),  # Bernoulli RBMs by CD-1 (DBN); joint: the lab's DBN top
    "ae": KindTraits("autoencoder", noise="masking"),  # tied sigmoid autoencoders: SAA with noise 0, SdA with masking
    # contractive autoencoders (Rifai et al. 2011): the Frobenius norm of the encoder's Jacobian, weighted
    "cae": KindTraits("autoencoder", options=("contraction",)),
    # denoising autoencoders with salt-and-pepper noise and emphasis (Vincent et al. 2010): corrupted components'
    # reconstruction error weighted alpha, the others beta
    "dae_sp": KindTraits("autoencoder", noise="salt_and_pepper", options=("alpha", "beta")),
}


class StackParams(Section):
    """One pretraining stage (pretrain@<stack>): every candidate of its grid, as a tree of shared prefixes."""

    kind: str
    """a key of KINDS (pipeline/training/kinds/<kind>.py): rbm, Bernoulli RBMs by CD-1 (DBN); ae, tied sigmoid
    autoencoders (SAA with noise 0, SdA with masking)"""
    layers: PositiveInt
    lr: PositiveGrid
    epochs: IntGrid
    """epochs per layer; the shorter runs' first layers are snapshots of the longest"""
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] = [0.0]
    """noise levels, for a kind that takes noise (ae: masking levels nu, a fixed count of zeroed pixels per example)"""
    top: Literal["softmax", "joint"] = "softmax"
    """softmax: fine-tuned with a softmax layer on top; joint (kind rbm only): the lab's DBN (Larochelle et al. 2007),
    whose last RBM models (the layer below, the label) jointly and classifies by its exact P(y | h)
    (pipeline/training/families/rbm.py); a model on it must use every layer"""
    options: dict[str, Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]] = {}
    """the kind's own hyperparameters (KINDS' `options`), each a grid searched with the others"""
    upper: UpperSchedule | None = None
    """the layers above the first: {lr, epochs} for every candidate, so that a first layer searched long and slowly
    (lr, epochs) keeps its layers above on a schedule of their own; None (the default): each candidate's lr and
    epochs for every layer"""

    @model_validator(mode="after")
    def _what_the_kind_takes(self) -> StackParams:
        if self.kind not in KINDS:
            raise ValueError(f"kind = {self.kind!r}: expected one of {sorted(KINDS)} (pipeline/training/kinds/)")
        traits = KINDS[self.kind]
        if traits.noise is None and self.noise != [0.0]:
            raise ValueError(f"noise = {self.noise} is only allowed for {kinds_where(lambda t: t.noise)}")
        if self.top not in traits.tops:
            raise ValueError(f"top = {self.top!r} is only allowed for {kinds_where(lambda t: self.top in t.tops)}")
        if max(self.noise) >= 1.0:
            raise ValueError(f"noise = {self.noise}: a noise level must be below 1")
        if set(self.options) != set(traits.options):
            raise ValueError(
                f"options = {self.options}: kind {self.kind!r} takes the options {list(traits.options) or 'none'}, "
                "each a grid"
            )
        if self.upper is not None and self.layers < 2:
            raise ValueError(
                f"upper = {self.upper.model_dump()}: a stack of {self.layers} layer has no layer above the first"
            )
        return self

    @model_serializer(mode="wrap")
    def _options_only_where_a_kind_has_some(self, handler: Callable) -> dict:
        """As written before kinds had options and `upper`: a stack without them dumps (and is saved with its models)
        unchanged."""
        data = handler(self)
        if not self.options:
            data.pop("options", None)
        if self.upper is None:
            data.pop("upper", None)
        return data


def kinds_where(has: Callable[[KindTraits], object]) -> str:
    """ "kind 'a' or kind 'b'": the kinds whose traits `has`."""
    return " or ".join(f"kind {k!r}" for k, t in KINDS.items() if has(t)) or "no kind"


class ModelSpec(Section):
    """One column of the table: the first `layers` layers of a stack's candidates, fine-tuned.

    params.yaml groups the models by stack (`vincent.models.<stack>.<model>: {layers, table_name}`, so that the
    stages finetune/evaluate@<dataset>-<stack> declare their own stack's models only); `stack` is the group's key."""

    stack: str
    """a key of vincent.stacks: the group of vincent.models the model is listed under (not written in the entry)"""
    layers: PositiveInt
    table_name: str
    """the model's column in the paper's table (DBN-1, DBN-3, SAA-3, SdA-3)"""


GROUPED = "vincent.models.<stack>.<model>: {layers, table_name}"


def flat_models(raw: object) -> object:
    """vincent.models as params.yaml writes it, {stack: {model: {layers, table_name}}}, as {model: ModelSpec} in params
    order, each model's stack its group's key; a ValueError naming the key of every problem. Models already flat (a
    mapping of ModelSpecs, as Python code builds them) pass as they are."""
    if isinstance(raw, dict) and all(isinstance(m, ModelSpec) for m in raw.values()):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"vincent.models = {raw!r}: expected a mapping of each stack to its models, {GROUPED}")
    old = {
        name: entry
        for name, entry in raw.items()
        if isinstance(entry, dict)
        and any(k in ModelSpec.model_fields and not isinstance(v, dict) for k, v in entry.items())
    }
    if old:  # the form before the models were grouped: <model>: {stack, layers, table_name}
        grouped: dict[str, dict] = {}
        for name, entry in old.items():
            grouped.setdefault(str(entry.get("stack", "<stack>")), {})[name] = {
                k: v for k, v in entry.items() if k != "stack"
            }
        expected = "".join(f"\n      {stack}: {flow(models)}" for stack, models in grouped.items())
        raise ValueError(
            f"vincent.models: {', '.join(map(str, old))} in the old flat form, <model>: {{stack, layers, table_name}}; "
            f"the models are now grouped by their stack ({GROUPED}), here:{expected}"
        )
    flat: dict[object, ModelSpec] = {}
    problems: list[str] = []
    listed: dict[object, str] = {}  # model -> the group it was first listed under
    for stack, models in raw.items():
        at = f"vincent.models.{stack}"
        if not isinstance(models, dict):
            problems.append(f"{at} = {models!r}: expected a mapping of the stack's models, {GROUPED}")
        elif not models:
            problems.append(f"{at}: no models; list the columns built on stack {stack!r}, or remove the stack")
        for name, entry in models.items() if isinstance(models, dict) else ():
            if name in listed:
                problems.append(
                    f"{at}.{name}: {name!r} is listed under {listed[name]} too; a model's name is its column's key "
                    "(its results, its network's file), so it names one model of one stack"
                )
                continue
            listed[name] = at
            if not isinstance(entry, dict):
                problems.append(f"{at}.{name} = {entry!r}: expected a mapping {{layers, table_name}}")
            elif "stack" in entry:
                problems.append(
                    f"{at}.{name}.stack = {entry['stack']!r}: the stack is the group's ({at}); remove the key"
                )
            else:
                try:
                    flat[name] = ModelSpec.model_validate({"stack": stack, **entry})
                except ValidationError as exc:
                    problems += [
                        describe({**e, "loc": ("vincent", "models", stack, name, *e["loc"])}) for e in exc.errors()
                    ]
    if problems:
        raise ValueError("\n  - ".join(problems))  # one line each in the ParamsError
    return flat


def grouped_models(models: dict[str, ModelSpec]) -> dict[str, dict[str, dict]]:
    """The flat models as params.yaml writes them, grouped by stack (what flat_models reads back)."""
    grouped: dict[str, dict[str, dict]] = {}
    for name, m in models.items():
        grouped.setdefault(m.stack, {})[name] = m.model_dump(exclude={"stack"})
    return grouped


def flow(value: object) -> str:
    """A value in YAML's flow style, one line: {dbn1: {layers: 1, table_name: DBN-1}}."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()

"""The typed schema of `params.yaml`, and the one function that loads it.

Every stage calls `load_params()` first, so an unknown key, a wrong type or an out-of-range value
stops it before any work, with a message naming the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, field_serializer, field_validator, model_validator

from pipeline.params.base import (
    MNIST_TEST,
    MNIST_TRAIN,
    IntGrid,
    NoiseLevel,
    ParamsError,
    PositiveGrid,
    PositiveInt,
    Section,
    UniqueKeyLoader,
    describe,
)
from pipeline.params.benchmarks import BenchmarkName, BenchmarksParams
from pipeline.params.explore import ExploreParams
from pipeline.params.finetune import FinetuneParams
from pipeline.params.rows import RowParams, check_rows, row_stacks
from pipeline.params.stacks import ModelSpec, StackParams, flat_models, grouped_models
from pipeline.params.zoo import ZooParams, ZooVariant  # noqa: F401 (ZooVariant: re-exported)

DatasetName = Literal["basic", "full"] | BenchmarkName


class DataParams(Section):
    source: Literal["mnist", "fashion_mnist"] = "mnist"
    root: str = "data/raw"
    """torchvision root: files are downloaded (or copied from a mirror) to <root>/<MNIST|FashionMNIST>/raw."""
    mirrors: list[str] = []
    """Local folders in torchvision layout tried before the internet (the env PIPELINE_DATA_MIRROR adds one)."""


class BasicSplit(Section):
    """MNIST-basic: a seeded draw from all 70,000 images (Larochelle's own indices are unpublished)."""

    train: PositiveInt = 10_000
    valid: PositiveInt = 2_000
    test: PositiveInt = 50_000

    @model_validator(mode="after")
    def _fits(self) -> BasicSplit:
        total = self.train + self.valid + self.test
        if total > MNIST_TRAIN + MNIST_TEST:
            raise ValueError(f"train + valid + test = {total} does not fit in the {MNIST_TRAIN + MNIST_TEST:,} images")
        return self


class FullSplit(Section):
    """Standard split: the first `train` of the 60,000, the last `valid` of them, the first `test` of 10,000."""

    train: PositiveInt = 50_000
    valid: PositiveInt = 10_000
    test: PositiveInt = 10_000

    @model_validator(mode="after")
    def _fits(self) -> FullSplit:
        if self.train + self.valid > MNIST_TRAIN:
            raise ValueError(
                f"train + valid = {self.train + self.valid} does not fit in the {MNIST_TRAIN:,} training images"
            )
        if self.test > MNIST_TEST:
            raise ValueError(f"test = {self.test} is more than the {MNIST_TEST:,} test images")
        return self


class PrepareParams(Section):
    basic: BasicSplit = BasicSplit()
    full: FullSplit = FullSplit()
    samples_per_class: PositiveInt = 10


class CorruptParams(Section):
    datasets: list[DatasetName] = ["basic", "full"]
    """one stage corrupt@<dataset> each (a benchmark dataset must be in benchmarks.datasets)"""
    masking: list[NoiseLevel] = [0.1, 0.25, 0.4]
    masking_bernoulli: list[NoiseLevel] = []
    gaussian: list[NoiseLevel] = [0.5]
    salt_and_pepper: list[NoiseLevel] = [0.25]
    figure_examples: PositiveInt = 10

    def noises(self) -> list[tuple[str, float]]:
        """(kind, level) pairs in a fixed order."""
        kinds = ("masking", "masking_bernoulli", "gaussian", "salt_and_pepper")
        return [(kind, level) for kind in kinds for level in getattr(self, kind)]


class PretrainParams(Section):
    """Greedy layer-wise pretraining, shared by every stack."""

    hidden: IntGrid = [1000]
    """units per hidden layer (the same for every layer, as in the paper); a grid"""
    batch_size: PositiveInt = 32
    group_size: Annotated[int, Field(ge=0)] = 0
    """candidates trained in lockstep (one batched matmul): 0 = 16 on CUDA, 1 on a CPU (where grouping does not pay)"""


class RbfGrid(Section):
    C: PositiveGrid = [1.0, 10.0, 100.0]
    gamma_scale: PositiveGrid = [1.0, 2.0, 4.0]
    """gamma in multiples of scikit-learn's 'scale', 1 / (pixels x variance of the training pixels): 0.0134 on
    MNIST, larger on sparse images (rect), so one grid fits every row"""


class PolyGrid(Section):
    C: PositiveGrid = [0.01, 0.1, 1.0, 10.0]
    degree: IntGrid = [2, 3, 4, 5]
    coef0: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)] = [0.0, 1.0]


class SvmParams(Section):
    """SVMs on raw pixels: grids searched on validation, then refit on train + valid."""

    rbf: RbfGrid = RbfGrid()
    poly: PolyGrid = PolyGrid()


class ProbeParams(Section):
    """Probes of the frozen features of each pretrained layer."""

    logreg_C: PositiveGrid = [0.01, 0.1, 1.0]
    svm_C: PositiveGrid = [1.0, 10.0]
    svm_layers: Literal["top", "all"] = "top"
    """which layers get the rbf-SVM probe (the logistic probe sees every layer): an SVM on 50,000 test codes of
    1000 units costs minutes per layer, the most expensive part of evaluate"""


class FiltersParams(Section):
    """Vincent 2008's filter figure: one DAE layer trained from the same initial weights at several noise levels."""

    dataset: DatasetName = "basic"
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] = [0.0, 0.25, 0.5]
    hidden: PositiveInt = 1000
    epochs: PositiveInt = 20
    lr: Annotated[float, Field(gt=0)] = 0.05
    shown: PositiveInt = 100


class VincentParams(Section):
    datasets: Annotated[list[DatasetName], Field(min_length=1)] = ["basic"]
    """the rows of the table: basic and the benchmark datasets (each in benchmarks.datasets); one DVC matrix row each"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    pretrain: PretrainParams = PretrainParams()
    stacks: dict[str, StackParams] = {}
    finetune: FinetuneParams = FinetuneParams()
    rows: dict[DatasetName, RowParams] = {}
    """per row of vincent.datasets, its stacks (the columns it has) and what its search does differently; a row not
    listed runs every stack with the defaults (DVC's stages declare its .finetune and .stacks.<stack>: list them all)"""
    models: dict[str, ModelSpec] = {}
    """the table's columns, in params.yaml grouped by stack (vincent.models.<stack>.<model>: {layers, table_name}, so
    that finetune/evaluate@<dataset>-<stack> declare their stack's models only); here flat, in params order (the
    table's), each ModelSpec's stack its group; dumped grouped again"""
    svm: SvmParams = SvmParams()
    probe: ProbeParams = ProbeParams()
    filters: FiltersParams = FiltersParams()

    @field_validator("models", mode="before")
    @classmethod
    def _flatten_the_stacks_groups(cls, raw: object) -> object:
        return flat_models(raw)

    @field_serializer("models")
    def _grouped_by_stack(self, models: dict[str, ModelSpec]) -> dict[str, dict[str, dict]]:
        return grouped_models(models)

    @model_validator(mode="after")
    def _models_fit_stacks(self) -> VincentParams:
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"vincent.datasets = {self.datasets}: a dataset is listed twice")
        unknown = list(dict.fromkeys(m.stack for m in self.models.values() if m.stack not in self.stacks))
        if unknown:
            raise ValueError(
                "\n  - ".join(f"vincent.models.{s}: not a key of vincent.stacks {sorted(self.stacks)}" for s in unknown)
            )
        unused = [s for s in self.stacks if not self.models_of(s)]
        if unused:
            add = ", ".join(f"vincent.models.{s}" for s in unused)
            raise ValueError(
                f"vincent.stacks {unused}: no models are built on them; add {add}: {{<model>: {{layers, table_name}}}}"
            )
        for name, m in self.models.items():
            key, layers = f"vincent.models.{m.stack}.{name}.layers", self.stacks[m.stack].layers
            if m.layers > layers:
                raise ValueError(f"{key} = {m.layers}: stack {m.stack!r} has only {layers}")
            if self.stacks[m.stack].top == "joint" and m.layers != layers:
                raise ValueError(
                    f"{key} = {m.layers}: stack {m.stack!r} ends in a joint top RBM, so its models use all its "
                    f"{layers} layers"
                )
        check_rows(self.rows, self.stacks)
        return self

    def stacks_of(self, dataset: str) -> list[str]:
        """The stacks row `dataset` runs, in vincent.stacks order: its stages pretrain/finetune/evaluate@<d>-<stack>."""
        return row_stacks(self.rows, dataset, self.stacks)

    def row_models(self, dataset: str) -> dict[str, ModelSpec]:
        """The columns row `dataset` has: the models of its stacks (stacks_of), in params order (the table's)."""
        stacks = set(self.stacks_of(dataset))
        return {name: m for name, m in self.models.items() if m.stack in stacks}

    def stack_for(self, dataset: str, stack: str) -> StackParams:
        """vincent.stacks.<stack> with the grid keys vincent.rows.<dataset>.stacks.<stack> replaces."""
        row = self.rows.get(dataset)
        return self.stacks[stack] if row is None else row.apply_stack(stack, self.stacks[stack])

    def finetune_for(self, dataset: str) -> FinetuneParams:
        """vincent.finetune with what vincent.rows.<dataset>.finetune replaces."""
        row = self.rows.get(dataset)
        return self.finetune if row is None else row.apply(self.finetune)

    def models_of(self, stack: str) -> dict[str, ModelSpec]:
        """The models (columns) built on one stack, in params order: the stages finetune/evaluate@<dataset>-<stack>."""
        return {name: m for name, m in self.models.items() if m.stack == stack}


class CheckParams(Section):
    """The CI gate (python -m pipeline.check): how far the report may stray before CI fails."""

    allowed_excess_pct: dict[str, Annotated[float, Field(ge=0)]] = {}
    """per model of the table: how many points our error may exceed the paper's"""
    row_allowed_excess_pct: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = {}
    """per dataset and model, where a row needs its own allowance (a generated row whose data differ)"""
    smoke_tolerance_pct: Annotated[float, Field(ge=0)] = 2.0
    """|smoke run - committed smoke reference| allowed per model, in points"""


class TrackingParams(Section):
    experiment: str = "autoencoder-benchmark"


class Params(Section):
    seed: Annotated[int, Field(ge=0)] = 0
    data: DataParams = DataParams()
    prepare: PrepareParams = PrepareParams()
    corrupt: CorruptParams = CorruptParams()
    vincent: VincentParams = VincentParams()
    check: CheckParams = CheckParams()
    tracking: TrackingParams = TrackingParams()
    zoo: ZooParams = ZooParams()
    benchmarks: BenchmarksParams = BenchmarksParams()
    explore: ExploreParams = ExploreParams()

    @model_validator(mode="after")
    def _datasets_are_made(self) -> Params:
        made = {"basic", "full", *self.benchmarks.datasets}
        known = ["basic", "full", *get_args(BenchmarkName)]
        if self.explore.dataset not in known:  # a plain string in its section: the names are checked here
            raise ValueError(f"explore.dataset = {self.explore.dataset!r}: not a dataset; expected one of {known}")
        lists = (
            ("corrupt.datasets", self.corrupt.datasets),
            ("vincent.datasets", self.vincent.datasets),
            ("vincent.filters.dataset", [self.vincent.filters.dataset]),
        )
        for key, names in [*lists, ("explore.dataset", [self.explore.dataset])]:
            missing = [n for n in names if n not in made]
            if missing:
                raise ValueError(f"{key}: {missing} must be made first: add them to benchmarks.datasets")
        return self


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed mapping; raise ParamsError listing every problem."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = "\n".join(f"  - {describe(e)}" for e in exc.errors())
        raise ParamsError(f"{source}: invalid params\n{lines}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file: UTF-8 YAML, no key twice in a mapping, then the schema."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except IsADirectoryError:
        raise ParamsError(f"{path}: a directory; expected a params file (YAML), e.g. params.yaml") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); expected a YAML "
            "params file"
        ) from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, str(path))

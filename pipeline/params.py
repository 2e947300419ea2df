"""The typed schema of `params.yaml`, and the one function that loads it.

Every stage calls `load_params()` first, so an unknown key, a wrong type or an out-of-range value
stops it before any work, with a message naming the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
NoiseLevel = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class ParamsError(ValueError):
    """Raised when params.yaml is missing, unparsable or does not fit the schema."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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
            raise ValueError(
                f"train + valid + test = {total} does not fit in the {MNIST_TRAIN + MNIST_TEST:,} images"
            )
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
    datasets: list[Literal["basic", "full"]] = ["basic", "full"]
    masking: list[NoiseLevel] = [0.1, 0.25, 0.4]
    masking_bernoulli: list[NoiseLevel] = []
    gaussian: list[NoiseLevel] = [0.5]
    salt_and_pepper: list[NoiseLevel] = [0.25]
    figure_examples: PositiveInt = 10

    def noises(self) -> list[tuple[str, float]]:
        """(kind, level) pairs in a fixed order."""
        kinds = ("masking", "masking_bernoulli", "gaussian", "salt_and_pepper")
        return [(kind, level) for kind in kinds for level in getattr(self, kind)]


IntGrid = Annotated[list[PositiveInt], Field(min_length=1)]
PositiveGrid = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]


class PretrainParams(Section):
    """Greedy layer-wise pretraining; every list is a grid searched on the validation split."""

    hidden: IntGrid = [1000]
    """units per hidden layer (the same for every layer, as in the paper)"""
    ae_lr: PositiveGrid = [0.05]
    ae_epochs: IntGrid = [30]
    rbm_lr: PositiveGrid = [0.05]
    rbm_epochs: IntGrid = [30]
    cd_k: PositiveInt = 1
    batch_size: PositiveInt = 32


class FinetuneParams(Section):
    lr: PositiveGrid = [0.1]
    max_epochs: PositiveInt = 100
    patience: PositiveInt = 15
    batch_size: PositiveInt = 32


class ModelSpec(Section):
    """One column of the table: an RBM stack (DBN) or an autoencoder stack (SAA: noise 0, SdA: noise > 0)."""

    kind: Literal["rbm", "dae"]
    layers: PositiveInt
    noise: NoiseLevel = 0.0
    """masking level nu (fixed count of zeroed pixels per example); only for kind dae"""
    table_name: str
    """the model's column in the paper's table (DBN-1, DBN-3, SAA-3, SdA-3); same-named entries compete on validation"""

    @model_validator(mode="after")
    def _noise_only_for_dae(self) -> ModelSpec:
        if self.kind == "rbm" and self.noise != 0.0:
            raise ValueError(f"noise = {self.noise} is only allowed for kind 'dae'")
        return self


class RbfGrid(Section):
    C: PositiveGrid = [1.0, 10.0, 100.0]
    gamma: PositiveGrid = [0.0134, 0.0268, 0.0536]


class PolyGrid(Section):
    C: PositiveGrid = [1.0, 10.0]
    degree: IntGrid = [2, 3]
    coef0: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)] = [0.0, 1.0]


class SvmParams(Section):
    """SVMs on raw pixels: grids searched on validation, then refit on train + valid."""

    rbf: RbfGrid = RbfGrid()
    poly: PolyGrid = PolyGrid()


class ProbeParams(Section):
    """Probes of the frozen features of each pretrained layer."""

    logreg_C: PositiveGrid = [0.01, 0.1, 1.0]
    svm_C: PositiveGrid = [1.0, 10.0]


class FiltersParams(Section):
    """Vincent 2008's filter figure: one DAE layer trained from the same initial weights at several noise levels."""

    noise: Annotated[list[NoiseLevel], Field(min_length=1)] = [0.0, 0.25, 0.5]
    hidden: PositiveInt = 1000
    epochs: PositiveInt = 20
    lr: Annotated[float, Field(gt=0)] = 0.05
    shown: PositiveInt = 100


class VincentParams(Section):
    dataset: Literal["basic", "full"] = "basic"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    pretrain: PretrainParams = PretrainParams()
    finetune: FinetuneParams = FinetuneParams()
    models: dict[str, ModelSpec] = {}
    svm: SvmParams = SvmParams()
    probe: ProbeParams = ProbeParams()
    filters: FiltersParams = FiltersParams()
    report_noise: str = "masking-0.25"
    """which fixed corrupted test set (a `corrupt` output) the reconstruction figure uses"""


class CheckParams(Section):
    """The CI gate (python -m pipeline.check): how far the report may stray before CI fails."""

    allowed_excess_pct: dict[str, Annotated[float, Field(ge=0)]] = {}
    """per model of the table: how many points our error may exceed the paper's"""
    smoke_tolerance_pct: Annotated[float, Field(ge=0)] = 2.0
    """|smoke run - committed smoke reference| allowed per model, in points"""


class TrackingParams(Section):
    experiment: str = "autoencoder-benchmark"


ZooActivation = Literal["sigmoid", "relu", "tanh", "linear"]
NonNegative = Annotated[float, Field(ge=0.0)]
ZooName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
NoiseName = Annotated[str, Field(pattern=r"^(masking|masking_bernoulli|gaussian|salt_and_pepper)-[0-9.]+$")]
_ZOO_COMMON = {"kind", "title", "epochs", "lr", "reference"}
_ZOO_FIELDS = {
    "dense": {
        "sizes", "hidden_activation", "code_activation", "output_activation", "tied", "loss", "noise_kind",
        "noise_level", "l1", "sparsity_weight", "sparsity_target", "sparsity_decay", "contractive", "pca",
    },
    "conv": {"channels", "noise_kind", "noise_level"},
    "vae": {"sizes"},
}  # fmt: skip


class ZooVariant(Section):
    """One autoencoder of the zoo (stage `zoo_train@<name>`); see pipeline/zoo.py for how it is built."""

    kind: Literal["dense", "conv", "vae"] = "dense"
    title: str = ""
    """name in tables and figures (default: the key)"""
    epochs: PositiveInt
    lr: Annotated[float, Field(gt=0)] = 0.001
    """Adam learning rate"""
    reference: str | None = None
    """another variant the report compares this one with (same net without the regulariser)"""
    sizes: Annotated[list[PositiveInt], Field(min_length=2)] = [784, 32]
    """dense: encoder widths, input first (the decoder mirrors them); vae: input, hidden..., latent"""
    hidden_activation: ZooActivation = "relu"
    code_activation: ZooActivation | None = None
    output_activation: Literal["sigmoid", "linear"] = "sigmoid"
    tied: bool = False
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    noise_kind: Literal["masking", "masking_bernoulli", "gaussian", "salt_and_pepper"] = "gaussian"
    noise_level: NoiseLevel = 0.0
    """> 0 makes it a denoising autoencoder (fresh noise every minibatch)"""
    l1: NonNegative = 0.0
    """weight of the L1 activity penalty mean_n sum_j |h_nj| on the first hidden layer"""
    sparsity_weight: NonNegative = 0.0
    """beta of the KL sparsity penalty sum_j KL(rho || rho_hat_j) (sigmoid first layer)"""
    sparsity_target: Annotated[float, Field(gt=0, lt=1)] = 0.05
    sparsity_decay: Annotated[float, Field(ge=0, lt=1)] = 0.9
    contractive: NonNegative = 0.0
    """weight of mean_n ||dh/dx||_F^2 of the first hidden layer"""
    channels: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = [16, 8]
    pca: bool = False
    """compare with PCA of the code's dimension (one-layer dense only)"""

    @model_validator(mode="after")
    def _fits_kind(self) -> ZooVariant:
        unused = sorted(self.model_fields_set - _ZOO_COMMON - _ZOO_FIELDS[self.kind])
        if unused:
            raise ValueError(f"{', '.join(unused)}: not used by kind {self.kind!r}; remove it")
        if self.kind != "conv" and self.sizes[0] != 784:
            raise ValueError(f"sizes = {self.sizes} must start with the input width 784")
        if self.kind == "vae" and len(self.sizes) < 3:
            raise ValueError(f"sizes = {self.sizes}: a vae needs input, at least one hidden width, latent")
        if self.kind == "dense":
            first = self.code_activation if len(self.sizes) == 2 and self.code_activation else self.hidden_activation
            if self.loss == "cross_entropy" and self.output_activation != "sigmoid":
                raise ValueError("loss 'cross_entropy' needs output_activation 'sigmoid'")
            if self.sparsity_weight and first != "sigmoid":
                raise ValueError(f"sparsity_weight needs a sigmoid first hidden layer, not {first!r}")
            if self.pca and len(self.sizes) != 2:
                raise ValueError(f"pca needs a one-layer variant, sizes = {self.sizes}")
        return self


class ZooParams(Section):
    """The autoencoder zoo (stages zoo_train@<variant> and zoo_report)."""

    dataset: Literal["basic", "full"] = "full"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    experiment: str = "autoencoder-zoo"
    """MLflow experiment of the zoo's runs (one per variant, one for the report)"""
    batch_size: PositiveInt = 256
    eval_noises: list[NoiseName] = ["gaussian-0.5", "masking-0.25"]
    """fixed corrupted test sets (`corrupt` outputs) every variant is also scored on"""
    probe_train: PositiveInt = 10_000
    """training codes (a seeded subsample) for the logistic-regression and k-NN probes"""
    logreg_C: PositiveGrid = [0.1, 1.0]
    knn_k: PositiveInt = 5
    near_zero: Annotated[float, Field(gt=0)] = 0.05
    """|activation| below this counts as near zero"""
    examples: PositiveInt = 10
    """digits shown in the reconstruction figures"""
    manifold_grid: Annotated[int, Field(ge=2)] = 15
    """the VAE manifold figure decodes a grid of manifold_grid x manifold_grid latent points"""
    variants: dict[ZooName, ZooVariant] = {}

    @model_validator(mode="after")
    def _references_exist(self) -> ZooParams:
        for name, variant in self.variants.items():
            if variant.reference is not None and (variant.reference == name or variant.reference not in self.variants):
                raise ValueError(f"variants.{name}.reference = {variant.reference!r} must name another variant")
        return self


class Params(Section):
    seed: Annotated[int, Field(ge=0)] = 0
    data: DataParams = DataParams()
    prepare: PrepareParams = PrepareParams()
    corrupt: CorruptParams = CorruptParams()
    vincent: VincentParams = VincentParams()
    check: CheckParams = CheckParams()
    tracking: TrackingParams = TrackingParams()
    zoo: ZooParams = ZooParams()


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {error['input']!r}); check the spelling against params.yaml's schema"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key} = {error['input']!r}: {error['msg']}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed mapping; raise ParamsError listing every problem."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise ParamsError(f"{source}: invalid params\n{lines}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, str(path))

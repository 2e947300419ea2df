"""The `zoo` section of params.yaml: the autoencoder zoo's variants and how they are scored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipeline.params.base import NoiseLevel, PositiveGrid, PositiveInt, Section
from pipeline.params.stacks import KINDS

ZooActivation = Literal["sigmoid", "relu", "tanh", "linear"]
NonNegative = Annotated[float, Field(ge=0.0)]
ZooName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
NoiseName = Annotated[str, Field(pattern=r"^(masking|masking_bernoulli|gaussian|salt_and_pepper)-[0-9.]+$")]

_ZOO_COMMON = {"kind", "title", "epochs", "lr", "reference", "tour_of"}
_ZOO_FIELDS = {
    "dense": {
        "sizes",
        "hidden_activation",
        "code_activation",
        "output_activation",
        "tied",
        "loss",
        "noise_kind",
        "noise_level",
        "l1",
        "sparsity_weight",
        "sparsity_target",
        "sparsity_decay",
        "contractive",
        "pca",
    },
    "conv": {"channels", "noise_kind", "noise_level"},
    "vae": {"sizes"},
}


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
    tour_of: str | None = None
    """this variant is the Keras tour's (blog.keras.io) version of that variant of ours; reported side by side"""
    sizes: Annotated[list[PositiveInt], Field(min_length=2)] = [784, 32]
    """dense: encoder widths, input first (the decoder mirrors them); vae: input, hidden..., latent"""
    hidden_activation: ZooActivation = "relu"
    code_activation: ZooActivation | None = None
    output_activation: ZooActivation = "sigmoid"
    """decoder output (relu / tanh as in the Keras tour; cross_entropy needs sigmoid)"""
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


class ZooLayer(Section):
    """One layer of a table kind (vincent.stacks' `kind`, pipeline/training/kinds/) trained on the zoo's digits exactly
    as a table stack trains its first layer (lockstep SGD, the kind's own step), scored like every variant (stage
    zoo_layer@<name>); the report sees it as the tied sigmoid dense variant it is."""

    kind: str
    """an autoencoder kind of KINDS: ae, cae, dae_sp"""
    title: str = ""
    hidden: PositiveInt = 64
    lr: Annotated[float, Field(gt=0)]
    """SGD learning rate (the table's stacks' `lr`)"""
    epochs: PositiveInt
    batch_size: PositiveInt = 32
    """the table's vincent.pretrain.batch_size"""
    noise: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """the kind's noise level (masking for ae, salt-and-pepper for dae_sp)"""
    options: dict[str, float] = {}
    """the kind's own hyperparameters (one value each): cae contraction; dae_sp alpha, beta"""
    reference: str | None = None
    """a variant of zoo.variants the report sets it beside (the same net without the regulariser)"""
    counterpart: str | None = None
    """the zoo's own (Adam-trained) variant of the same idea, set beside it too"""

    @model_validator(mode="after")
    def _what_the_kind_takes(self) -> ZooLayer:
        kinds = sorted(k for k, t in KINDS.items() if t.family == "autoencoder")
        if self.kind not in kinds:
            raise ValueError(f"kind = {self.kind!r}: expected an autoencoder kind, one of {kinds}")
        traits = KINDS[self.kind]
        if self.noise and traits.noise is None:
            raise ValueError(f"noise = {self.noise}: kind {self.kind!r} takes no noise")
        if sorted(self.options) != sorted(traits.options):
            raise ValueError(f"options = {self.options}: kind {self.kind!r} takes {sorted(traits.options) or 'none'}")
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
    layers: dict[ZooName, ZooLayer] = {}
    """the table's layer kinds as zoo variants (stage zoo_layer@<name>)"""

    @model_validator(mode="after")
    def _references_exist(self) -> ZooParams:
        for name, variant in self.variants.items():
            for key in ("reference", "tour_of"):
                other = getattr(variant, key)
                if other is not None and (other == name or other not in self.variants):
                    raise ValueError(f"variants.{name}.{key} = {other!r} must name another variant")
        for name, layer in self.layers.items():
            if name in self.variants:
                raise ValueError(f"layers.{name}: also a key of variants; the two share models/zoo, name it apart")
            for key in ("reference", "counterpart"):
                other = getattr(layer, key)
                if other is not None and other not in self.variants:
                    raise ValueError(f"layers.{name}.{key} = {other!r} must name a variant of zoo.variants")
        return self

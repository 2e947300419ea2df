"""Greedy layer-wise pretraining of a stack: SAA ("ae"), SdA ("dae") or DBN ("rbm").

Layer k is trained on the clean codes of layers < k, computed once per layer and kept in memory:
    ae / dae: a tied-weight sigmoid autoencoder with cross-entropy and plain SGD (Vincent et al. 2008),
              trained by the autograd-free `TiedSigmoidStep`; "dae" corrupts every minibatch afresh,
              "ae" uses no noise;
    rbm:      a Bernoulli RBM trained by CD-k or PCD-k; the codes passed up are P(h=1|v).
Each layer visits its data in a fresh permutation per epoch drawn from a seeded generator, so a stack is
reproducible bit for bit on CPU; with `checkpoint_dir` every epoch of every layer is checkpointed and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipeline.data.corruption import NOISE_KINDS, corrupt
from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder, TiedSigmoidStep
from pipeline.models.rbm import RBM, RBMConfig
from pipeline.training.checkpoints import config_hash, data_fingerprint
from pipeline.training.loop import EpochCallback, History, check_input, run_epochs
from pipeline.utils import get_device, make_generator

KINDS = ("ae", "dae", "rbm")
STACK_NAMES = {"ae": "SAA", "dae": "SdA", "rbm": "DBN"}
CHUNK_ROWS = 4096  # rows gathered and corrupted at a time (one randperm index and one corrupt call per chunk)


@dataclass
class PretrainConfig:
    epochs: int = 15
    lr: float = 0.01
    batch_size: int = 20
    noise_kind: str = "masking"
    noise_level: float = 0.25  # used by "dae" only; "ae" layers see clean inputs
    cd_k: int = 1  # rbm: Gibbs steps per update
    persistent: bool = False  # rbm: PCD instead of CD
    momentum: float = 0.0  # rbm only (the autoencoders use plain SGD, as in the paper)
    weight_decay: float = 0.0  # rbm only

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("need epochs >= 0, batch_size >= 1 and lr > 0")
        if self.noise_kind not in NOISE_KINDS or not 0 <= self.noise_level <= 1:
            raise ValueError(f"bad noise: kind={self.noise_kind!r}, level={self.noise_level}")


@dataclass
class StackResult:
    kind: str
    sizes: list[int]
    weights: list[tuple[torch.Tensor, torch.Tensor]]  # per layer encoder (W of shape (out, in), b), on CPU
    visible_biases: list[torch.Tensor]  # per layer decoder / visible bias
    history: list[History] = field(default_factory=list)  # per layer: train_loss, valid_loss, ... per epoch

    @property
    def first_layer_filters(self) -> torch.Tensor:
        """(n_hidden, 784) weights of the first layer, one filter per row."""
        return self.weights[0][0]

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_layers: int | None = None) -> torch.Tensor:
        """Clean code of `x` after the first `n_layers` layers (all by default)."""
        for w, b in self.weights[:n_layers]:
            x = propagate(x, w.to(x.device), b.to(x.device))
        return x


def propagate(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sigmoid(x W^T + b): the code (AE) or P(h=1|v) (RBM) of a sigmoid layer."""
    return torch.addmm(b, x, w.T).sigmoid_()


def pretrain_stack(
    kind: str,
    sizes: list[int],
    x_train: torch.Tensor,
    x_valid: torch.Tensor,
    config: PretrainConfig | Mapping,
    seed: int,
    checkpoint_dir: str | os.PathLike | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    device: str | torch.device = "auto",
) -> StackResult:
    """Pretrain len(sizes) - 1 layers of widths sizes[1:] on x_train (n, sizes[0]) with values in [0, 1].

    `on_epoch(layer, epoch, metrics)` is called after every epoch (layer and epoch are 0- and 1-based).
    Per-layer history: train_loss (mean over the epoch's minibatches of the training criterion: the
    denoising cross-entropy for ae/dae, the cross-entropy of the k-step Gibbs reconstruction for rbm) and
    valid_loss (ae/dae: the same criterion on x_valid with noise fixed once; rbm: the mean-field
    reconstruction cross-entropy), plus valid_pseudo_likelihood for rbm.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; expected one of {KINDS}")
    cfg = config if isinstance(config, PretrainConfig) else PretrainConfig(**dict(config))
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list the input width and at least one layer, got {sizes}")
    device = device if isinstance(device, torch.device) else get_device(device)
    name = STACK_NAMES[kind]
    for x in (x_train, x_valid):
        check_input(x, width=sizes[0], unit_interval=True, model=name, layer=0, epoch=1)
    # The epoch count is left out of layer 0's hash, so a finished run can be extended by resuming it;
    # layer k > 0 depends on it through the codes of the layers below.
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "epochs"}
    base = [
        kind,
        settings,
        seed,
        device.type,
        data_fingerprint(x_train),
        data_fingerprint(x_valid),
    ]
    codes, codes_valid = x_train.to(device, torch.float32), x_valid.to(device, torch.float32)
    result = StackResult(kind=kind, sizes=sizes, weights=[], visible_biases=[])
    for k in range(len(sizes) - 1):
        job = _LayerJob(
            name=name,
            layer=k,
            cfg=cfg,
            seed=seed,
            device=device,
            checkpoint_path=None if checkpoint_dir is None else Path(checkpoint_dir) / f"layer{k}.pt",
            config_hash=config_hash(*base, sizes[: k + 2], k, cfg.epochs if k else None),
            on_epoch=on_epoch,
            progress=progress,
        )
        if kind == "rbm":
            w, b, c, history = _train_rbm_layer(job, codes, codes_valid, sizes[k + 1])
        else:
            noise = cfg.noise_level if kind == "dae" else 0.0
            w, b, c, history = _train_ae_layer(job, codes, codes_valid, sizes[k + 1], noise)
        result.weights.append((w.detach().cpu().clone(), b.detach().cpu().clone()))
        result.visible_biases.append(c.detach().cpu().clone())
        result.history.append(history)
        if k < len(sizes) - 2:
            with torch.no_grad():
                codes, codes_valid = propagate(codes, w, b), propagate(codes_valid, w, b)
    return result


@dataclass
class _LayerJob:
    """Everything one layer's training needs besides its data."""

    name: str
    layer: int
    cfg: PretrainConfig
    seed: int
    device: torch.device
    checkpoint_path: Path | None
    config_hash: str
    on_epoch: EpochCallback | None
    progress: bool

    def generator(self, *names: object) -> torch.Generator:
        return make_generator(self.seed, *names, self.layer, device=self.device)

    def run(self, train_epoch, module: torch.nn.Module, generator: torch.Generator) -> History:
        return run_epochs(
            train_epoch,
            name=self.name,
            layer=self.layer,
            module=module,
            generator=generator,
            epochs=self.cfg.epochs,
            checkpoint_path=self.checkpoint_path,
            config_hash=self.config_hash,
            on_epoch=self.on_epoch,
            progress=self.progress,
        )


def _train_ae_layer(
    job: _LayerJob, x: torch.Tensor, x_valid: torch.Tensor, n_hidden: int, noise_level: float
):
    """One tied sigmoid (denoising) autoencoder layer, trained by plain SGD with the lean step."""
    cfg, kind = job.cfg, "dae" if noise_level > 0 else "ae"
    ae_config = DenseAEConfig(
        sizes=[x.shape[1], n_hidden], noise_kind=cfg.noise_kind, noise_level=noise_level
    )
    # The same initial weights for every noise level (SAA and SdA layers, the filters figure), on every device.
    init = make_generator(job.seed, "init", "autoencoder", job.layer)
    model = DenseAutoencoder(ae_config, generator=init).to(job.device)
    step = TiedSigmoidStep(model, cfg.batch_size)
    generator = job.generator("pretrain", kind)
    valid_in = x_valid
    if noise_level > 0:  # the same corruption every epoch, so valid_loss is comparable across epochs
        valid_in = corrupt(x_valid, cfg.noise_kind, noise_level, job.generator("valid", kind))
    bs = cfg.batch_size
    chunk = bs * max(1, CHUNK_ROWS // bs)

    def train_epoch(epoch: int) -> dict[str, float]:
        perm = torch.randperm(len(x), generator=generator, device=job.device)
        total = torch.zeros((), dtype=torch.float64, device=job.device)
        for start in range(0, len(x), chunk):
            clean = x[perm[start : start + chunk]]
            noisy = corrupt(clean, cfg.noise_kind, noise_level, generator) if noise_level > 0 else clean
            for s in range(0, len(clean), bs):
                total += step.sgd_step(clean[s : s + bs], noisy[s : s + bs], cfg.lr)
        with torch.no_grad():
            valid = sum(
                float(model.reconstruction_loss(xi, xc)) * len(xc)
                for xi, xc in zip(valid_in.split(CHUNK_ROWS), x_valid.split(CHUNK_ROWS), strict=True)
            )
        return {"train_loss": float(total) / len(x), "valid_loss": valid / len(x_valid)}

    history = {"train_loss": [], "valid_loss": [], **job.run(train_epoch, model, generator)}
    return model.weights[0], model.biases[0], model.decoder_biases[0], history


def _train_rbm_layer(job: _LayerJob, x: torch.Tensor, x_valid: torch.Tensor, n_hidden: int):
    """One Bernoulli RBM layer trained by CD-k / PCD-k."""
    cfg = job.cfg
    rbm_config = RBMConfig(
        n_visible=x.shape[1],
        n_hidden=n_hidden,
        lr=cfg.lr,
        k=cfg.cd_k,
        persistent=cfg.persistent,
        n_chains=cfg.batch_size,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    rbm = RBM(rbm_config, generator=make_generator(job.seed, "init", "rbm", job.layer)).to(job.device)
    generator = job.generator("pretrain", "rbm")

    def train_epoch(epoch: int) -> dict[str, float]:
        perm = torch.randperm(len(x), generator=generator, device=job.device)
        total = torch.zeros((), dtype=torch.float64, device=job.device)
        for idx in perm.split(cfg.batch_size):
            total += rbm.cd_step(x[idx], generator)
        pl_generator = job.generator("valid", "rbm")  # the same flipped bits every epoch
        recon = pl = 0.0
        for xb in x_valid.split(CHUNK_ROWS):
            recon += float(rbm.reconstruction_error(xb)) * len(xb)
            pl += float(rbm.pseudo_likelihood(xb, pl_generator).sum())
        return {
            "train_loss": float(total) / len(x),
            "valid_loss": recon / len(x_valid),
            "valid_pseudo_likelihood": pl / len(x_valid),
        }

    history = job.run(train_epoch, rbm, generator)
    history = {"train_loss": [], "valid_loss": [], "valid_pseudo_likelihood": [], **history}
    return rbm.weight, rbm.hidden_bias, rbm.visible_bias, history

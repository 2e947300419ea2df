"""Where the stages read and write: the file layout of data/, models/, metrics/ and reports/ in one place.

Every path is relative to the repository root (DVC runs every stage there). dvc.yaml spells the
same paths out, since DVC reads them before any Python runs; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

PREPARED = Path("data/prepared")
CORRUPTED = Path("data/corrupted")


def prepared(dataset: str) -> Path:
    """Folder of a prepared dataset (x_/y_/idx_<split>.npy)."""
    return PREPARED / dataset


def corrupted(dataset: str, noise: str) -> Path:
    """Folder of the fixed corrupted copies of a dataset's valid/test splits, e.g. masking-0.25."""
    return CORRUPTED / dataset / noise


# The Vincent 2008 table: one file per stage and model entry of vincent.models.
def pretrained_model(model: str) -> Path:
    return Path(f"models/pretrain/{model}.pt")


def finetuned_model(model: str) -> Path:
    return Path(f"models/finetune/{model}.pt")


def checkpoint_dir(stage: str, model: str) -> Path:
    return Path(f"models/checkpoints/{stage}/{model}")


def stage_metrics(stage: str, model: str) -> Path:
    return Path(f"metrics/{stage}/{model}.json")


# The autoencoder zoo: one file of each kind per entry of zoo.variants.
def zoo_model(variant: str) -> Path:
    return Path(f"models/zoo/{variant}.pt")


def zoo_checkpoint(variant: str) -> Path:
    return Path(f"models/checkpoints/zoo/{variant}.pt")


def zoo_metrics(variant: str) -> Path:
    return Path(f"metrics/zoo/{variant}.json")


def zoo_figure(variant: str) -> Path:
    return Path(f"reports/figures/zoo/{variant}.png")

"""Where the stages read and write: the file layout of data/, models/, results/, metrics/, plots/ in one place.

- metrics/: the DVC metrics, small and numeric (`dvc metrics show`): the table's test errors per
  dataset, the zoo's headline numbers per variant.
- results/: every stage's details as JSON (grids, selections, probes, histories), deterministic:
  no timings, so a rerun with the same params leaves them byte-identical.
- plots/: per-epoch curves as CSV, declared as DVC plots (`dvc plots diff` overlays experiments).
- logs/timings/: wall times (git-ignored; MLflow keeps them too).

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


def corrupt_figure(dataset: str) -> Path:
    """Clean test images of a dataset and their fixed corrupted copies."""
    return Path(f"reports/figures/corrupt/{dataset}.png")


def dataset_figure(dataset: str) -> Path:
    """Ten examples per class of a benchmark dataset, beside its one-line description."""
    return Path(f"reports/figures/datasets/{dataset}.png")


# The Vincent 2008 table: one file per stage and model entry of vincent.models.
def pretrained_model(model: str) -> Path:
    return Path(f"models/pretrain/{model}.pt")


def finetuned_model(model: str) -> Path:
    return Path(f"models/finetune/{model}.pt")


def checkpoint_dir(stage: str, model: str) -> Path:
    return Path(f"models/checkpoints/{stage}/{model}")


def results(stage: str, name: str) -> Path:
    """The details a stage writes for one model or kernel, e.g. results/finetune/sda3_nu25.json."""
    return Path(f"results/{stage}/{name}.json")


def plot_data(stage: str, name: str) -> Path:
    """Per-epoch curves of one model as CSV, e.g. plots/finetune/sda3_nu25.csv."""
    return Path(f"plots/{stage}/{name}.csv")


def vincent_metrics(dataset: str) -> Path:
    """The table's test error % per model on one dataset: the headline DVC metric."""
    return Path(f"metrics/vincent/{dataset}.json")


# The autoencoder zoo: one file of each kind per entry of zoo.variants.
def zoo_model(variant: str) -> Path:
    return Path(f"models/zoo/{variant}.pt")


def zoo_checkpoint(variant: str) -> Path:
    return Path(f"models/checkpoints/zoo/{variant}.pt")


def zoo_metrics(variant: str) -> Path:
    """The variant's headline numbers (test MSE, probe accuracies): a DVC metric."""
    return Path(f"metrics/zoo/{variant}.json")


def zoo_results(variant: str) -> Path:
    """Everything the zoo measured of the variant (the zoo report reads it)."""
    return Path(f"results/zoo/{variant}.json")


def zoo_figure(variant: str) -> Path:
    return Path(f"reports/figures/zoo/{variant}.png")

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


# The Vincent 2008 table: one row per dataset of vincent.datasets. Per (dataset, stack the row runs) one
# pretraining file; fine-tuning and evaluation handle every model of vincent.models built on that stack.
def pretrained_model(dataset: str, stack: str) -> Path:
    return Path(f"models/pretrain/{dataset}/{stack}.pt")


def finetuned_model(dataset: str, model: str, stack: str) -> Path:
    """One fine-tuned network; the stage finetune@<dataset>-<stack> writes the folder of its stack's models."""
    return Path(f"models/finetune/{dataset}/{stack}/{model}.pt")


def extend_cache(dataset: str, stack: str) -> Path:
    """Stacks `python -m pipeline.extend` pretrained (outside DVC), one file per candidate and context hash."""
    return Path(f"models/extend/{dataset}/{stack}")


def checkpoint_dir(stage: str, dataset: str, name: str) -> Path:
    return Path(f"models/checkpoints/{stage}/{dataset}/{name}")


def results(stage: str, name: str) -> Path:
    """The details a stage writes, e.g. results/finetune/basic/sda.json or results/benchmark/rect.json."""
    return Path(f"results/{stage}/{name}.json")


def plot_data(stage: str, name: str) -> Path:
    """Per-epoch curves as CSV, e.g. plots/finetune/basic/sda/sda3.csv."""
    return Path(f"plots/{stage}/{name}.csv")


def vincent_metrics(dataset: str) -> Path:
    """The table's test error % per model on one dataset: the headline DVC metric."""
    return Path(f"metrics/vincent/{dataset}.json")


def vincent_row(dataset: str) -> Path:
    """One row of the table (CSV: dataset, model, error_pct, ci95_pct, paper's...), written by report@<dataset>."""
    return Path(f"results/report/{dataset}.csv")


def vincent_row_report(dataset: str) -> Path:
    """The row's own report: selection, McNemar's tests, probes, figures, stage times."""
    return Path(f"reports/vincent/{dataset}.md")


def vincent_row_figure(dataset: str, name: str) -> Path:
    return Path(f"reports/figures/vincent/{dataset}/{name}.png")


def dataset_examples(dataset: str) -> Path:
    """Ten examples per class of any dataset of the table (prepare writes basic's, benchmark@<d> the others')."""
    return Path("reports/figures/prepare_samples.png") if dataset == "basic" else dataset_figure(dataset)


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

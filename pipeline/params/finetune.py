"""Fine-tuning's params: the search every row runs (vincent.finetune), and the keys one row may replace."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pipeline.params.base import PositiveGrid, PositiveInt, Section


class FinetuneParams(Section):
    """Every (pretrained candidate, lr) pair, fine-tuned by successive halving with early stopping."""

    lr: PositiveGrid = [0.1]
    max_epochs: PositiveInt = 100
    patience: PositiveInt = 15
    batch_size: PositiveInt = 32
    rungs: list[PositiveInt] = [5, 15]
    """at each rung epoch only the best 1/eta of the running candidates (on validation) go on"""
    eta: Annotated[int, Field(ge=2)] = 3


class FinetuneOverride(Section):
    """The keys of vincent.finetune one row replaces; the others keep vincent.finetune's values."""

    lr: PositiveGrid | None = None
    max_epochs: PositiveInt | None = None
    patience: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    rungs: list[PositiveInt] | None = None
    eta: Annotated[int, Field(ge=2)] | None = None

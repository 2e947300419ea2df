"""What one row of the table does differently (`vincent.rows.<dataset>`): its fine-tuning and its stacks' grids.

A row's search is drawn from its own wide search (reports/search/): basic, for instance, keeps only the RBM rate
and epochs that won there. Each part is declared apart in dvc.yaml (`vincent.rows.<d>.stacks.<stack>` by
pretrain@<d>-<stack>, `vincent.rows.<d>.finetune` by finetune@<d>-*), so a change reruns only what it touches.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError

from pipeline.params.base import IntGrid, NoiseLevel, PositiveGrid, Section
from pipeline.params.finetune import FinetuneOverride, FinetuneParams
from pipeline.params.stacks import StackParams


class StackOverride(Section):
    """The grid keys of vincent.stacks.<stack> one row replaces (its kind and depth stay the stack's)."""

    lr: PositiveGrid | None = None
    epochs: IntGrid | None = None
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] | None = None
    options: dict[str, Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]] | None = None


class RowParams(Section):
    """One row's own settings: empty mappings for the defaults."""

    finetune: FinetuneOverride = FinetuneOverride()
    stacks: dict[str, StackOverride] = {}
    """per key of vincent.stacks; params.yaml lists every stack of every row (`{}`: the stack's own grid)"""

    def apply(self, base: FinetuneParams) -> FinetuneParams:
        return base.model_copy(update=self.finetune.model_dump(exclude_none=True))

    def apply_stack(self, name: str, base: StackParams) -> StackParams:
        override = self.stacks.get(name)
        if override is None:
            return base
        return StackParams.model_validate(base.model_dump() | override.model_dump(exclude_none=True))

    def check_stacks(self, dataset: str, stacks: dict[str, StackParams]) -> None:
        """Every stack this row changes exists, and each grid it makes is a valid stack (ValueError naming the key)."""
        for name in self.stacks:
            key = f"vincent.rows.{dataset}.stacks.{name}"
            if name not in stacks:
                raise ValueError(f"{key}: not a key of vincent.stacks {sorted(stacks)}")
            try:
                self.apply_stack(name, stacks[name])
            except ValidationError as exc:
                why = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
                raise ValueError(f"{key}: {why}") from None

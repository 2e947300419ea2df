"""What one row of the table does differently (`vincent.rows.<dataset>`): its fine-tuning and its stacks' grids.

A row runs the stacks its `stacks` lists (its columns are the models of vincent.models on them), each with the grid
keys it replaces; a row that lists none (no `stacks` key, or no entry in vincent.rows) runs every stack of
vincent.stacks with its own grid. A row's search is drawn from its own wide search (reports/search/): basic, for
instance, keeps only the RBM rate and epochs that won there. Each part is declared apart in dvc.yaml
(`vincent.rows.<d>.stacks.<stack>` by pretrain@<d>-<stack>, `vincent.rows.<d>.finetune` by finetune@<d>-*), so a
change reruns only what it touches.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError

from pipeline.params.base import IntGrid, NoiseLevel, PositiveGrid, Section
from pipeline.params.finetune import FinetuneOverride, FinetuneParams
from pipeline.params.stacks import StackParams, UpperSchedule


class StackOverride(Section):
    """The grid keys of vincent.stacks.<stack> one row replaces (its kind and depth stay the stack's)."""

    lr: PositiveGrid | None = None
    epochs: IntGrid | None = None
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] | None = None
    options: dict[str, Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]] | None = None
    upper: UpperSchedule | None = None


class RowParams(Section):
    """One row's own settings: empty mappings for the defaults."""

    finetune: FinetuneOverride = FinetuneOverride()
    stacks: dict[str, StackOverride] | None = None
    """the stacks this row runs, keys of vincent.stacks, each with the grid keys it replaces (`{}`: the stack's own
    grid); None (not given): every stack, with its own grid. params.yaml lists them for every row, as DVC reads each
    (`vincent.rows.<row>.stacks.<stack>`, by pretrain@<row>-<stack>)"""

    def apply(self, base: FinetuneParams) -> FinetuneParams:
        return base.model_copy(update=self.finetune.model_dump(exclude_none=True))

    def apply_stack(self, name: str, base: StackParams) -> StackParams:
        override = (self.stacks or {}).get(name)
        if override is None:
            return base
        return StackParams.model_validate(base.model_dump() | override.model_dump(exclude_none=True))

    def check_stacks(self, dataset: str, stacks: dict[str, StackParams]) -> None:
        """The row lists at least one stack if it lists any, every stack it lists exists, and each grid it makes is a
        valid stack (ValueError naming the key)."""
        if self.stacks is not None and not self.stacks:
            raise ValueError(
                f"vincent.rows.{dataset}.stacks: lists no stack; list the stacks the row runs (keys of vincent.stacks "
                f"{list(stacks)}, `{{}}` for a stack's own grid), or leave the key out for every stack"
            )
        for name in self.stacks or {}:
            key = f"vincent.rows.{dataset}.stacks.{name}"
            if name not in stacks:
                raise ValueError(
                    f"{key}: not a key of vincent.stacks {sorted(stacks)}; a row runs only stacks of vincent.stacks "
                    "(add the stack there, with its models under vincent.models.<stack>)"
                )
            try:
                self.apply_stack(name, stacks[name])
            except ValidationError as exc:
                why = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
                raise ValueError(f"{key}: {why}") from None


def row_stacks(rows: dict[str, RowParams], dataset: str, stacks: dict[str, StackParams]) -> list[str]:
    """The stacks row `dataset` runs, in vincent.stacks order: those its `stacks` lists, every one if it lists none."""
    row = rows.get(dataset)
    listed = None if row is None else row.stacks
    return [s for s in stacks if listed is None or s in listed]


def check_rows(rows: dict[str, RowParams], stacks: dict[str, StackParams]) -> None:
    """Every row's stacks are valid (RowParams.check_stacks). A stack no row runs is allowed: it has no stage (a stack
    tried with `python -m pipeline.extend` before a row runs it); `python -m pipeline.wire` names it."""
    for dataset, row in rows.items():
        row.check_stacks(dataset, stacks)


def unused_stacks(rows: dict[str, RowParams], datasets: list[str], stacks: dict[str, StackParams]) -> list[str]:
    """The stacks of vincent.stacks that no row of `datasets` runs, in vincent.stacks order."""
    used = {s for d in datasets for s in row_stacks(rows, d, stacks)}
    return [s for s in stacks if s not in used]

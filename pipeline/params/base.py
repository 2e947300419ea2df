"""What every section of the params schema shares: strict, frozen, no unknown keys."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
NoiseLevel = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveGrid = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
IntGrid = Annotated[list[PositiveInt], Field(min_length=1)]


class ParamsError(ValueError):
    """Raised when params.yaml is missing, unparsable or does not fit the schema."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

"""What every section of the params schema shares: strict, frozen, no unknown keys; and the YAML loader of the file."""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline.core.errors import StageError

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
NoiseLevel = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveGrid = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
IntGrid = Annotated[list[PositiveInt], Field(min_length=1)]


class ParamsError(StageError, ValueError):
    """Raised when params.yaml is missing, unparsable or does not fit the schema."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml's SafeLoader, except that a key given twice in one mapping is an error (DVC refuses such a file too,
    where plain yaml would keep the last value)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges, it does not repeat a key
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                break
            if first is not None:
                why = f"key {key!r} appears twice in one mapping (line {first} and line {line})"
                raise yaml.constructor.ConstructorError(None, None, why, key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def describe(error: dict[str, Any]) -> str:
    """One line of a ParamsError: the key (pydantic's `loc`), the value given and the rule it breaks. A rule across
    keys (a model validator) names its own keys, so its message is shown without the section's whole input."""
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {error['input']!r}); check the spelling against params.yaml's schema"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if error["type"] == "value_error" and message.startswith(key):
        return message
    return f"{key} = {error['input']!r}: {error['msg']}"

"""The columns of a job's answer, from its output schema (no pandas needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._base._jsonschema import resolve_refs

__all__ = ["BOOKKEEPING", "OUTPUT_COLUMN", "TEXT_COLUMN", "Field", "output_fields"]

TEXT_COLUMN = "claude_text"
OUTPUT_COLUMN = "claude_output"
BOOKKEEPING = (
    "claude_status",
    "claude_error",
    "claude_cost_usd",
    "claude_input_tokens",
    "claude_output_tokens",
    "claude_cache_read_input_tokens",
)
_SIMPLE = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


@dataclass(frozen=True)
class Field:
    """One output column: its name and kind (string, integer, number, boolean, category, object)."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()

    def to_json(self) -> list[Any]:
        return [self.name, self.kind, list(self.categories)]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Field:
        return cls(str(data[0]), str(data[1]), tuple(data[2]))


def output_fields(schema: Mapping[str, Any]) -> list[Field]:
    """The columns of an output schema: one per top-level property (or one ``claude_output``)."""
    root = resolve_refs(schema, schema)
    props = root.get("properties")
    if not isinstance(props, Mapping) or not props:
        return [Field(OUTPUT_COLUMN, "object")]
    return [_field(str(name), prop, schema) for name, prop in props.items()]


def _field(name: str, prop: Any, root: Mapping[str, Any]) -> Field:
    p = resolve_refs(prop, root) if isinstance(prop, Mapping) else {}
    enum = p.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return Field(name, "category", tuple(enum))
    options = p.get("anyOf")
    if isinstance(options, list):
        real = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
        if len(real) == 1:
            return _field(name, real[0], root)
        return Field(name, "object")
    kind = p.get("type")
    if isinstance(kind, list):
        real_types = [t for t in kind if t != "null"]
        kind = real_types[0] if len(real_types) == 1 else None
    return Field(name, _SIMPLE.get(str(kind), "object"))

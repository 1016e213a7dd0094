"""Local ``$ref`` resolution in JSON Schema, shared by the offline responder and the frame's columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def resolve_refs(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local ``$ref``s (``#/$defs/X``, ``#/definitions/X``) and a lone ``allOf`` wrapper."""
    for _ in range(32):
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **all_of[0]}
            continue
        ref = schema.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#/")):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, Mapping)
                else None
            )
        if not isinstance(target, Mapping):
            return {}
        schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **target}
    return schema

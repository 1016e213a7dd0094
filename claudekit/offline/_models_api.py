"""``GET /v1/models`` and ``GET /v1/models/{model_id}`` from the model catalog (``claudekit/models.json``).

The shapes are the SDK's ``ModelInfo`` and ``SyncPage`` (``data``, ``has_more``, ``first_id``, ``last_id``);
the list is newest first, as the service's is. Capabilities are reported only where the catalog knows
them (thinking types, effort levels): the SDK tolerates a partial ``capabilities`` object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from .._base import _models
from ._errors import ApiError

__all__ = ["get_model", "list_models"]

_LIFECYCLES = ("active", "deprecated", "retired")
_EPOCH = "1970-01-01T00:00:00Z"  # the service's documented stand-in for an unknown release date


def _rfc3339(day: dt.date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00Z"


def _support(value: bool) -> dict[str, bool]:
    return {"supported": value}


def _capabilities(spec: _models.ModelSpec) -> dict[str, Any] | None:
    caps: dict[str, Any] = {}
    if spec.effort_levels is not None:
        levels = spec.effort_levels
        caps["effort"] = {"supported": bool(levels), **{e: _support(e in levels) for e in _models.EFFORTS}}
    kinds = {"enabled": spec.budgeted_thinking, "adaptive": spec.adaptive_thinking}
    if all(v is not None for v in kinds.values()):
        on = bool(spec.budgeted_thinking or spec.adaptive_thinking)
        types = {k: _support(bool(v)) for k, v in kinds.items()}
        if spec.thinking_always_on is not None:
            types["disabled"] = _support(not spec.thinking_always_on)
        caps["thinking"] = {"supported": on, "types": types}
    return caps or None


def model_info(spec: _models.ModelSpec, today: dt.date) -> dict[str, Any]:
    """One ``ModelInfo`` as the service sends it, with the lifecycle as of ``today``."""
    state = _models.lifecycle(spec, today)
    return {
        "type": "model",
        "id": spec.id,
        "display_name": spec.display_name,
        "created_at": _rfc3339(spec.released) or _EPOCH,
        "lifecycle": state,
        "line": spec.family,
        "deprecated_at": _rfc3339(spec.deprecated_on) if state != "active" else None,
        "retires_at": _rfc3339(spec.retires_on) if state != "active" else None,
        "max_input_tokens": spec.context_window,
        "max_tokens": spec.max_output_tokens,
        "capabilities": _capabilities(spec),
    }


def _last(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _query_list(query: Mapping[str, Sequence[str]], name: str) -> list[str]:
    values = [*query.get(name, ()), *query.get(f"{name}[]", ())]
    return [part for v in values for part in v.split(",") if part]


def list_models(query_string: str, today: dt.date) -> dict[str, Any]:
    """A page of models: ``limit`` (1-1000, default 20), ``after_id`` / ``before_id``, ``lifecycle``."""
    query = parse_qs(query_string, keep_blank_values=True)
    raw_limit = _last(query, "limit") or "20"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise ApiError(
            400, "limit: Input should be greater than or equal to 1 and less than or equal to 1000"
        )
    limit = int(raw_limit)
    wanted = _query_list(query, "lifecycle") or ["active", "deprecated"]
    for value in wanted:
        if value not in _LIFECYCLES:
            raise ApiError(400, "lifecycle: Input should be 'active', 'deprecated' or 'retired'")
    specs = [s for s in _models.all_models() if _models.lifecycle(s, today) in wanted]
    ids = [s.id for s in specs]
    after, before = _last(query, "after_id"), _last(query, "before_id")
    if after is not None:
        start = ids.index(after) + 1 if after in ids else len(ids)
        window = specs[start : start + limit]
        has_more = start + limit < len(specs)
    elif before is not None:
        end = ids.index(before) if before in ids else 0
        window = specs[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        window = specs[:limit]
        has_more = limit < len(specs)
    data = [model_info(s, today) for s in window]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def get_model(model_id: str, today: dt.date) -> dict[str, Any]:
    """The model an id or alias names (retired ones too: they stay in the catalogue), or a 404."""
    spec = _models.lookup(model_id)
    if spec is None:
        raise ApiError(404, f"model: {model_id}", "not_found_error")
    return model_info(spec, today)

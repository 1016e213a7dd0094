"""Filling ``{name}`` fields of a prompt template from a namespace — without evaluating code.

Shared by the ``%%claude`` magic (the notebook namespace) and anything that fills templates per row.

Rules (those of ``str.format``, restricted): ``{name}``, ``{obj.attr}``, ``{d[key]}`` / ``{xs[0]}``,
conversions ``!r``/``!s``/``!a`` and format specs (``{x:.2f}``); ``{{`` and ``}}`` are literal braces.
Names resolve in the namespace only, through attribute and index access: nothing is evaluated, and
dunder attributes are refused. A missing name is an error that names it.

A pandas DataFrame or Series takes its own forms instead of format specs (see :mod:`._frames`):
``{df}`` (shape, dtypes, nulls, first rows), ``{df:schema}``, ``{df:head=20}``, ``{df:sample=20}``
(seeded) and ``{df:describe}``, each fitted to ``frame_budget`` tokens. Other objects without a format
spec are inserted by their text: another frame-like object with ``to_string`` (at most ``max_rows``
rows, with a note when truncated), anything else with ``str``, cut at ``max_chars`` with a note.
In a notebook namespace, ``{In[3]}`` / ``{Out[3]}`` (a cell's input and output by execution count) and
``{_}`` (the last output) are ordinary index and name lookups.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]
import inspect
from collections.abc import Mapping
from string import Formatter
from typing import Any

from .._base._errors import ConfigError
from ._frames import FRAME_BUDGET, FRAME_FORMS, frame_text, is_frame, parse_form

__all__ = ["PromptFieldError", "format_prompt", "template_fields", "to_prompt_text"]

MAX_ROWS = 60
MAX_CHARS = 20_000


class PromptFieldError(ConfigError):
    """A ``{field}`` of a prompt could not be filled."""


def _frame_text(obj: Any, max_rows: int) -> str | None:
    shape = getattr(obj, "shape", None)
    to_string = getattr(obj, "to_string", None)
    head = getattr(obj, "head", None)
    if not (isinstance(shape, tuple) and callable(to_string) and callable(head)):
        return None
    rows = shape[0] if shape else 0
    if rows > max_rows:
        text = str(head(max_rows).to_string())
        size = f"{rows:,} rows × {shape[1]:,} columns" if len(shape) > 1 else f"{rows:,} rows"
        return f"{text}\n[… truncated: {type(obj).__name__} with {size}; showing the first {max_rows} rows]"
    return str(to_string())


def to_prompt_text(
    obj: Any, *, max_rows: int = MAX_ROWS, max_chars: int = MAX_CHARS, frame_budget: int = FRAME_BUDGET
) -> str:
    """The text an object contributes to a prompt (see the module docstring)."""
    if is_frame(obj):
        return frame_text(obj, budget=frame_budget)
    text = obj if isinstance(obj, str) else _frame_text(obj, max_rows)
    if text is None:
        text = str(obj)
    if len(text) > max_chars:
        text = (
            text[:max_chars] + f"\n[… truncated: {len(text):,} characters; showing the first {max_chars:,}]"
        )
    return text


def _resolve(field: str, namespace: Mapping[str, Any]) -> Any:
    try:
        first, rest = _string.formatter_field_name_split(field)
    except ValueError as exc:
        raise PromptFieldError(f"prompt field {{{field}}} is not valid: {exc}", hint=_BRACES) from None
    if isinstance(first, int) or first == "":
        raise PromptFieldError(
            f"prompt field {{{field}}} is positional; only names from the namespace can be filled",
            hint=_BRACES,
        )
    if not first.isidentifier():
        raise PromptFieldError(f"prompt field {{{field}}} is not a variable name", hint=_BRACES)
    if first not in namespace:
        raise PromptFieldError(f"name {first!r} in prompt field {{{field}}} is not defined", hint=_BRACES)
    obj = namespace[first]
    path = first
    for is_attr, key in rest:
        if is_attr:
            if key.startswith("__"):
                raise PromptFieldError(f"prompt field {{{field}}}: dunder attributes are not allowed")
            try:
                obj = getattr(obj, key)
            except AttributeError:
                raise PromptFieldError(f"prompt field {{{field}}}: {path} has no attribute {key!r}") from None
            path += f".{key}"
        else:
            try:
                obj = obj[key]
            except (KeyError, IndexError, TypeError) as exc:
                raise PromptFieldError(
                    f"prompt field {{{field}}}: {path}[{key!r}] failed ({_lookup_failure(obj, key, exc)})"
                ) from None
            path += f"[{key!r}]"
    if inspect.isroutine(obj):
        # Its text would be "<built-in method upper of str object at 0x…>": nothing the model can use,
        # and an address that changes every run (so a job's state never finds the earlier answer).
        raise PromptFieldError(
            f"prompt field {{{field}}} is a function or method, not a value",
            hint="prompt fields cannot call; compute the value into a variable or column first",
        )
    return obj


def _lookup_failure(container: Any, key: Any, exc: Exception) -> str:
    """Why ``container[key]`` failed, with what it holds (e.g. which cells ``Out`` has)."""
    if isinstance(exc, IndexError) and hasattr(container, "__len__"):
        return f"index out of range: it has {len(container)} items"
    if isinstance(exc, KeyError) and isinstance(container, Mapping):
        keys = list(container)
        shown = ", ".join(repr(k) for k in keys[:10]) + (", …" if len(keys) > 10 else "")
        return f"no such key; keys: {shown}" if keys else "no such key; it is empty"
    return type(exc).__name__


_BRACES = "write {{ and }} for literal braces, or use %%claude --raw to send the cell unchanged"


def format_prompt(
    template: str,
    namespace: Mapping[str, Any],
    *,
    max_rows: int = MAX_ROWS,
    max_chars: int = MAX_CHARS,
    frame_budget: int = FRAME_BUDGET,
    _depth: int = 0,
) -> str:
    """Fill ``{fields}`` of ``template`` from ``namespace`` (see the module docstring).

    ``frame_budget`` is the token budget of each DataFrame/Series field.
    """
    out: list[str] = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise PromptFieldError(f"the prompt's braces do not parse: {exc}", hint=_BRACES) from None
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        obj = _resolve(field, namespace)
        if conversion:
            if conversion == "r":
                obj = repr(obj)
            elif conversion == "a":
                obj = ascii(obj)
            elif conversion == "s":
                obj = str(obj)
            else:
                raise PromptFieldError(f"prompt field {{{field}!{conversion}}}: unknown conversion")
        if spec and _depth < 2 and "{" in spec:
            spec = format_prompt(spec, namespace, _depth=_depth + 1)
        if is_frame(obj):
            out.append(_frame_field(obj, field, spec or "", frame_budget))
        elif spec:
            try:
                out.append(format(obj, spec))
            except (ValueError, TypeError) as exc:
                raise PromptFieldError(f"prompt field {{{field}:{spec}}}: {exc}") from None
        else:
            out.append(to_prompt_text(obj, max_rows=max_rows, max_chars=max_chars))
    return "".join(out)


def _frame_field(obj: Any, field: str, spec: str, budget: int) -> str:
    if parse_form(spec) is None:
        raise PromptFieldError(
            f"prompt field {{{field}:{spec}}}: {spec!r} is not a DataFrame form",
            hint=f"use {FRAME_FORMS.replace('df', field)}",
        )
    return frame_text(obj, spec, budget=budget)


def template_fields(template: str) -> list[str]:
    """The names a template reads from its namespace, in order, each once (``{row.a}`` and ``{d[k]}``
    read ``row`` and ``d``), so that a caller can report every missing one before filling anything."""
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise PromptFieldError(f"the prompt's braces do not parse: {exc}", hint=_BRACES) from None
    for _literal, field, spec, _conversion in parsed:
        for text in (field, *_nested_fields(spec)):
            if not text:
                continue
            try:
                first, _rest = _string.formatter_field_name_split(text)
            except ValueError:
                continue  # format_prompt reports it, with the rules
            if isinstance(first, str) and first and first not in names:
                names.append(first)
    return names


def _nested_fields(spec: str | None) -> list[str]:
    if not spec or "{" not in spec:
        return []
    try:
        return [f for _l, f, _s, _c in Formatter().parse(spec) if f]
    except ValueError:
        return []

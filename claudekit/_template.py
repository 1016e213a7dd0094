"""Filling ``{name}`` fields of a prompt template from a namespace — without evaluating code.

Shared by the ``%%claude`` magic (the notebook namespace) and anything that fills templates per row.

Rules (those of ``str.format``, restricted): ``{name}``, ``{obj.attr}``, ``{d[key]}`` / ``{xs[0]}``,
conversions ``!r``/``!s``/``!a`` and format specs (``{x:.2f}``); ``{{`` and ``}}`` are literal braces.
Names resolve in the namespace only, through attribute and index access: nothing is evaluated, and
dunder attributes are refused. A missing name is an error that names it. Objects without a format spec
are inserted by their text: a DataFrame/Series with ``to_string`` (at most ``max_rows`` rows, with a
note when truncated), anything else with ``str``, cut at ``max_chars`` with a note.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]
from collections.abc import Mapping
from string import Formatter
from typing import Any

from ._errors import ConfigError

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


def to_prompt_text(obj: Any, *, max_rows: int = MAX_ROWS, max_chars: int = MAX_CHARS) -> str:
    """The text an object contributes to a prompt (see the module docstring)."""
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
                    f"prompt field {{{field}}}: {path}[{key!r}] failed ({type(exc).__name__})"
                ) from None
            path += f"[{key!r}]"
    return obj


_BRACES = "write {{ and }} for literal braces, or use %%claude --raw to send the cell unchanged"


def format_prompt(
    template: str,
    namespace: Mapping[str, Any],
    *,
    max_rows: int = MAX_ROWS,
    max_chars: int = MAX_CHARS,
    _depth: int = 0,
) -> str:
    """Fill ``{fields}`` of ``template`` from ``namespace`` (see the module docstring)."""
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
        if spec:
            if _depth < 2 and "{" in spec:
                spec = format_prompt(spec, namespace, _depth=_depth + 1)
            try:
                out.append(format(obj, spec))
            except (ValueError, TypeError) as exc:
                raise PromptFieldError(f"prompt field {{{field}:{spec}}}: {exc}") from None
        else:
            out.append(to_prompt_text(obj, max_rows=max_rows, max_chars=max_chars))
    return "".join(out)


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

"""Filling ``{name}`` fields of a prompt template from a namespace — without evaluating code.

Shared by the ``%%claude`` magic (the notebook namespace) and anything that fills templates per row.

Rules (those of ``str.format``, restricted): ``{name}``, ``{obj.attr}``, ``{d[key]}`` / ``{xs[0]}``,
conversions ``!r``/``!s``/``!a`` and format specs (``{x:.2f}``); ``{{`` and ``}}`` are literal braces.
Names resolve in the namespace only, through attribute and index access: nothing is evaluated.

A field reaches only what a prompt needs. Refused: private and dunder attributes (``{x._y}``), modules
(``{os.environ}``), the environment, interpreter frames and what holds one (generators, coroutines,
tracebacks), functions and methods, the API client and anything holding it (a ``Chat``), nested format
specs (``{x:{y}}``), and any value whose text holds the API key in use or a key-shaped string (the
test of :func:`claudekit._base._secrets.scrub`, the store's redaction). A refusal, like every error here,
quotes the template, never the value. A missing name is an error that names it.

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
import os
import types
from collections.abc import Mapping
from string import Formatter
from typing import Any

import anthropic
import httpx2

from .._base._errors import ConfigError
from .._base._secrets import current_secrets, has_secret, scrub
from ._content import Blockish
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
    _check_reachable(field, path, obj)
    for is_attr, key in rest:
        if is_attr:
            if key.startswith("_"):
                raise PromptFieldError(
                    f"prompt field {{{field}}}: private and dunder attributes ({key!r}) are not allowed",
                    hint=_REACH,
                )
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
        _check_reachable(field, path, obj)
    return obj


_REACH = "a prompt field reads data; compute what the prompt needs into a variable or column first"
_CLIENT_TYPES = (anthropic._base_client.BaseClient, httpx2.Client, httpx2.AsyncClient)


def _unreachable(obj: Any) -> str | None:
    """What ``obj`` is when a prompt field must not reach it (None when it may)."""
    if isinstance(obj, types.ModuleType):
        return "a module (its globals reach everything, os.environ included)"
    if isinstance(obj, type(os.environ)):
        return "the environment"
    if isinstance(obj, types.FrameType | types.TracebackType | types.CodeType):
        return "an interpreter frame"
    if inspect.isgenerator(obj) or inspect.iscoroutine(obj) or inspect.isasyncgen(obj):
        return "a generator or coroutine (it holds a frame)"
    if inspect.isroutine(obj):
        # Its text would be "<built-in method upper of str object at 0x…>": nothing the model can use,
        # and an address that changes every run (so a job's state never finds the earlier answer).
        return "a function or method, not a value (prompt fields cannot call)"
    if _holds_client(obj):
        return "the API client, or an object holding it (a Chat)"
    return None


def _holds_client(obj: Any) -> bool:
    """The client itself, or an object with the client (or a handle whose ``client`` is one) as an
    attribute: a Chat holds claudekit's handle of its client. Read from ``__dict__``s: no code runs."""
    if isinstance(obj, _CLIENT_TYPES):
        return True
    if isinstance(obj, type):
        return False  # a class's namespace holds functions, not a client
    for value in _attrs(obj).values():
        if isinstance(value, _CLIENT_TYPES) or isinstance(_attrs(value).get("client"), _CLIENT_TYPES):
            return True
    return False


def _attrs(obj: Any) -> dict[str, Any]:
    try:
        found = vars(obj)
    except TypeError:
        return {}
    return found if isinstance(found, dict) else {}


def _check_reachable(field: str, path: str, obj: Any) -> None:
    what = _unreachable(obj)
    if what is not None:
        raise PromptFieldError(f"prompt field {{{field}}}: {path} is {what}", hint=_REACH)


def _lookup_failure(container: Any, key: Any, exc: Exception) -> str:
    """Why ``container[key]`` failed, with what it holds (e.g. which cells ``Out`` has)."""
    if isinstance(exc, IndexError) and hasattr(container, "__len__"):
        return f"index out of range: it has {len(container)} items"
    if isinstance(exc, KeyError) and isinstance(container, Mapping):
        keys = list(container)
        shown = ", ".join(repr(k) for k in keys[:10]) + (", …" if len(keys) > 10 else "")
        # Keys are data too: redacted as the store redacts (a dict keyed by tokens).
        return scrub(f"no such key; keys: {shown}") if keys else "no such key; it is empty"
    return type(exc).__name__


_BRACES = "write {{ and }} for literal braces, or use %%claude --raw to send the cell unchanged"


def format_prompt(
    template: str,
    namespace: Mapping[str, Any],
    *,
    max_rows: int = MAX_ROWS,
    max_chars: int = MAX_CHARS,
    frame_budget: int = FRAME_BUDGET,
    attachments: list[Any] | None = None,
) -> str:
    """Fill ``{fields}`` of ``template`` from ``namespace`` (see the module docstring).

    ``frame_budget`` is the token budget of each DataFrame/Series field. With an ``attachments`` list, a
    field holding a content object (a ``Document``, ``Image``, ``File``, ``SearchResult``) is appended to
    it and the text names it instead ("the attached document "q3.pdf""): the caller sends the
    attachments with the text, as blocks.
    """
    out: list[str] = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise PromptFieldError(f"the prompt's braces do not parse: {exc}", hint=_BRACES) from None
    secrets = current_secrets()
    if has_secret(template, secrets):
        raise PromptFieldError(
            "the prompt's own text holds an API key (or a key-shaped value); nothing was sent",
            hint="take the key out of the prompt",
        )
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        shown = _field_text(field, spec, conversion)
        if spec and "{" in spec:
            # "{x:{os.environ[...]}}": a field inside a format spec, whose value error messages would quote.
            raise PromptFieldError(f"prompt field {shown}: nested fields in a format spec are not allowed")
        obj = _attachment(field, spec, conversion, namespace) if attachments is not None else None
        if obj is not None and attachments is not None:
            attachments.append(obj)
            out.append(_attachment_label(obj, len(attachments)))
            continue
        text = _fill(field, shown, spec or "", conversion, namespace, max_rows, max_chars, frame_budget)
        if has_secret(text, secrets):
            raise PromptFieldError(
                f"prompt field {shown} holds an API key (or a key-shaped value); nothing was sent",
                hint="a prompt never carries a key: leave that value out of the prompt",
            )
        out.append(text)
    return "".join(out)


def _attachment(field: str, spec: str | None, conversion: str | None, namespace: Mapping[str, Any]) -> Any:
    """The field's value when it is a content object sent as its own block (no spec, no conversion)."""
    if spec or conversion:
        return None
    obj = _resolve(field, namespace)
    return obj if isinstance(obj, Blockish) and not isinstance(obj, str) else None


def _attachment_label(obj: Any, n: int) -> str:
    kind = {"document": "document", "image": "image", "search_result": "search result"}.get(
        str(obj.to_block().get("type")), "attachment"
    )
    title = getattr(obj, "title", None) or getattr(obj, "filename", None)
    return f'the attached {kind} "{title}"' if title else f"the attached {kind} (attachment {n})"


def _field_text(field: str, spec: str | None, conversion: str | None) -> str:
    """The field as the template writes it: what an error quotes (never the value)."""
    return "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def _fill(
    field: str,
    shown: str,
    spec: str,
    conversion: str | None,
    namespace: Mapping[str, Any],
    max_rows: int,
    max_chars: int,
    frame_budget: int,
) -> str:
    obj = _resolve(field, namespace)
    if conversion:
        if conversion == "r":
            obj = repr(obj)
        elif conversion == "a":
            obj = ascii(obj)
        elif conversion == "s":
            obj = str(obj)
        else:
            raise PromptFieldError(f"prompt field {shown}: unknown conversion")
    if is_frame(obj):
        return _frame_field(obj, field, spec, frame_budget)
    if spec:
        try:
            return format(obj, spec)
        except (ValueError, TypeError):
            # Not the exception's text: an object's own __format__ may put its value there.
            raise PromptFieldError(
                f"prompt field {shown}: the format spec {spec!r} does not apply to a {type(obj).__name__}"
            ) from None
    return to_prompt_text(obj, max_rows=max_rows, max_chars=max_chars)


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
    for _literal, field, _spec, _conversion in parsed:
        if not field:
            continue
        try:
            first, _rest = _string.formatter_field_name_split(field)
        except ValueError:
            continue  # format_prompt reports it, with the rules
        if isinstance(first, str) and first and first not in names:
            names.append(first)
    return names

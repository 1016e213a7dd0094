"""What a DataFrame job sends: one request per distinct prompt, tied back to its rows.

A row's prompt comes from a template with ``{column}`` fields (the magic's rules, see
:mod:`claudekit._request._template`) or from a function of the row (a dict of its values) returning text or
content blocks. Every column a template names is checked before anything is sent. Rows whose
request would be identical (same prompt, model and settings) share one request: its fingerprint.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Any

import pandas as pd

from .._base._errors import ClaudekitError, ConfigError
from .._request._content import to_blocks
from .._request._documents import check_citations
from .._request._settings import Settings, build_request, output_schema
from .._request._template import format_prompt, template_fields
from ._fields import BOOKKEEPING, TEXT_COLUMN, Field, output_fields

__all__ = ["Plan", "Request", "make_plan", "merged_params"]

PromptSpec = str | Callable[[dict[Any, Any]], Any]
_CLEAN_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class _Shared:
    """What every request of a plan has in common: the body without messages, the examples."""

    base: dict[str, Any]
    prefix: list[dict[str, Any]]


@dataclass(slots=True)
class Request:
    """One distinct request: its fingerprint, the first row's label, the rows that share it, and the
    row's own prompt (text, or content blocks); the body is built when it is needed (memory: a 100k-row
    job holds 100k of these)."""

    fp: str
    content: str | list[dict[str, Any]] | None  # None once a live job has its answer
    rows: list[int]
    chars: int  # size of the row-specific prompt, for token estimates
    label: Any
    shared: _Shared

    @property
    def custom_id(self) -> str:
        """1–64 characters of ``[A-Za-z0-9_-]``: the row key and the fingerprint (stable across runs)."""
        return f"{_key_part(self.label)}-{self.fp[:16]}"

    @property
    def body(self) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for this request."""
        content = self.content
        if content is None:
            raise RuntimeError("this request's prompt was released after it was answered")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        return {**self.shared.base, "messages": [*self.shared.prefix, {"role": "user", "content": blocks}]}


@dataclass
class Plan:
    """The rows of a job and the requests that answer them."""

    settings: Settings
    index: pd.Index
    row_fp: list[str | None]  # per row position; None when its prompt could not be built
    row_error: dict[int, str]
    requests: dict[str, Request]  # by fingerprint, in the order of their first row
    fields: list[Field] | None  # the output columns with output_format, else None (text)
    shared_prefix_cached: bool = False

    @property
    def rows(self) -> int:
        return len(self.row_fp)

    @property
    def keys(self) -> list[Any]:
        """The row labels as JSON can keep them (for a state file)."""
        return [_json_key(k) for k in self.index.tolist()]


def make_plan(
    df: pd.DataFrame,
    prompt: PromptSpec,
    settings: Settings,
    *,
    examples: Sequence[Any] | None = None,
) -> Plan:
    """Check the inputs and build one request per distinct prompt (nothing is sent)."""
    fields = output_fields(output_schema(settings.output_format)) if settings.output_format else None
    _check_columns(df, fields)
    prefix = _example_messages(examples, _examples_ttl(settings))
    base = build_request(settings, [*prefix, {"role": "user", "content": "."}])
    # Only the shared prefix (system, tools, examples) is worth a cache write: each row's own text is
    # read once, so the top-level automatic marker would make every row pay for a write.
    base.pop("cache_control", None)
    base.pop("diagnostics", None)
    cached = _has_marker(base.get("system")) or _has_marker(base.get("tools")) or _has_marker(prefix)
    base.pop("messages")
    shared = _Shared(base, prefix)
    shared_key = _canonical(merged_params(base)) + _canonical(prefix)
    prompts = _row_prompts(df, prompt)
    labels = df.index.tolist()
    row_fp: list[str | None] = []
    row_error: dict[int, str] = {}
    requests: dict[str, Request] = {}
    for pos, built in enumerate(prompts):
        if isinstance(built, _RowError):
            row_fp.append(None)
            row_error[pos] = built.message
            continue
        content, chars = built
        fp = hashlib.blake2b((shared_key + _content_key(content)).encode(), digest_size=16).hexdigest()
        row_fp.append(fp)
        req = requests.get(fp)
        if req is None:
            requests[fp] = Request(fp, _compact(content), [pos], chars, labels[pos], shared)
        else:
            req.rows.append(pos)
    return Plan(settings, df.index, row_fp, row_error, requests, fields, cached)


def merged_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """A request body as JSON on the wire: ``extra_body`` (sampling knobs) merged in."""
    out = {k: v for k, v in body.items() if k != "extra_body"}
    out.update(body.get("extra_body") or {})
    return out


class _RowError:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _check_columns(df: pd.DataFrame, fields: list[Field] | None) -> None:
    names = [TEXT_COLUMN] if fields is None else [f.name for f in fields]
    taken = [c for c in (*BOOKKEEPING, *names) if c in df.columns]
    if taken:
        raise ConfigError(
            f"the DataFrame already has column(s) {', '.join(map(repr, taken))}, which the answer would fill",
            hint="drop or rename them first (df.drop(columns=[...])), e.g. the result of an earlier run",
        )


def _row_prompts(df: pd.DataFrame, prompt: PromptSpec) -> list[tuple[Any, int] | _RowError]:
    if isinstance(prompt, str):
        _check_template(prompt)
        _check_unique(df, template_fields(prompt))
        return _template_prompts(df, prompt)
    if callable(prompt):
        _check_unique(df, list(df.columns))  # the row dict would keep only one of them
        return _function_prompts(df, prompt)
    raise ConfigError(
        f"prompt must be a template string or a function of the row, got {type(prompt).__name__}",
        hint="e.g. prompt='Classify: {review}' or prompt=lambda row: f'Classify: {row[\"review\"]}'",
    )


def _template_prompts(df: pd.DataFrame, template: str) -> list[tuple[Any, int] | _RowError]:
    names = template_fields(template)
    missing = [n for n in names if n not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:20])) + (" …" if len(df.columns) > 20 else "")
        raise ConfigError(
            f"the prompt names column(s) {', '.join(map(repr, missing))} that the DataFrame does not have",
            hint=f"its columns are: {have}; write {{{{ and }}}} for literal braces",
        )
    columns = {n: df[n].tolist() for n in names}
    # A missing cell (None, NaN, NA, NaT) would be sent as the text "nan" or "None" and paid for.
    absent = {n: df[n].isna().to_numpy() for n in names}
    out: list[tuple[Any, int] | _RowError] = []
    for pos in range(len(df)):
        empty = [n for n, mask in absent.items() if mask[pos]]
        if empty:
            out.append(_RowError(_missing_message(empty)))
            continue
        row = {n: values[pos] for n, values in columns.items()}
        try:
            # A cell is the row's data, sent whole (never cut at the magic's 20,000 characters).
            text = format_prompt(template, row, max_chars=sys.maxsize)
            out.append((to_blocks(text), len(text)))
        except ClaudekitError as err:
            out.append(_RowError(err.message))
    return out


def _check_unique(df: pd.DataFrame, names: Sequence[Any]) -> None:
    counts = df.columns.value_counts()
    twice = [n for n in names if n in counts.index and counts[n] > 1]
    if twice:
        raise ConfigError(
            f"the DataFrame has more than one column named {', '.join(map(repr, twice))}",
            hint="rename them first, e.g. df.columns = [...], so that each row has one value per name",
        )


def _check_template(template: str) -> None:
    """Refuse, before anything is sent, a template that could not be filled for any row: a positional
    field, a field that is not a name (a column such as ``my col``), an unknown conversion."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"the prompt's braces do not parse: {exc}", hint=_BRACES) from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec and "{" in spec:
            raise ConfigError(
                f"prompt field {{{field}:{spec}}}: nested fields in a format spec are not allowed"
            )
        try:
            first, _rest = _string.formatter_field_name_split(field)
        except ValueError as exc:
            raise ConfigError(f"prompt field {{{field}}} is not valid: {exc}", hint=_BRACES) from None
        if isinstance(first, int) or first == "":
            raise ConfigError(f"prompt field {{{field}}} is positional; name a column instead", hint=_BRACES)
        if not first.isidentifier():
            raise ConfigError(
                f"prompt field {{{field}}} is not a name a template can use",
                hint=f"use a function prompt for such columns, e.g. prompt=lambda row: row[{first!r}]",
            )
        if conversion and conversion not in "rsa":
            raise ConfigError(f"prompt field {{{field}!{conversion}}}: unknown conversion (use !r, !s or !a)")


_BRACES = "a field is {column}; write {{ and }} for literal braces"


def _missing_message(columns: list[str]) -> str:
    named = ", ".join(map(repr, columns))
    return (
        f"column {named} is empty (NaN/None) in this row, so nothing was sent; "
        "fill it first (df.fillna(...)) or drop the row"
    )


def _function_prompts(
    df: pd.DataFrame, fn: Callable[[dict[Any, Any]], Any]
) -> list[tuple[Any, int] | _RowError]:
    out: list[tuple[Any, int] | _RowError] = []
    for row in df.to_dict("records"):
        try:
            blocks = to_blocks(fn(row))
            check_citations((), blocks)
        except ClaudekitError as err:
            out.append(_RowError(err.message))
            continue
        except Exception as exc:  # the user's function failed on this row: that row only
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            out.append(_RowError(f"the prompt function raised {detail}"))
            continue
        out.append((blocks, sum(len(b["text"]) if b.get("type") == "text" else 1000 for b in blocks)))
    return out


def _example_messages(examples: Sequence[Any] | None, ttl: str | None) -> list[dict[str, Any]]:
    """Few-shot ``(question, answer)`` pairs (or message dicts) as a cached conversation prefix."""
    if not examples:
        return []
    messages: list[dict[str, Any]] = []
    for ex in examples:
        if isinstance(ex, Mapping) and "role" in ex:
            messages.append({"role": ex["role"], "content": to_blocks(ex["content"])})
        elif isinstance(ex, tuple | list) and len(ex) == 2:
            messages.append({"role": "user", "content": to_blocks(ex[0])})
            messages.append({"role": "assistant", "content": to_blocks(ex[1])})
        else:
            raise ConfigError(
                f"an example must be a (question, answer) pair or a message dict, got {ex!r:.80}",
                hint="e.g. examples=[('great phone', 'positive'), ('broke in a day', 'negative')]",
            )
    if messages[0]["role"] != "user" or messages[-1]["role"] != "assistant":
        raise ConfigError("examples must start with a user turn and end with an assistant turn")
    if ttl:
        last = messages[-1]["content"]
        last[-1] = {**last[-1], "cache_control": {"type": "ephemeral", "ttl": ttl}}
    return messages


def _examples_ttl(settings: Settings) -> str | None:
    """The examples' marker TTL: the job's, but never longer than a marker of the user's in the system
    prompt (the service refuses a 1h marker after a 5m one; ``batch`` defaults to 1h)."""
    ttl = settings.cache_ttl
    if ttl == "1h" and "5m" in _marker_ttls(settings.system):
        return "5m"
    return ttl


def _marker_ttls(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        found = {str(value["cache_control"].get("ttl") or "5m")} if _is_marker(value) else set()
        return found.union(*(_marker_ttls(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_marker_ttls(v) for v in value))
    return set()


def _is_marker(block: Mapping[str, Any]) -> bool:
    return isinstance(block.get("cache_control"), Mapping)


def _has_marker(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "cache_control" in value or any(_has_marker(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_marker(v) for v in value)
    return False


def _compact(content: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text block kept as its text (a third of the memory)."""
    if len(content) == 1 and content[0].get("type") == "text" and len(content[0]) == 2:
        return str(content[0]["text"])
    return content


def _content_key(content: list[dict[str, Any]]) -> str:
    """The row's prompt as fingerprint input: its text when it is one text block (cheap), else JSON."""
    if len(content) == 1 and content[0].get("type") == "text" and len(content[0]) == 2:
        return "\x00t" + str(content[0]["text"])
    return "\x00j" + _canonical(content)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _key_part(label: Any) -> str:
    """The row key in a ``custom_id``: the label itself when it is short and plain, else a hash of it."""
    text = str(label)
    if _CLEAN_KEY.fullmatch(text):
        return text
    return "k" + hashlib.blake2b(repr(label).encode(), digest_size=5).hexdigest()


def _json_key(label: Any) -> Any:
    """An index label as JSON can keep it (numpy scalars as numbers, tuples as lists, others as text)."""
    if isinstance(label, str | bool | int | float) or label is None:
        return label
    item = getattr(label, "item", None)
    if callable(item):
        value = item()
        if isinstance(value, str | bool | int | float):
            return value
    if isinstance(label, tuple):
        return [_json_key(v) for v in label]
    return str(label)

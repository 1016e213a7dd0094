"""DataFrames as prompt text: shape, dtypes, nulls and rows, fitted to a token budget.

The forms (``spec`` is what follows the colon in a template field ``{df:spec}``):

- ``""`` — overview: shape, index, one line per column (dtype and null count), the first rows;
- ``"schema"`` — shape, index and columns with their dtypes;
- ``"head"`` / ``"head=N"`` — the first N rows (5 by default);
- ``"sample"`` / ``"sample=N"`` — N rows drawn at random with a fixed seed (stable across runs);
- ``"describe"`` — ``DataFrame.describe(include="all")``.

Every form fits ``budget`` tokens (counted with the offline backend's deterministic counter): rows, then
listed columns are cut, and the text says what was left out. Series render as one-column frames.
Nothing here imports pandas: a frame is recognised only when pandas is already imported.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "FRAME_BUDGET",
    "FRAME_FORMS",
    "SAMPLE_SEED",
    "frame_outline",
    "frame_text",
    "is_frame",
    "parse_form",
]

#: Default token budget of one rendered frame.
FRAME_BUDGET = 2_000
#: Seed of ``{df:sample=N}``, so that a notebook re-run sends (and nbval sees) the same rows.
SAMPLE_SEED = 0
FRAME_FORMS = "{df}, {df:schema}, {df:head=N}, {df:sample=N} or {df:describe}"
_DEFAULT_ROWS = 5
_MAX_CATEGORIES = 5
_MAX_CELL = 40  # characters of one value in a row listing
_FORM_RE = re.compile(r"^(schema|describe|head|sample)(?:=(\d+))?$")


def is_frame(obj: Any) -> bool:
    """True for a pandas DataFrame or Series (without importing pandas)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, (pd.DataFrame, pd.Series))


def parse_form(spec: str) -> tuple[str, int] | None:
    """``"head=20"`` → ``("head", 20)``; ``""`` → ``("overview", 5)``; None when not a frame form."""
    if spec == "":
        return "overview", _DEFAULT_ROWS
    m = _FORM_RE.match(spec.strip())
    if m is None:
        return None
    kind, n = m.group(1), m.group(2)
    if n is not None and kind in ("schema", "describe"):
        return None
    return kind, int(n) if n is not None else _DEFAULT_ROWS


def _count(text: str) -> int:
    from ..offline import count_text

    return count_text(text)


def _width(text: str) -> int:
    """Display width: East Asian wide and full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _label(value: Any) -> str:
    """A column or index label as a reader would index it: plain text for tidy strings, else repr."""
    if isinstance(value, str) and value and value == value.strip() and value.isprintable():
        return value
    return repr(value)


def _dtype(series: Any) -> str:
    """The dtype, with what a bare ``object`` or ``category`` hides."""
    dtype = series.dtype
    name = str(dtype)
    if name == "category":
        cats = list(dtype.categories)
        shown = ", ".join(repr(c) for c in cats[:_MAX_CATEGORIES])
        more = ", …" if len(cats) > _MAX_CATEGORIES else ""
        ordered = ", ordered" if dtype.ordered else ""
        return f"category ({len(cats)}{ordered}: {shown}{more})"
    if name == "object":
        import pandas as pd

        # What the values are (strings? mixed?), judged on the first rows so wide or long frames stay fast.
        inferred = pd.api.types.infer_dtype(series.head(1000), skipna=True)
        return f"object ({inferred})" if inferred != "empty" else "object"
    return name


def _as_frame(obj: Any) -> tuple[Any, str]:
    """(frame, what it is): a Series becomes a one-column frame named after it."""
    import pandas as pd

    if isinstance(obj, pd.Series):
        name = obj.name if obj.name is not None else "value"
        title = f"Series {_label(obj.name)}" if obj.name is not None else "Series"
        return obj.to_frame(name=name), title
    return obj, "DataFrame"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _size(frame: Any, title: str) -> str:
    rows, cols = frame.shape
    if title.startswith("Series"):
        return f"{title}: {_n(rows, 'row')}"
    return f"{title}: {_n(rows, 'row')} × {_n(cols, 'column')}"


def _index_line(frame: Any) -> str | None:
    """How rows are labelled, unless it is the default 0..n-1 RangeIndex."""
    import pandas as pd

    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    if isinstance(index, pd.MultiIndex):
        levels = ", ".join(f"{_label(name)} ({index.levels[i].dtype})" for i, name in enumerate(index.names))
        return f"index: MultiIndex of {index.nlevels} levels: {levels}"
    name = f" {_label(index.name)}" if index.name is not None else ""
    return f"index: {type(index).__name__}{name} ({index.dtype})"


def _columns_line(frame: Any) -> str | None:
    import pandas as pd

    if isinstance(frame.columns, pd.MultiIndex):
        names = [n for n in frame.columns.names if n is not None]
        named = f" ({', '.join(_label(n) for n in names)})" if names else ""
        return f"columns: MultiIndex of {frame.columns.nlevels} levels{named}; labels are tuples"
    return None


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


class _Columns:
    """Label, dtype and null count of every column, computed once per rendering."""

    def __init__(self, frame: Any, nulls: bool) -> None:
        self.frame = frame
        self.labels = [_label(c) for c in frame.columns]
        self.dtypes = [_dtype(frame.iloc[:, i]) for i in range(frame.shape[1])]
        counts = frame.isna().sum() if nulls else None
        self.nulls = [str(int(v)) for v in counts] if counts is not None else None

    def lines(self, shown: int) -> list[str]:
        """One line per column (the first ``shown``), then what the rest are."""
        n = len(self.labels)
        if n == 0:
            return ["columns: none"]
        header = ("column", "dtype", "nulls") if self.nulls is not None else ("column", "dtype")
        rows: list[tuple[str, ...]] = [header]
        for i in range(min(shown, n)):
            cells = (self.labels[i], self.dtypes[i])
            rows.append((*cells, self.nulls[i]) if self.nulls is not None else cells)
        lines = _table(rows)
        if shown < n:
            rest = Counter(str(self.frame.dtypes.iloc[i]) for i in range(shown, n))
            kinds = ", ".join(f"{k} ×{v:,}" for k, v in rest.most_common())
            lines.append(f"  … {n - shown:,} more columns not listed ({kinds})")
        return lines


def _rows_text(frame: Any, max_cols: int | None) -> str:
    import pandas as pd

    with pd.option_context("display.unicode.east_asian_width", True):
        return str(frame.to_string(max_cols=max_cols, max_colwidth=_MAX_CELL))


def _rows_block(frame: Any, what: str, n_rows: int, max_cols: int | None) -> list[str]:
    total_cols = frame.shape[1]
    cut_cols = max_cols is not None and max_cols < total_cols
    cols_note = f", {max_cols} of {total_cols:,} columns" if cut_cols else ""
    return [f"{what}{cols_note}:", _rows_text(frame, max_cols if cut_cols else None)]


def _header(frame: Any, title: str, suffix: str = "") -> list[str]:
    lines = [_size(frame, title) + suffix]
    lines += [x for x in (_index_line(frame), _columns_line(frame)) if x]
    return lines


def _fit(candidates: Iterator[Callable[[], str]], budget: int) -> str:
    """The first candidate text within ``budget`` tokens; else the last one, cut to fit."""
    text = ""
    for make in candidates:
        text = make()
        if _count(text) <= budget:
            return text
    return _cut(text, budget)


def _cut(text: str, budget: int, *, say_budget: bool = True) -> str:
    """Keep whole lines from the start while they fit, and say how many were dropped."""
    lines = text.splitlines()
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = _count(line) + 1
        if used + cost > budget - 12:
            break
        kept.append(line)
        used += cost
    why = f" to fit {budget:,} tokens" if say_budget else ""
    return "\n".join([*kept, f"[… {len(lines) - len(kept):,} more lines cut{why}]"])


def _steps(n_cols: int, sizes: tuple[int, ...]) -> list[int]:
    """Column counts to try, largest first (only those smaller than the frame's)."""
    return [n_cols] + [s for s in sizes if s < n_cols]


def _overview(frame: Any, title: str, n_rows: int, budget: int) -> str:
    total = frame.shape[0]
    n = min(n_rows, total)
    head = frame.head(n)

    columns = _Columns(frame, nulls=True)
    blocks: dict[tuple[int, int | None], list[str]] = {}

    def make(listed: int, rows: int, row_cols: int | None) -> Callable[[], str]:
        def render() -> str:
            lines = _header(frame, title) + columns.lines(listed)
            if rows and total:
                if (rows, row_cols) not in blocks:
                    what = f"first {rows} rows" if rows < total else f"all {total} rows"
                    blocks[rows, row_cols] = _rows_block(head.head(rows), what, rows, row_cols)
                lines += blocks[rows, row_cols]
            return "\n".join(lines)

        return render

    n_cols = frame.shape[1]

    def plausible(listed: int, rows: int, row_cols: int) -> bool:
        """A listed column costs 3 tokens or more (name, dtype, nulls), a shown value at least 1."""
        return 3 * listed + row_cols * (rows + 1) <= budget

    def candidates() -> Iterator[Callable[[], str]]:
        for row_cols in _steps(n_cols, (20, 10)):
            if plausible(n_cols, n, row_cols):
                yield make(n_cols, n, row_cols)
        for listed in _steps(n_cols, (200, 100, 50, 20, 10)):
            for rows in dict.fromkeys((n, min(n, 3))):
                if plausible(listed, rows, min(n_cols, 10)):
                    yield make(listed, rows, min(n_cols, 10))
        yield make(min(n_cols, 10), 0, None)

    return _fit(candidates(), budget)


def _schema(frame: Any, title: str, budget: int) -> str:
    columns = _Columns(frame, nulls=False)

    def make(k: int) -> Callable[[], str]:
        return lambda: "\n".join(_header(frame, title) + columns.lines(k))

    widths = [k for k in _steps(frame.shape[1], (500, 200, 100, 50, 20, 10)) if 2 * k <= budget] or [10]
    return _fit((make(k) for k in widths), budget)


def _rows_form(frame: Any, title: str, rows: Any, what: str, budget: int) -> str:
    """``head`` and ``sample``: the rows asked for, fewer columns (then fewer rows) when over budget."""
    n_cols = frame.shape[1]
    asked = len(rows)

    def make(k: int, cols: int) -> Callable[[], str]:
        def render() -> str:
            lines = _header(frame, title)
            shown = what if k == asked else f"{what} (first {k} of them, to fit {budget:,} tokens)"
            return "\n".join(lines + _rows_block(rows.head(k), shown, k, cols))

        return render

    def candidates() -> Iterator[Callable[[], str]]:
        for cols in _steps(n_cols, (40, 20, 10)):
            if cols * (asked + 1) <= budget:  # every shown value costs a token or more
                yield make(asked, cols)
        k = asked
        while k > 1:
            k = max(1, k // 2)
            yield make(k, min(n_cols, 10))

    return _fit(candidates(), budget)


def _describe(frame: Any, title: str, budget: int) -> str:
    n_cols = frame.shape[1]
    if frame.shape[0] == 0 or n_cols == 0:
        return "\n".join([*_header(frame, title), "(empty: nothing to describe)"])
    # A described column costs well over 8 tokens (a dozen statistics): skip widths that cannot fit,
    # and compute the statistics once, for the widest candidate.
    widths = [k for k in _steps(n_cols, (100, 50, 20, 10, 5)) if k <= max(5, budget // 8)] or [5]
    stats = frame.iloc[:, : widths[0]].describe(include="all")

    def make(k: int) -> Callable[[], str]:
        def render() -> str:
            note = "" if k == n_cols else f" (first {k} of {n_cols:,} columns)"
            table = _rows_text(stats.iloc[:, :k], None)
            return "\n".join([*_header(frame, title), f"summary statistics{note}:", table])

        return render

    return _fit((make(k) for k in widths), budget)


def frame_text(obj: Any, spec: str = "", *, budget: int = FRAME_BUDGET) -> str:
    """The text of a DataFrame/Series in form ``spec`` (see the module docstring), within ``budget``."""
    form = parse_form(spec)
    if form is None:
        raise ValueError(f"unknown DataFrame form {spec!r}; use {FRAME_FORMS}")
    kind, n = form
    frame, title = _as_frame(obj)
    if kind == "overview":
        return _overview(frame, title, n, budget)
    if kind == "schema":
        return _schema(frame, title, budget)
    if kind == "describe":
        return _describe(frame, title, budget)
    total = frame.shape[0]
    if kind == "head":
        rows = frame.head(n)
        what = f"first {len(rows)} rows" if len(rows) < total else f"all {total} rows"
    else:
        rows = frame.sample(n=min(n, total), random_state=SAMPLE_SEED)
        what = f"{len(rows)} rows sampled at random (seed {SAMPLE_SEED})"
    return _rows_form(frame, title, rows, what, budget)


def frame_outline(obj: Any, *, max_columns: int = 12) -> str:
    """One line: kind, shape and the first columns with dtypes (for summaries of many variables)."""
    frame, title = _as_frame(obj)
    rows, n_cols = frame.shape
    if title.startswith("Series"):
        return f"{title}, {_n(rows, 'row')}, dtype {_dtype(frame.iloc[:, 0])}"
    cols = ", ".join(
        f"{_label(frame.columns[i])} ({_dtype(frame.iloc[:, i])})" for i in range(min(max_columns, n_cols))
    )
    more = f", … {n_cols - max_columns:,} more" if n_cols > max_columns else ""
    return f"DataFrame {_n(rows, 'row')} × {_n(n_cols, 'column')}: {cols}{more}"

"""What the kernel knows about the last error, as prompt text that fits a token budget.

``%claude why`` / ``%claude fix`` send more than the error message, because the cause is often in another
cell: the exception and its traceback, the failing cell's source, the source of the notebook cells that
define the functions in the traceback (IPython keeps every cell in ``linecache``), a summary of the local
variables of the innermost user frames (type, shape, columns and dtypes; values only with
``values=True``) and the versions of the packages whose frames appear.

The context fits ``budget`` tokens (the offline backend's counter): the least relevant parts are cut
first — package versions, then the locals of outer frames, then library frames of the traceback, then
defining cells (down to the function itself), then the innermost locals, then the failing cell — and the
text ends with a note saying what was cut. Everything passes through :class:`~._redact.Redactor`.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import linecache
import os
import platform
import site
import sys
import sysconfig
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import FrameType, TracebackType
from typing import Any

from .._base._errors import ConfigError
from .._request._frames import frame_outline, is_frame
from ._redact import Redactor, looks_secret

__all__ = [
    "DEFAULT_BUDGET",
    "ErrorContext",
    "LastError",
    "error_context",
    "last_error",
    "namespace_outline",
    "record_error",
]

#: Default token budget of the error context.
DEFAULT_BUDGET = 4_000
_LOCALS_FRAMES = 3  # innermost user frames whose locals are summarised
_VALUE_CHARS = 120
_SHELL_MODULES = ("IPython", "ipykernel", "claudekit")
_HIDDEN_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


# -- the last error ------------------------------------------------------------------------------------


@dataclass
class LastError:
    """The exception of the last cell that failed, and that cell's source as typed."""

    exc: BaseException
    raw_cell: str | None = None


_last: LastError | None = None


def record_error(result: Any) -> None:
    """IPython ``post_run_cell`` hook: remember the last failing cell (not the magic's own errors)."""
    global _last
    exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
    if exc is None:
        return
    info = getattr(result, "info", None)
    raw = getattr(info, "raw_cell", None)
    if isinstance(raw, str) and raw.lstrip().startswith(("%claude", "%%claude")):
        return
    _last = LastError(exc, raw if isinstance(raw, str) else None)


def last_error() -> LastError:
    """The recorded last error, else ``sys.last_value``; a one-line error when there is none."""
    if _last is not None:
        return _last
    exc = getattr(sys, "last_value", None)
    if isinstance(exc, BaseException):
        return LastError(exc)
    raise ConfigError("no error to explain yet", hint="run the cell that fails, then %claude why")


# -- frames ------------------------------------------------------------------------------------------


@dataclass
class _Frame:
    frame: FrameType
    lineno: int
    kind: str  # "cell", "user" or "library"
    where: str
    name: str

    @property
    def filename(self) -> str:
        return self.frame.f_code.co_filename

    @property
    def line(self) -> str:
        return linecache.getline(self.filename, self.lineno, self.frame.f_globals).strip()

    @property
    def package(self) -> str:
        return str(self.frame.f_globals.get("__name__", "")).split(".")[0]


@cache
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    dirs.add(site.getusersitepackages())
    return tuple(os.path.abspath(d) + os.sep for d in dirs)


@cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _kind(frame: FrameType, cell_files: Mapping[str, int]) -> str:
    filename = frame.f_code.co_filename
    if filename in cell_files or filename.startswith("<ipython-input-"):
        return "cell"
    top = str(frame.f_globals.get("__name__", "")).split(".")[0]
    if top in sys.stdlib_module_names or top in _distributions() or filename.startswith("<"):
        return "library"
    if os.path.abspath(filename).startswith(_library_dirs()):
        return "library"
    return "user"


def _label_cells(frames: list[_Frame], failing_file: str | None) -> None:
    """Name cells by their role, not by execution count: counts differ between a notebook run with
    history (JupyterLab, nbconvert) and without (nbval), and the role is what the reader needs."""
    labels: dict[str, str] = {}
    for f in frames:
        if f.kind != "cell" or f.filename in labels:
            continue
        if f.filename == failing_file:
            labels[f.filename] = "the failing cell"
        elif f.name != "<module>":
            labels[f.filename] = f"the cell defining {f.name}()"
        else:
            labels[f.filename] = "a notebook cell"
    for f in frames:
        if f.kind == "cell":
            f.where = labels[f.filename]


_NESTED = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>")


def _function_name(code: Any) -> str:
    """``DataFrame.__getitem__``; a comprehension or lambda is named by the function it is in."""
    qualname = str(getattr(code, "co_qualname", code.co_name))
    if code.co_name in _NESTED:
        outer = qualname.split(".<locals>.")[0]
        kind = code.co_name.strip("<>")
        return f"{kind} in {outer}" if outer != code.co_name else kind
    return qualname


def _path(filename: str) -> str:
    """A user file relative to the working directory when it is under it, else as it is."""
    if os.path.isabs(filename):
        rel = os.path.relpath(filename)
        return rel if not rel.startswith("..") else filename
    return filename


def _frames(tb: TracebackType | None, cell_files: Mapping[str, int]) -> list[_Frame]:
    out: list[_Frame] = []
    for frame, lineno in traceback.walk_tb(tb):
        kind = _kind(frame, cell_files)
        code = frame.f_code
        name = _function_name(code)
        if kind == "cell":
            where = "a notebook cell"  # named by _label_cells once the failing cell is known
        elif kind == "user":
            where = _path(code.co_filename)
        else:
            where = str(frame.f_globals.get("__name__", code.co_filename))
        out.append(_Frame(frame, lineno, kind, where, name))
    # The shell's own frames (IPython's run_code) come first: they say nothing about the error.
    while out and out[0].kind == "library" and out[0].package in _SHELL_MODULES:
        out.pop(0)
    return out


# -- parts and the budget ----------------------------------------------------------------------------


@dataclass
class _Part:
    """A section of the context: its texts from full to dropped, with what each step cut."""

    priority: float  # lower is cut first
    variants: list[tuple[str, str]]  # (text, note of what this variant cut); the first is the full text
    level: int = 0

    @property
    def text(self) -> str:
        return self.variants[self.level][0]


@dataclass
class ErrorContext:
    """The context text for one error, its size and what was cut or redacted."""

    text: str
    tokens: int
    budget: int
    cut: list[str] = field(default_factory=list)
    redacted: int = 0
    error: str = ""


def _count(text: str) -> int:
    from ..offline import count_text

    return count_text(text)


def _fence(code: str) -> str:
    ticks = "````" if "```" in code else "```"
    return f"{ticks}python\n{code.rstrip()}\n{ticks}"


def _error_part(exc: BaseException, cell_files: Mapping[str, int]) -> _Part:
    text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    filename = getattr(exc, "filename", None)  # a SyntaxError names the cell's temporary file
    if isinstance(filename, str) and filename in cell_files:
        text = text.replace(f'File "{filename}"', "In the failing cell")
    lines = ["## Error", text]
    seen = {id(exc)}
    current: BaseException | None = exc
    while current is not None:
        cause = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if cause is None or id(cause) in seen:
            break
        seen.add(id(cause))
        how = "caused by" if current.__cause__ is cause else "raised while handling"
        only = "".join(traceback.format_exception_only(type(cause), cause)).strip().splitlines()
        message = only[-1] if only else type(cause).__name__
        if message not in lines[1]:  # pandas re-raises KeyError(key) from the same KeyError(key)
            lines.append(f"({how} {message})")
        current = cause
    return _Part(99, [("\n".join(lines), "")])


def _frame_line(f: _Frame) -> str:
    code = f"\n    {f.line}" if f.line else ""
    # Library frames are named by module and function: their line numbers change with every release and
    # say less than the line itself.
    at = "" if f.kind == "library" else f", line {f.lineno}"
    return f"{f.where}{at}, in {f.name}{code}"


def _traceback_part(frames: list[_Frame]) -> _Part | None:
    if not frames:
        return None
    full = "\n".join(["## Traceback (most recent call last)", *(_frame_line(f) for f in frames)])
    collapsed: list[str] = ["## Traceback (most recent call last)"]
    run: list[_Frame] = []

    def flush() -> None:
        if run:
            names = " → ".join(f.name for f in run)
            collapsed.append(f"… {len(run)} frame{'s' if len(run) > 1 else ''} in {run[0].package} ({names})")
            run.clear()

    for i, f in enumerate(frames):
        if f.kind == "library" and i < len(frames) - 1:
            if run and run[0].package != f.package:
                flush()
            run.append(f)
            continue
        flush()
        collapsed.append(_frame_line(f))
    variants = [(full, "")]
    short = "\n".join(collapsed)
    if len(short) < len(full):
        variants.append((short, "library frames of the traceback collapsed"))
    return _Part(3, variants)


def _block(lines: list[str], first: int) -> str:
    """The source of the function starting at line ``first`` (1-based) of ``lines``."""
    try:
        return "".join(inspect.getblock(lines[first - 1 :]))
    except (IndexError, SyntaxError, TypeError):
        return ""


def _defining_parts(frames: list[_Frame], failing_file: str | None) -> list[_Part]:
    """Sources of the cells (and user files) whose functions appear in the traceback, innermost first."""
    parts: list[_Part] = []
    seen: set[str] = set()
    for f in reversed(frames):
        nested = f.frame.f_code.co_name in _NESTED  # its source is that of the function around it
        if f.kind not in ("cell", "user") or f.filename == failing_file or f.name == "<module>" or nested:
            continue
        lines = linecache.getlines(f.filename, f.frame.f_globals)
        function = _block(lines, f.frame.f_code.co_firstlineno)
        if f.kind == "cell" and f.filename not in seen:
            seen.add(f.filename)
            title = f"## {f.where[0].upper()}{f.where[1:]}"
            variants = [(f"{title}\n{_fence(''.join(lines))}", "")]
            if function and function.strip() != "".join(lines).strip():
                variants.append(
                    (f"{title} (only {f.name}())\n{_fence(function)}", f"{f.where} shortened to it")
                )
            variants.append(("", f"source of {f.where} dropped"))
        elif f.kind == "user" and function:
            title = f"## {f.name}() in {f.where}"
            variants = [(f"{title}\n{_fence(function)}", ""), ("", f"source of {f.name}() dropped")]
        else:
            continue
        parts.append(_Part(4 - len(parts) * 0.01, variants))  # outer cells go first
    return parts


def _describe(name: str, value: Any, *, values: bool, columns: int = 30) -> str:
    """One line about a variable: its type and size; its value only when asked (never for secrets)."""
    if looks_secret(name):
        return f"{type(value).__name__} (value withheld: the name looks like a secret)"
    if is_frame(value):
        return frame_outline(value, max_columns=columns)
    if inspect.ismodule(value):
        return f"module {value.__name__}"
    if inspect.isclass(value):
        return f"class {value.__qualname__}"
    if callable(value) and hasattr(value, "__name__"):
        try:
            return f"function {value.__name__}{inspect.signature(value)}"
        except (TypeError, ValueError):
            return f"callable {value.__name__}"
    kind = type(value).__name__
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        summary = f"{kind}, shape {shape}, dtype {dtype}"
    elif isinstance(value, (str, bytes)):
        summary = f"{kind}, {len(value):,} {'characters' if isinstance(value, str) else 'bytes'}"
    elif hasattr(value, "__len__") and not isinstance(value, type):
        try:
            summary = f"{kind}, {len(value):,} items"
        except TypeError:
            summary = kind
    else:
        summary = kind
    if values:
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ must not break the context
            text = f"<repr failed: {type(exc).__name__}>"
        if len(text) > _VALUE_CHARS:
            text = text[: _VALUE_CHARS - 1] + "…"
        summary += f" = {text}"
    return summary


def _cell_names(filename: str) -> tuple[str, ...]:
    """The names a cell's source mentions, in order (IPython runs a cell statement by statement, so the
    failing statement's code object alone would miss the variables the cell set up before it)."""
    try:
        tree = ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return ()
    names = sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: (n.lineno, n.col_offset)
    )
    return tuple(n.id for n in names)


def _frame_names(f: _Frame) -> list[str]:
    """The variables a frame's own code uses, in order (for a cell's module frame: not all globals)."""
    code = f.frame.f_code
    local = f.frame.f_locals
    names = code.co_varnames + code.co_cellvars + code.co_freevars
    if f.name == "<module>":
        names = (_cell_names(f.filename) if f.kind == "cell" else ()) + code.co_names + names
    return [
        n
        for n in dict.fromkeys(names)
        if n in local and n.isidentifier() and not n.startswith("_") and n not in _HIDDEN_NAMES
    ]


def _locals_parts(frames: list[_Frame], values: bool) -> list[_Part]:
    parts: list[_Part] = []
    user = [f for f in reversed(frames) if f.kind in ("cell", "user")][:_LOCALS_FRAMES]
    for depth, f in enumerate(user):
        names = _frame_names(f)
        if not names:
            continue
        where = "the failing cell" if f.name == "<module>" else f"{f.name}()"
        title = f"## Variables in {where}{' with values' if values else ''}"

        def lines(cols: int, with_values: bool, f: _Frame = f, names: list[str] = names) -> str:
            local = f.frame.f_locals
            return "\n".join(
                f"- {n}: {_describe(n, local[n], values=with_values, columns=cols)}" for n in names
            )

        variants = [(f"{title}\n{lines(30, values)}", "")]
        short = f"## Variables in {where}\n{lines(8, False)}"
        variants.append((short, f"variables of {where} shortened"))
        variants.append(("", f"variables of {where} dropped"))
        parts.append(_Part(5 if depth == 0 else 2 - depth * 0.01, variants))
    return parts


def _version(top: str) -> str | None:
    for dist in _distributions().get(top, []):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _packages_part(frames: list[_Frame]) -> _Part:
    tops = dict.fromkeys(f.package for f in frames if f.kind == "library")
    found = [v for v in (_version(t) for t in tops if t not in sys.stdlib_module_names) if v]
    text = "## Versions\n" + " · ".join([f"Python {platform.python_version()}", *dict.fromkeys(found)])
    return _Part(1, [(text, ""), ("", "package versions dropped")])


def _failing_part(source: str | None) -> _Part | None:
    if not source:
        return None
    title = "## The failing cell"
    lines = source.rstrip().splitlines()
    variants = [(f"{title}\n{_fence(source)}", "")]
    for keep in (60, 20):
        if len(lines) > keep:
            head = "\n".join(lines[:keep])
            note = f"failing cell cut to its first {keep} of {len(lines)} lines"
            variants.append((f"{title} (first {keep} of {len(lines)} lines)\n{_fence(head)}", note))
    return _Part(6, variants)


def _render(parts: Iterable[_Part]) -> str:
    return "\n\n".join(p.text for p in parts if p.text)


def _shrink(parts: list[_Part], limit: int) -> bool:
    """Cut the least relevant parts, one step at a time, until they fit ``limit``; False if they cannot."""
    order = {id(p): i for i, p in enumerate(parts)}
    while _count(_render(parts)) > limit:
        shrinkable = [p for p in parts if p.level < len(p.variants) - 1]
        if not shrinkable:
            return False
        min(shrinkable, key=lambda p: (p.priority, order[id(p)])).level += 1
    return True


def _note(parts: list[_Part], budget: int, extra: str = "") -> tuple[str, list[str]]:
    cut = [p.variants[p.level][1] for p in parts if p.level > 0] + ([extra] if extra else [])
    return (f"\n\n[context cut to fit {budget:,} tokens: {'; '.join(cut)}]" if cut else ""), cut


def _fit(parts: list[_Part], budget: int) -> tuple[str, list[str]]:
    """The parts within ``budget`` tokens, closing note included (it says what each cut part lost)."""
    reserve = 0
    while True:
        fits = _shrink(parts, budget - reserve)
        note, cut = _note(parts, budget)
        if _count(_render(parts) + note) <= budget or not fits:
            break
        reserve = _count(note) + 2
    text = _render(parts)
    if _count(text + note) > budget:  # even the most relevant parts are too long: keep their start
        from .._request._frames import _cut

        note, cut = _note(parts, budget, "the rest cut")
        text = _cut(text, budget - _count(note) - 2, say_budget=False)
    return text + note, cut


def error_context(
    shell: Any = None,
    *,
    values: bool = False,
    budget: int = DEFAULT_BUDGET,
    error: LastError | None = None,
    environ: Mapping[str, str] | None = None,
    instruction: str = "",
) -> ErrorContext:
    """The context of the last error (see the module docstring), within ``budget`` tokens.

    ``instruction`` opens the text (what to do with the context) and counts towards the budget.
    """
    last = error or last_error()
    cell_files: Mapping[str, int] = getattr(getattr(shell, "compile", None), "_filename_map", {}) or {}
    frames = _frames(last.exc.__traceback__, cell_files)
    cells = [f for f in frames if f.kind == "cell"]
    failing_file = cells[0].filename if cells else None
    _label_cells(frames, failing_file)
    source = last.raw_cell
    if source is None and failing_file is not None:
        source = "".join(linecache.getlines(failing_file))
    redact = Redactor(environ)
    parts = [
        p
        for p in (
            _Part(100, [(instruction, "")]) if instruction else None,
            _error_part(last.exc, cell_files),
            _failing_part(source),
            _traceback_part(frames),
            *_defining_parts(frames, failing_file),
            *_locals_parts(frames, values),
            _packages_part(frames),
        )
        if p is not None
    ]
    for p in parts:
        p.variants = [(redact(text), note) for text, note in p.variants]
    text, cut = _fit(parts, budget)
    summary = "".join(traceback.format_exception_only(type(last.exc), last.exc)).strip().splitlines()
    return ErrorContext(text, _count(text), budget, cut, redact.count, summary[-1] if summary else "")


# -- the kernel's names, for --code --------------------------------------------------------------------


def namespace_outline(namespace: Mapping[str, Any], *, budget: int = 800) -> str:
    """One line per user variable (type, shape, columns; never values), within ``budget`` tokens."""
    modules: list[str] = []
    lines: list[str] = []
    for name, value in namespace.items():
        if name.startswith("_") or name in _HIDDEN_NAMES:
            continue
        if inspect.ismodule(value):
            modules.append(name if value.__name__ == name else f"{name} = {value.__name__}")
            continue
        lines.append(f"- {name}: {_describe(name, value, values=False, columns=20)}")
    if modules:
        lines.append(f"- modules: {', '.join(modules)}")
    redact = Redactor()
    kept: list[str] = []
    used = 0
    for line in (redact(x) for x in lines):
        cost = _count(line) + 1
        if used + cost > budget:
            kept.append(f"- … {len(lines) - len(kept)} more names not listed")
            break
        kept.append(line)
        used += cost
    return "\n".join(kept) if kept else "(no variables yet)"

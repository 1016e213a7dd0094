"""``%%claude`` and ``%claude``: a thin layer over :class:`claudekit.Chat` for notebooks.

How a cell runs (and why)
-------------------------
A reply is async, and ipykernel runs cells inside an asyncio loop that is already running, so a magic
cannot ``asyncio.run`` it; blocking the main thread on a worker thread would also block the kernel's
loop, and with it widget clicks (tool approval) — a deadlock. So :func:`load_ipython_extension`
registers an input transformer (``shell.input_transformers_cleanup``) that rewrites a cell starting with
``%%claude`` (and a one-line ``%claude …`` cell) into one top-level ``await`` of
:func:`run_cell_async` / :func:`run_line_async`. IPython runs top-level ``await`` as a task on the
kernel's own loop (``autoawait``), so:

- widget events (approval buttons) are handled while the reply streams;
- interrupting the kernel cancels that task (ipykernel turns SIGINT into ``CancelledError`` for async
  cells): the stream stops, its HTTP response is closed, the view shows "interrupted", the partial reply
  is kept in ``_claude`` and the conversation stays valid for the next cell;
- displays happen in the cell's own context, so outputs land in the right cell.

The registered magic function is still the entry point when the transformer does not apply. With no
loop running (terminal IPython, ``%autoawait off``) the reply runs on IPython's own loop. Inside code
that already runs on the kernel's loop (``%claude`` in the middle of a longer cell,
``get_ipython().run_cell_magic(...)`` from code) it cannot be awaited, and a worker thread with a loop
of its own would share the chat's HTTP client across loops and could outlive an interrupted cell: so
sending from there is refused with a one-line ``UsageError`` that says what to do instead.

Errors print one line (what happened, what to do) instead of a traceback; ``%tb`` shows the full one.
"""

from __future__ import annotations

import asyncio
from collections import ChainMap
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _margs
from IPython.core.error import UsageError

from .._base._errors import ClaudekitError
from .._request._template import format_prompt
from .._runner._chat import Chat
from . import _assist, _code, _context, _mcp
from ._config import render_mode

if TYPE_CHECKING:
    from .._base._reply import Reply

__all__ = [
    "ClaudeCellError",
    "ClaudeMagics",
    "chats",
    "get_chat",
    "load_ipython_extension",
    "run_cell_async",
    "run_line_async",
    "unload_ipython_extension",
    "use_chat",
]

#: The magic's chats by name; ``"default"`` is the one ``%%claude`` uses without ``--chat``.
chats: dict[str, Chat] = {}
# IPython's decorators are untyped; go through Any so that mypy --strict accepts them.
_line_cell_magic: Any = _magic.line_cell_magic
_no_var_expand: Any = _magic.no_var_expand
_magics_class: Any = _magic.magics_class
_magic_arguments: Any = _margs.magic_arguments
_argument: Any = _margs.argument
_parse_argstring: Any = _margs.parse_argstring
_F = TypeVar("_F", bound=Callable[..., Any])
_SUBCOMMANDS: tuple[str, ...] = ("usage", "plot", "history", "reset", "model", "config", "help", "why", "fix")
_SUBCOMMANDS += ("context", "mcp")
_RED = "\x1b[0;31m"
_RESET = "\x1b[0m"


class ClaudeCellError(Exception):
    """A ``%%claude`` cell failed: IPython shows one line; ``%tb`` has the full traceback (``__cause__``)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(f"{kind}: {message}")

    def _render_traceback_(self) -> list[str]:
        return [f"{_RED}{self.kind}{_RESET}: {self.message}"]


# -- chats -----------------------------------------------------------------------------------------


def get_chat(name: str = "default", *, namespace: Mapping[str, Any] | None = None, new: bool = False) -> Chat:
    """The chat ``%%claude --chat NAME`` uses: a :class:`Chat` variable of that name in ``namespace``, else
    the magic's own chat of that name (created on first use). ``new=True`` starts its conversation over."""
    if namespace is not None and isinstance(namespace.get(name), Chat):
        chat: Chat = namespace[name]
    else:
        chat = chats.get(name) or chats.setdefault(name, Chat(name=None if name == "default" else name))
    if new:
        chat.reset()
    return chat


def use_chat(chat: Chat, name: str = "default") -> Chat:
    """Make ``chat`` the one ``%%claude`` (or ``--chat NAME``) talks to."""
    if not isinstance(chat, Chat):
        raise TypeError(f"use_chat expects a claudekit.Chat, got {type(chat).__name__}")
    chats[name] = chat
    return chat


# -- option parsing ----------------------------------------------------------------------------------


def _thinking(value: str) -> Any:
    v = value.strip().lower()
    if v in ("adaptive", "on", "auto"):
        return "adaptive"
    if v in ("off", "none", "0", "no"):
        return None
    try:
        return int(v.replace("_", "").replace(",", ""))
    except ValueError:
        raise UsageError(f"--thinking takes a token budget, 'adaptive' or 'off', not {value!r}") from None


def _cache(value: str) -> Any:
    v = value.strip().lower()
    mapping: dict[str, Any] = {"on": True, "off": False, "true": True, "false": False, "5m": "5m", "1h": "1h"}
    if v not in mapping:
        raise UsageError(f"--cache takes on, off, 5m or 1h, not {value!r}")
    return mapping[v]


def _overrides(args: Any, namespace: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.model:
        out["model"] = args.model
    if args.system is not None:
        out["system"] = format_prompt(args.system, namespace)
    if args.thinking is not None:
        out["thinking"] = _thinking(args.thinking)
    if args.effort:
        out["effort"] = args.effort
    if args.max_tokens is not None:
        out["max_tokens"] = args.max_tokens
    if args.cache is not None:
        out["cache"] = _cache(args.cache)
    return out


def _set_tools(chat: Chat, names: list[str], namespace: Mapping[str, Any]) -> None:
    names = [p for n in names for p in n.split(",") if p]
    missing = [n for n in names if n not in namespace and not _mcp.is_ref(n)]
    if missing:
        raise UsageError(f"--tools: {', '.join(repr(n) for n in missing)} not defined in the notebook")
    # NAME.* / NAME.tool: an MCP server's tools (%claude mcp add); the server starts here
    chat.tools = [t for n in names for t in (_mcp.resolve(n) if _mcp.is_ref(n) else [namespace[n]])]


def _parse(line: str) -> Any:
    return _parse_argstring(ClaudeMagics.claude, line)


# -- running -----------------------------------------------------------------------------------------


def _shell(shell: Any = None) -> Any:
    if shell is not None:
        return shell
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None:
        raise RuntimeError("the %%claude magic needs IPython")
    return ip


def _display_static(reply: Reply, error: BaseException | None) -> None:
    from IPython import display as ipd

    from ._config import _settings
    from ._errors import hook_active
    from ._static import static_bundle

    show: Any = ipd.display
    # The cell's one-line error says what went wrong: the saved copy does not say it again.
    show(static_bundle(reply, error, show_error=not hook_active(), math=_settings["math"]), raw=True)


async def run_cell_async(line: str, cell: str, shell: Any = None) -> None:
    """Run a ``%%claude`` cell: ``line`` holds the options, ``cell`` the prompt template.

    The reply is stored in ``_claude`` (and in ``-o VAR``), rendered live (widget view + static output),
    and nothing is returned, so the cell does not also print the Reply's repr.
    """
    ip = _shell(shell)
    args = _parse(line)
    if args.words == ["context"]:  # %%claude context: show what the cell would send, send nothing
        chat = get_chat(args.chat or "default", namespace=ip.user_ns)
        _assist.show_context(ip, chat, "", body=cell, code=args.code is not None)
        return
    if args.words:
        raise UsageError(
            "%%claude takes options on its first line and the prompt in the cell body "
            f"(got {' '.join(args.words)!r})"
        )
    await _ask(ip, args, cell)


def _fields(ip: Any) -> Mapping[str, Any]:
    """The namespace ``{fields}`` are filled from, where ``In`` holds the cells as typed: IPython's own
    ``In`` holds them as run, so a magic cell would be claudekit's rewritten ``await …`` line."""
    ns: dict[str, Any] = ip.user_ns
    history = getattr(ip, "history_manager", None)
    raw = getattr(history, "input_hist_raw", None)
    if raw is None or ns.get("In") is not getattr(history, "input_hist_parsed", None):
        return ns  # no IPython history, or the user's own variable named In
    return ChainMap({"In": raw, "_ih": raw}, ns)


async def _ask(ip: Any, args: Any, template: str) -> None:
    ns = ip.user_ns
    try:
        chat = get_chat(args.chat or "default", namespace=ns, new=args.new)
        if args.tools is not None:
            _set_tools(chat, args.tools, ns)
        attached: list[Any] = []
        text = template if args.raw else format_prompt(template, _fields(ip), attachments=attached)
        # A {field} holding a Document (or Image, File, SearchResult) goes as its own block, before the text.
        prompt: Any = [*attached, text] if attached else text
        if not text.strip():
            raise UsageError("the prompt is empty: write it in the cell body (or after %claude)")
        overrides = _overrides(args, _fields(ip))
        if getattr(args, "code", None) is not None:
            overrides["system"] = _assist.code_system(overrides.get("system", chat.system), ns)
        render: bool | None = False if args.no_render else None
        # No renderer will show this reply (rendering off, or a Chat(render=False)): show it statically.
        show_static = not args.no_render and (render_mode() == "off" or chat.render is False)
        if args.dry_run:
            await _dry_run(chat, prompt, overrides, ns, args)
            return
        stream = chat.stream(prompt, render=render, **overrides)
    except ClaudekitError as err:
        raise ClaudeCellError(type(err).__name__, str(err)) from err
    try:
        await stream
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        _store(ns, args, stream.reply)
        if show_static:
            _display_static(stream.reply, exc)
        raise ClaudeCellError(
            "KeyboardInterrupt",
            "reply interrupted; the partial answer is in _claude "
            "and the next %%claude continues the conversation",
        ) from exc
    except ClaudekitError as err:
        _store(ns, args, err.reply or stream.reply)
        if show_static:
            _display_static(stream.reply, err)
        raise ClaudeCellError(type(err).__name__, str(err)) from err
    except BaseException:
        _store(ns, args, stream.reply)
        raise
    _store(ns, args, stream.reply)
    if show_static:
        _display_static(stream.reply, None)
    if getattr(args, "code", None) is not None:
        print(_code.insert_code(ip, stream.reply.text, args.code or None))


async def _dry_run(chat: Chat, prompt: Any, overrides: dict[str, Any], ns: dict[str, Any], args: Any) -> None:
    """``--dry-run``: the estimate of what the cell would send (tokens counted by the API), nothing sent."""
    estimate = await chat.estimate(prompt, **overrides)
    print(f"claudekit: dry run, nothing sent: {estimate}")
    if args.output:
        ns[args.output] = estimate


def _store(ns: dict[str, Any], args: Any, reply: Reply | None) -> None:
    if reply is None:
        return
    ns["_claude"] = reply
    if args.output:
        ns[args.output] = reply


async def run_line_async(line: str, shell: Any = None) -> Any:
    """Run a ``%claude`` line: a subcommand (see ``%claude help``) or a one-line prompt."""
    ip = _shell(shell)
    result = _line_command(ip, line)
    if result is _EXPLAIN:
        await _explain(ip, line)
        return None
    if result is not _PROMPT:
        return result
    args, text = _line_prompt(line, ip.user_ns)
    await _ask(ip, args, text)
    return None


_PROMPT = object()
_EXPLAIN = object()  # %claude why / fix: an async request built from the kernel's last error


def _split_chat(line: str) -> tuple[str, str]:
    """``--chat NAME rest`` → ``(NAME, rest)``; otherwise ``("default", line)``."""
    stripped = line.strip()
    if stripped.startswith("--chat "):
        _, name, *tail = stripped.split(None, 2)
        return name, tail[0] if tail else ""
    return "default", stripped


async def _explain(ip: Any, line: str) -> None:
    """``%claude why`` / ``%claude fix``: explain the last error (fix: and put corrected code in a cell)."""
    chat_name, rest = _split_chat(line)
    word, _, options = rest.partition(" ")
    try:
        message = _assist.explain(ip, word, options).text
    except ClaudekitError as err:
        raise ClaudeCellError(type(err).__name__, str(err)) from err
    args = _parse(f"--raw --chat {chat_name}")
    if word == "fix":
        args.code = 0
    await _ask(ip, args, message)


def _line_prompt(line: str, namespace: Mapping[str, Any]) -> tuple[Any, str]:
    stripped = line.strip()
    if stripped.startswith("-"):
        args = _parse(stripped)
        words = list(args.words)
        if args.tools:
            args.tools, prompt = _split_tools(args.tools, namespace)
            words = prompt + words
        return args, " ".join(words)
    return _parse(""), stripped


def _split_tools(words: list[str], namespace: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``--tools get_weather What's the weather?`` on one line: the names defined in the notebook are the
    tools (``a,b`` works too); the first word that is not one starts the prompt."""
    names: list[str] = []
    for i, word in enumerate(words):
        parts = [p for p in word.split(",") if p]
        if not parts or not all(_is_tool(namespace, p) for p in parts):
            if not names:  # not even one tool: a misspelt name, not the prompt
                _no_such_tools(parts or [word])
            return names, words[i:]
        names.extend(parts)
    return names, []


def _is_tool(namespace: Mapping[str, Any], name: str) -> bool:
    """A function, a Tool, a tool definition (dict) or an MCP server object of that name, or an MCP
    server's ``NAME.*`` / ``NAME.tool``: a word of the prompt is none."""
    if _mcp.is_ref(name):
        return True
    value = namespace.get(name) if name.isidentifier() else None
    return callable(value) or isinstance(value, dict) or hasattr(value, "__claudekit_tools__")


def _no_such_tools(names: list[str]) -> None:
    raise UsageError(
        f"--tools: {', '.join(repr(n) for n in names)} not defined in the notebook "
        "(write the tool names first, then the prompt: %claude --tools get_weather What's the weather?)"
    )


def _line_command(ip: Any, line: str) -> Any:
    """Run a synchronous subcommand and return its result, or ``_PROMPT`` when the line is a prompt."""
    stripped = line.strip()
    chat_name = "default"
    if stripped.startswith("--chat "):
        _, chat_name, *tail = stripped.split(None, 2)
        stripped = tail[0] if tail else ""
    word, _, rest = stripped.partition(" ")
    rest = rest.strip()
    if not stripped or word == "help":
        print(_HELP)
        return None
    if _is_prompt_line(word, rest):
        return _typo_or_prompt(word, rest)
    if word in ("why", "fix"):
        return _PROMPT if _assist.is_prompt(rest) else _EXPLAIN
    if word == "mcp" and (not rest or rest.split()[0] in ("add", "list", "remove")):
        _mcp.command(rest)
        return None
    ns = ip.user_ns
    if word in ("usage", "plot", "history") and _existing_chat(chat_name, ns) is None:
        return _no_chat_yet(word, rest.split(), chat_name)
    chat = get_chat(chat_name, namespace=ns)
    if word == "context":
        try:
            _assist.show_context(ip, chat, rest)
        except ClaudekitError as err:
            raise ClaudeCellError(type(err).__name__, str(err)) from err
        return None
    if word == "usage":
        return _usage(chat, rest.split())
    if word == "plot":
        if chat.usage is None:
            raise UsageError("no usage log (the claudekit.usage package is unavailable)")
        if not len(chat.usage):
            print(f"claudekit: {chat.name}: no calls yet")
            return None
        return chat.usage.plot()
    if word == "history":
        return _Conversation(chat)
    if word == "reset":
        chat.reset()
        print(f"claudekit: {chat.name}: conversation reset (settings and usage log kept)")
        return None
    if word == "model":
        if rest:
            chat.model = rest
        print(f"claudekit: {chat.name}: model {chat.model}")
        return None
    if word == "config":
        print(_config_text(chat))
        return None
    return _PROMPT


def _is_prompt_line(word: str, rest: str) -> bool:
    """Whether a line that starts with ``word`` is a prompt rather than a subcommand."""
    usage_words = ("--all", "session", "all", "history")
    return (
        word not in _SUBCOMMANDS
        or (word == "model" and len(rest.split()) > 1)
        or (word == "usage" and any(w not in usage_words for w in rest.split()))
    )


def _typo_or_prompt(word: str, rest: str) -> Any:
    """A lone near-miss of a subcommand is said, not raised (a suggestion must not stop Run All)."""
    typo = _typo_of(word) if not rest and word not in _SUBCOMMANDS else None
    if typo is not None:
        print(f"claudekit: did you mean `%claude {typo}`? (nothing sent; ask Claude in a sentence)")
        return None
    return _PROMPT


def _typo_of(word: str) -> str | None:
    """The subcommand a one-word line most likely misspells (``usgae`` -> ``usage``), if any."""
    import difflib

    if not word.isalpha() or len(word) < 3:
        return None
    close = difflib.get_close_matches(word.lower(), _SUBCOMMANDS, n=1, cutoff=0.75)
    return close[0] if close else None


def _usage(chat: Chat | None, words: list[str]) -> Any:
    """``%claude usage [session] [--all]``: the chat's calls (or the session's) as a compact table."""
    if "history" in words:
        return _stored_usage(words)
    log = chat.usage if chat is not None else None
    if "session" in words or "all" in words:
        from ..usage import session_log

        log = session_log()
    if log is None:
        raise UsageError("no usage log (the claudekit.usage package is unavailable)")
    if not len(log):
        who = chat.name if chat is not None and log is chat.usage else "this session"
        print(f"claudekit: {who}: no calls yet")
        return None
    if "--all" in words:
        return log.df
    from ..usage._display import compact_frame

    return compact_frame(log.df)


def _stored_usage(words: list[str]) -> Any:
    """``%claude usage history [--all]``: every kernel's calls, from the store (claudekit.usage.history)."""
    from ..usage import history

    frame = history()
    if frame.empty:
        print("claudekit: no calls in the store yet (or CLAUDEKIT_STORE=off)")
        return None
    if "--all" in words:
        return frame
    from ..usage._display import compact_frame

    return compact_frame(frame)


def _no_chat_yet(word: str, words: list[str], name: str) -> Any:
    """``usage``/``plot``/``history`` before the chat exists: answered without making one (a new chat
    would first announce its backend, only to say there is nothing yet)."""
    if word == "usage" and {"session", "all", "history"} & set(words):
        return _usage(None, words)
    print(f"claudekit: no calls yet ({'no chat' if name == 'default' else name} so far)")
    return None


def _existing_chat(name: str, namespace: Mapping[str, Any]) -> Chat | None:
    found = namespace.get(name)
    return found if isinstance(found, Chat) else chats.get(name)


class _Conversation:
    """``%claude history``: safe HTML in a notebook, the same lines as plain text anywhere else."""

    def __init__(self, chat: Chat) -> None:
        self._chat = chat

    def _repr_html_(self) -> str:
        return _history_html(self._chat)

    def __repr__(self) -> str:
        head, rows = _history_rows(self._chat)
        return "\n".join([head, *(f"{role}: {text}" for role, text in rows)])


def _history_rows(chat: Chat) -> tuple[str, list[tuple[str, str]]]:
    """The heading and one (role, text) row per message, as plain text (untrusted: escape to show)."""
    head = f"{chat.name} · {len(chat.history)} messages · model {chat.model}"
    rows = []
    for msg in chat.history.messages:
        parts = []
        for b in msg["content"]:
            t = b.get("type")
            if t == "text":
                parts.append(str(b.get("text", "")))
            elif t == "tool_use":
                parts.append(f"`🔧 {str(b.get('name')).replace('`', '')}`")
            elif t == "tool_result":
                parts.append("`tool result`")
            elif t in ("thinking", "redacted_thinking"):
                parts.append("*(thinking)*")
            else:
                parts.append(f"`[{str(t).replace('`', '')}]`")
        text = " ".join(p for p in parts if p)
        if len(text) > 500:
            text = text[:499] + "…"
        rows.append((str(msg["role"]), text))
    return head, rows


def _history_html(chat: Chat) -> str:
    """The conversation as safe HTML: prompts and answers alike may carry an injected payload."""
    from html import escape

    from .._base._markup import NO_MATH, clean, markdown_html

    head, rows = _history_rows(chat)
    lines = [f"<p><b>{escape(head)}</b></p>"]
    lines += [f"<div><b>{escape(role)}</b>:\n{markdown_html(text)}</div>" for role, text in rows]
    return clean(f'<div class="{NO_MATH}">' + "\n".join(lines) + "</div>")


_HIDDEN_SETTINGS = ("extra_body", "metadata")
_SHOWN_WHEN_SET = ("mcp_servers",)  # rarely used: a line only for the chats that use it


def _config_text(chat: Chat) -> str:
    s = chat.settings
    rows = [
        f"chat: {chat.name} (backend {chat.backend}, {len(chat.history)} messages)",
        f"render: {render_mode()}",
    ]
    for f in fields(s):
        if f.name in _HIDDEN_SETTINGS:
            continue
        value = getattr(s, f.name)
        if value is None and f.name in _SHOWN_WHEN_SET:
            continue
        if f.name == "system" and isinstance(value, str) and len(value) > 80:
            value = value[:79] + "…"
        rows.append(f"{f.name}: {value!r}")
    rows.append(f"tools: {', '.join(chat.toolset.names) or 'none'}")
    return "\n".join(rows)


def _run_sync(coro: Coroutine[Any, Any, Any], shell: Any = None) -> Any:
    """Run a coroutine from synchronous code (the magic function's fallback path, see the module docs)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # No loop in this thread (terminal IPython, %autoawait off): IPython's own loop, the same one
        # every time, so that a chat's HTTP client is never used across event loops.
        from IPython.core.async_helpers import get_asyncio_loop

        return get_asyncio_loop().run_until_complete(coro)  # type: ignore[no-untyped-call]
    coro.close()
    raise UsageError(
        "%claude cannot send from here: this line runs inside code that is already running (a %claude "
        "line in the middle of a cell, or run_cell_magic called from code) — put %%claude or "
        '%claude PROMPT at the top of its own cell, or use `await claudekit.notebook.get_chat()("...")`'
    )


# -- the magic ---------------------------------------------------------------------------------------

_HELP = """\
%%claude [options]      the cell body is the prompt; {name}, {obj.attr}, {d[key]} are filled from the
                        notebook ({{ }} for literal braces; DataFrames are inserted as text)
%claude PROMPT          a one-line prompt
%claude usage [session|history] [--all]
                        the chat's calls (or every chat's; history: every kernel's, from the store) as
                        a table; --all: every column
%claude plot            cache hit-rate / cost plot
%claude history         the conversation so far
%claude reset           start the conversation over
%claude model [NAME]    show or set the chat's model
%claude config          the chat's settings
%claude why [--values] [--budget N]
                        explain the last error from the kernel's context: traceback, failing cell, the
                        cells defining the functions in it, local variables (values only with --values),
                        package versions; secrets redacted
%claude fix [--values] [--budget N]
                        the same, and the corrected code goes into a new cell below
%claude context [why|fix|PROMPT]
                        what the next request would send, with token counts (nothing is sent);
                        %%claude context shows a cell's prompt
%claude mcp add NAME -- COMMAND ARGS… | %claude mcp add NAME https://…
                        an MCP server by name (started on first use); --tools NAME.* gives a chat all
                        its tools, --tools NAME.tool one of them
%claude mcp list        the servers, their status, their tools (read-only, or asks first)
%claude mcp remove NAME stop the server and forget it
%claude help            this text

Options: -m/--model M, -s/--system TEXT, -t/--thinking BUDGET|adaptive|off, -e/--effort LEVEL,
--max-tokens N, --cache on|off|5m|1h, --tools NAME..., --chat NAME, --new, --raw, --no-render, -o VAR,
--dry-run (the tokens and cost range of what the cell would send; nothing is sent).
--code [N] (answer with code; block N, or the first Python one, goes into a new cell below, not run).
Fields: {df} (shape, dtypes, nulls, first rows), {df:schema}, {df:head=N}, {df:sample=N}, {df:describe},
{In[3]} / {Out[3]} (a cell's input / output), {_} (the last output).
The conversation continues across cells (one default chat; --chat NAME for others, or the name of a Chat
variable); the last reply is in _claude. Everything the magic does is plain Python:
claudekit.notebook.get_chat(), use_chat(chat), format_prompt(text, namespace), await chat("...").
"""


def _block_number(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        import argparse

        raise argparse.ArgumentTypeError(
            f"--code takes a code block number (1, 2, …), not {value!r}; put the prompt after it "
            "(%claude --code 1 plot the sales) or in the cell body"
        )
    return n


def _arg(*names: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return names, kw


_ARGUMENTS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    _arg("-m", "--model", help="model for this cell"),
    _arg("-s", "--system", help="system prompt for this cell ({name} fields are filled)"),
    _arg("-t", "--thinking", metavar="BUDGET", help="thinking budget in tokens, 'adaptive' or 'off'"),
    _arg("-e", "--effort", choices=["low", "medium", "high", "xhigh", "max"], help="effort level"),
    _arg("--max-tokens", type=int, metavar="N", help="max output tokens"),
    _arg("--cache", metavar="on|off|5m|1h", help="prompt caching"),
    _arg("--tools", nargs="*", metavar="NAME", help="tools (functions / Tool objects) for this chat"),
    _arg("--chat", metavar="NAME", help="talk to another chat (or to a Chat variable of that name)"),
    _arg("--new", action="store_true", help="start the conversation over"),
    _arg("--raw", action="store_true", help="send the cell as is (no {field} filling)"),
    _arg("--no-render", action="store_true", help="no live view and no output (use -o)"),
    _arg("-o", "--output", metavar="VAR", help="store the Reply in this variable"),
    _arg("--dry-run", action="store_true", help="estimate tokens and cost; send nothing"),
    _arg(
        "--code",
        nargs="?",
        const=0,
        type=_block_number,
        metavar="N",
        help="answer with code: block N (default: the first Python one) goes into a new cell below",
    ),
    _arg("words", nargs="*", help="line magic: a subcommand or a one-line prompt"),
]


def _claude_magic(fn: _F) -> _F:
    """IPython's untyped decorators, as ``@no_var_expand @magic_arguments() @argument(...) @line_cell_magic``.

    ``no_var_expand``: IPython would otherwise evaluate ``{expr}`` and ``$name`` in the line itself
    (``run_line_magic`` from code, a ``%claude`` line mid-cell, ``%autoawait off``) before claudekit
    sees it, running calls and filling values that the template rules refuse.
    """
    out: Any = _line_cell_magic(fn)
    for names, kw in reversed(_ARGUMENTS):
        out = _argument(*names, **kw)(out)
    return cast("_F", _no_var_expand(_magic_arguments()(out)))


@_magics_class
class ClaudeMagics(_magic.Magics):
    """The ``%claude`` / ``%%claude`` magics."""

    @_claude_magic
    def claude(self, line: str, cell: str | None = None) -> Any:
        """Talk to Claude from a notebook cell.

        %%claude [options]      the cell body is the prompt ({name} fields filled from the notebook)
        %claude PROMPT          a one-line prompt
        %claude usage | plot | history | reset | model [NAME] | config | help

        The conversation continues across cells; the last Reply is in ``_claude``. Errors print one
        line; ``%tb`` shows the full traceback. See ``%claude help`` and ``claudekit.notebook``.
        """
        if cell is None:
            result = _line_command(self.shell, line)
            if result is not _PROMPT and result is not _EXPLAIN:
                return result
            return _run_sync(run_line_async(line, self.shell), self.shell)
        _run_sync(run_cell_async(line, cell, self.shell), self.shell)
        return None


# -- the input transformer ---------------------------------------------------------------------------

_MODULE = "claudekit.notebook._magic"


def _magic_prefix(line: str, name: str) -> str | None:
    if not line.startswith(name):
        return None
    rest = line[len(name) :]
    if rest and not rest[0].isspace():
        return None  # e.g. %%claude? (help) or %claudex
    # A trailing "?" is the question's, not IPython's help: ``%claude?`` / ``%%claude?`` (no space) are
    # still help requests, excluded above.
    return rest.strip()


def make_transformer(shell: Any) -> Any:
    """The cleanup transformer that turns ``%%claude`` cells into one top-level ``await``."""

    def _can_await() -> bool:
        if not getattr(shell, "autoawait", False):
            return False
        from IPython.core import async_helpers

        return getattr(shell, "loop_runner", None) is getattr(async_helpers, "_asyncio_runner", object())

    def claude_transformer(lines: list[str]) -> list[str]:
        if not lines:
            return lines
        first = lines[0].rstrip("\r\n")
        code: str | None = None
        rest = _magic_prefix(first, "%%claude")
        if rest is not None:
            code = f"run_cell_async({rest!r}, {''.join(lines[1:])!r})"
        elif not any(x.strip() for x in lines[1:]):
            rest = _magic_prefix(first, "%claude")
            if rest is not None:
                code = f"run_line_async({rest!r})"
        if code is None or not _can_await():
            return lines
        return [f"await __import__({_MODULE!r}, fromlist=['_']).{code}\n"]

    claude_transformer.claudekit = True  # type: ignore[attr-defined]
    return claude_transformer


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext claudekit``: register the magics and the ``%%claude`` input transformer."""
    from ._errors import install

    ip.register_magics(ClaudeMagics)
    install(ip)
    if _context.record_error not in ip.events.callbacks["post_run_cell"]:
        ip.events.register("post_run_cell", _context.record_error)  # what %claude why explains
    cleanup = ip.input_transformers_cleanup
    if not any(getattr(t, "claudekit", False) for t in cleanup):
        cleanup.append(make_transformer(ip))


def unload_ipython_extension(ip: Any) -> None:
    if _context.record_error in ip.events.callbacks["post_run_cell"]:
        ip.events.unregister("post_run_cell", _context.record_error)
    cleanup = ip.input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not getattr(t, "claudekit", False)]

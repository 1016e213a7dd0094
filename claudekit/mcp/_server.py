"""MCP servers as claudekit tools: ``stdio(...)`` and ``http(...)`` give a :class:`MCPServer`.

The official ``mcp`` SDK speaks the protocol (imported only when a server starts). A server starts on
first use, is shared by every chat of the process (the same parameters give the same object), restarts
once if it died, and is closed at interpreter exit. A server that dies is one line, and the call that
was running gets that line as an error result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from .._base._errors import INTERRUPTS, ClaudekitError
from .._base._notes import say_once
from .._tooling._tools import Tool, ToolError
from . import _loop
from ._results import to_blocks

__all__ = ["MCPServer", "MCPServerError", "http", "stdio"]

log = logging.getLogger("claudekit.mcp")

ApproveLike = bool | Mapping[str, bool] | None
_EXIT_MARK = "__claudekit_mcp_exit__"
# POSIX sh runs the server and then reports its exit code on stderr (the SDK does not expose it).
_WRAPPER = f'"$0" "$@"; c=$?; echo "{_EXIT_MARK} $c" >&2; exit $c'
_BAD_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_servers: dict[tuple[Any, ...], MCPServer] = {}


class MCPServerError(ClaudekitError):
    """An MCP server could not start or stopped; the message is one line saying which and why."""


class MCPServer:
    """An MCP server whose tools a chat may call: pass it in ``Chat(tools=[...])``.

    ``approve`` — None: tools marked read-only by the server run at once, all others ask; True/False:
    every tool of this server asks / runs at once; a dict ``{tool: bool}`` decides per tool (others as None).
    """

    def __init__(self, name: str, approve: ApproveLike = None, start_timeout: float = 30.0) -> None:
        self.name = name
        self.approve = approve
        self.start_timeout = start_timeout
        self._session: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._dead: str | None = None
        self._restarts = 0
        self.closed = False

    # -- what subclasses provide -------------------------------------------------------------------

    async def _transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        raise NotImplementedError

    async def _exit_line(self, exc: BaseException | None, starting: bool = False) -> str | None:
        """One line when the server is known to have stopped (after ``exc``), else None."""
        return None

    # -- the tools ---------------------------------------------------------------------------------

    def __claudekit_tools__(self) -> list[Tool]:
        """The server's tools as claudekit tools (starts the server; blocks until it has listed them)."""
        try:
            specs = _loop.submit(self._list_tools()).result(self.start_timeout + 10)
        except MCPServerError as exc:
            failure = str(exc)
        except Exception as exc:
            failure = f"MCP server {self.name!r} did not list its tools ({_one_line(exc)})"
        else:
            return [self._tool(spec) for spec in specs]
        # Raised outside the except blocks: an SDK exception group left as __context__ makes IPython
        # print the whole chain as a traceback instead of the magic's one line.
        raise MCPServerError(failure)

    def tools(self) -> list[Tool]:
        """The server's tools as a chat would get them (``.approve``: whether a call asks first)."""
        return self.__claudekit_tools__()

    def _tool(self, spec: Any) -> Tool:
        annotations = getattr(spec, "annotations", None)
        read_only = bool(annotations is not None and annotations.read_only_hint)
        original = spec.name

        async def call(**arguments: Any) -> Any:
            return await self.call(original, arguments)

        desc = spec.description or spec.title or ""
        return Tool(
            name=_BAD_NAME.sub("_", original)[:64],
            description=f"[MCP server {self.name!r}] {desc}".strip(),
            input_schema=dict(spec.input_schema or {"type": "object"}),
            fn=call,
            approve=self._asks(original, read_only),
            mcp_server=self.name,
        )

    def _asks(self, tool: str, read_only: bool) -> bool:
        if isinstance(self.approve, Mapping) and tool in self.approve:
            return bool(self.approve[tool])
        if isinstance(self.approve, bool):
            return self.approve
        return not read_only

    async def call(self, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        """Call ``tool`` through the session (on the MCP loop); an error result raises ToolError."""
        try:
            result = await _loop.run(self._call(tool, arguments))
        except MCPServerError as exc:
            raise ToolError(str(exc)) from None
        blocks = to_blocks(result)
        if result.is_error:
            raise ToolError(blocks)  # type: ignore[arg-type]
        return blocks

    # -- on the MCP loop ---------------------------------------------------------------------------

    async def _list_tools(self) -> list[Any]:
        session = await self._ensure()
        tools: list[Any] = []
        cursor: str | None = None
        while True:
            from mcp import types

            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def _call(self, tool: str, arguments: dict[str, Any]) -> Any:
        session = await self._ensure()
        try:
            return await session.call_tool(tool, arguments)
        except INTERRUPTS:
            raise
        except Exception as exc:
            line = await self._exit_line(exc)
            if line is None:
                raise MCPServerError(f"MCP server {self.name!r}: {_one_line(exc)}") from None
            await self._died(line)
            raise MCPServerError(line) from None

    async def _died(self, line: str, say: bool = True) -> None:
        self._dead = line
        if say:  # a crash mid-call: the result goes to the model, this line to the person
            say_once(line, key=f"mcp-died-{id(self)}-{self._restarts}")
        await self._stop_owner()

    async def _ensure(self) -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.closed:
                raise MCPServerError(f"MCP server {self.name!r} was closed")
            if self._session is not None and self._dead is None:
                return self._session
            if self._dead is not None:
                if self._restarts >= 1:
                    raise MCPServerError(f"{self._dead} (restarted once already; not again)")
                self._restarts += 1
            await self._start()
            return self._session

    async def _start(self) -> None:
        _loop.track(self)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._own(ready, self._stop))
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.start_timeout)
        except Exception as exc:
            line = await self._exit_line(exc, starting=True)
            line = line or f"MCP server {self.name!r} did not start: {_one_line(exc)}"
        else:
            self._dead = None
            return
        await self._died(line, say=False)  # the caller raises it or returns it as the call's result
        raise MCPServerError(line)  # outside the except block: no exception group as its context

    async def _own(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        """Hold the transport and session open (entered and left in this one task) until ``stop``."""
        try:
            from mcp import ClientSession

            async with AsyncExitStack() as stack:
                read, write = await self._transport(stack)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self._session = session
                ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._session = None

    async def _stop_owner(self) -> None:
        owner, self._owner = self._owner, None
        if self._stop is not None:
            self._stop.set()
        if owner is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(owner, 15)

    async def _aclose(self) -> None:
        self.closed = True
        await self._stop_owner()
        _loop.untrack(self)

    # -- for people ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the server (its process ends). A closed server cannot be used again."""
        if not self.closed:
            _loop.submit(self._aclose()).result(30)
        _servers.pop(self._key(), None)

    def _key(self) -> tuple[Any, ...]:
        return (id(self),)

    @property
    def running(self) -> bool:
        return self._session is not None and self._dead is None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running" if self.running else "down" if self._dead else "idle"
        return f"<MCP server {self.name!r} ({state})>"


class _Stdio(MCPServer):
    def __init__(
        self,
        command: str,
        args: list[str],
        env: dict[str, str] | None,
        cwd: str | None,
        name: str,
        approve: ApproveLike,
    ) -> None:
        super().__init__(name, approve)
        self.command, self.args, self.env, self.cwd = command, args, env, cwd
        # The server's stderr: kept out of the notebook, its last line names a crash.
        self._errlog = tempfile.TemporaryFile("w+", prefix="claudekit-mcp-")  # noqa: SIM115

    def _key(self) -> tuple[Any, ...]:
        return _stdio_key(self.command, self.args, self.env, self.cwd, self.name)

    async def _aclose(self) -> None:
        await super()._aclose()
        self._errlog.close()

    async def _transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        self._errlog.seek(0)
        self._errlog.truncate()
        command, args = self.command, self.args
        if os.name == "posix":  # sh reports the exit code; elsewhere the message goes without it
            command, args = "/bin/sh", ["-c", _WRAPPER, self.command, *self.args]
        params = StdioServerParameters(command=command, args=args, env=self.env, cwd=self.cwd)
        read, write = await stack.enter_async_context(stdio_client(params, errlog=self._errlog))
        return read, write

    async def _exit_line(self, exc: BaseException | None, starting: bool = False) -> str | None:
        """The server's exit code and last stderr line, once its wrapper has reported them (≤ 1 s)."""
        if _answered(exc):
            return None
        for _ in range(20):
            lines = _tail(self._errlog.fileno())
            codes = [i for i, line in enumerate(lines) if line.startswith(_EXIT_MARK)]
            if codes:
                code = lines[codes[-1]].split()[-1]
                last = next((x for x in reversed(lines[: codes[-1]]) if x.strip()), "(no error output)")
                return f"MCP server {self.name!r} exited (code {code}): {last.strip()[:300]}"
            if os.name != "posix":
                last = next((x for x in reversed(lines) if x.strip()), "(no error output)")
                return f"MCP server {self.name!r} stopped: {last.strip()[:300]}"
            await asyncio.sleep(0.05)
        return None


class _Http(MCPServer):
    def __init__(self, url: str, headers: dict[str, str] | None, name: str, approve: ApproveLike) -> None:
        super().__init__(name, approve)
        self.url, self.headers = url, dict(headers or {})

    def _key(self) -> tuple[Any, ...]:
        return ("http", self.url, tuple(sorted(self.headers.items())), self.name)

    async def _transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        client = await stack.enter_async_context(create_mcp_http_client(headers=self.headers))
        streams = await stack.enter_async_context(streamable_http_client(self.url, http_client=client))
        return streams[0], streams[1]

    async def _exit_line(self, exc: BaseException | None, starting: bool = False) -> str | None:
        if _answered(exc):
            return None
        what = "cannot be reached" if starting else "stopped answering"
        return f"MCP server {self.name!r} at {self.url} {what}: {_one_line(exc)}"


def _answered(exc: BaseException | None) -> bool:
    """The server answered with an error (unknown tool, bad arguments…): it is alive."""
    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.error.code != CONNECTION_CLOSED


def _tail(fd: int, size: int = 4096) -> list[str]:
    end = os.fstat(fd).st_size
    data = os.pread(fd, size, max(0, end - size))
    return data.decode("utf-8", "replace").splitlines()


def _one_line(exc: BaseException | None) -> str:
    while getattr(exc, "exceptions", None):  # an exception group: its first member says what happened
        exc = exc.exceptions[0]  # type: ignore[union-attr]
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    return text or type(exc).__name__


def _stdio_key(
    command: str, args: list[str], env: dict[str, str] | None, cwd: str | None, name: str
) -> tuple[Any, ...]:
    return ("stdio", command, tuple(args), tuple(sorted((env or {}).items())), cwd, name)


_RUNNERS = re.compile(r"^(python[0-9.]*|node|npx|uvx|uv|deno|bun|pipx)$")


def _default_name(command: str, args: list[str]) -> str:
    """``python notes_server.py`` is 'notes_server'; ``mcp-files`` is 'mcp-files'."""
    base = os.path.basename(command)
    if _RUNNERS.match(base):
        named = [a for a in args if not a.startswith("-") and a not in ("run", "-m")]
        if named:
            base = os.path.splitext(os.path.basename(named[0].rstrip("/")))[0]
    return _BAD_NAME.sub("_", base)[:40] or "mcp"


def stdio(
    command: str,
    args: list[str] | tuple[str, ...] = (),
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    name: str | None = None,
    approve: ApproveLike = None,
) -> MCPServer:
    """An MCP server run as a local process speaking over stdin/stdout (started on first use)."""
    label = name or _default_name(command, list(args))
    key = _stdio_key(command, list(args), env, None if cwd is None else os.fspath(cwd), label)
    found = _servers.get(key)
    if found is not None and not found.closed:
        found.approve = approve
        return found
    server = _Stdio(command, list(args), env, None if cwd is None else os.fspath(cwd), label, approve)
    _servers[key] = server
    return server


def http(
    url: str, *, headers: dict[str, str] | None = None, name: str | None = None, approve: ApproveLike = None
) -> MCPServer:
    """An MCP server reached over streamable HTTP at ``url`` (connected on first use)."""
    from urllib.parse import urlsplit

    label = name or urlsplit(url).hostname or "mcp"
    key = ("http", url, tuple(sorted((headers or {}).items())), label)
    found = _servers.get(key)
    if found is not None and not found.closed:
        found.approve = approve
        return found
    server = _Http(url, headers, label, approve)
    _servers[key] = server
    return server

"""``%claude mcp add|list|remove``: the notebook's MCP servers by name; ``--tools NAME.*`` / ``NAME.tool``.

The servers themselves are :mod:`claudekit.mcp` objects (started on first use, closed at exit); this
module only keeps the names the notebook gave them.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError

from .._base._errors import ClaudekitError
from .._tooling._tools import Tool
from ..mcp import MCPServer, MCPServerError, http, stdio

__all__ = ["command", "is_ref", "resolve", "servers"]

#: The servers added with ``%claude mcp add``, by name.
servers: dict[str, MCPServer] = {}
_USAGE = "%claude mcp add NAME -- command args… | %claude mcp add NAME https://… | mcp list | mcp remove NAME"


def command(rest: str) -> None:
    """Run ``%claude mcp …`` (``rest`` is what follows ``mcp``)."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"%claude mcp: {exc} (usage: {_USAGE})") from None
    verb, args = (words[0], words[1:]) if words else ("list", [])
    if verb == "add":
        _add(args)
    elif verb == "list" and not args:
        print(_listing())
    elif verb == "remove" and len(args) == 1:
        _remove(args[0])
    else:
        raise UsageError(f"%claude mcp: unknown or incomplete command {rest.strip()!r} (usage: {_USAGE})")


def _add(args: list[str]) -> None:
    if not args or "." in args[0] or args[0].startswith("-"):
        raise UsageError(f"%claude mcp add: give the server a name without dots first (usage: {_USAGE})")
    name, target = args[0], args[1:]
    if name in servers:
        raise UsageError(f"%claude mcp add: {name!r} is already added; `%claude mcp remove {name}` first")
    if len(target) == 1 and target[0].startswith(("http://", "https://")):
        servers[name] = http(target[0], name=name)
        where = target[0]
    elif len(target) >= 2 and target[0] == "--":
        servers[name] = stdio(target[1], target[2:], name=name)
        where = shlex.join(target[1:])
    else:
        raise UsageError(f"%claude mcp add: after the name, `-- command args…` or a URL (usage: {_USAGE})")
    print(f"claudekit: MCP server {name!r} added ({where}); it starts on first use. Use it: --tools {name}.*")


def _remove(name: str) -> None:
    server = servers.pop(name, None)
    if server is None:
        raise UsageError(f"%claude mcp remove: no server named {name!r} ({_known()})")
    server.close()
    print(f"claudekit: MCP server {name!r} removed (stopped)")


def _known() -> str:
    return "added: " + ", ".join(servers) if servers else "none added yet"


def _listing() -> str:
    if not servers:
        return "claudekit: no MCP servers (add one: %claude mcp add NAME -- command args…)"
    lines = []
    for name, server in servers.items():
        try:
            tools = server.tools()
        except ClaudekitError as err:  # a server that cannot start is listed with its one line
            lines.append(f"{name}: down — {err}")
            continue
        lines.append(f"{name}: running, {len(tools)} tools")
        lines += [f"  {name}.{t.name}  {'asks first' if t.approve else 'read-only'}" for t in tools]
    return "\n".join(lines)


def is_ref(word: str) -> bool:
    """``NAME.*`` or ``NAME.tool`` for a server added with ``%claude mcp add``."""
    name, dot, tool = word.partition(".")
    return bool(dot and tool) and name in servers


def resolve(word: str) -> list[Any]:
    """The tools ``NAME.*`` (all of that server's) or ``NAME.tool`` (one) stands for."""
    name, _, wanted = word.partition(".")
    try:
        tools: list[Tool] = servers[name].tools()
    except MCPServerError as err:  # the server could not start: its one line, as a usage error
        raise UsageError(f"--tools {word}: {err}") from None
    if wanted == "*":
        return list(tools)
    found = [t for t in tools if t.name == wanted]
    if not found:
        have = ", ".join(t.name for t in tools)
        raise UsageError(f"--tools: MCP server {name!r} has no tool {wanted!r} (it has: {have})")
    return found

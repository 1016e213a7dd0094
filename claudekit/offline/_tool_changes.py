"""Mid-conversation tool changes: the tools a request offers the model at its end.

As the installed SDK's types describe them (``BetaRequestToolAdditionBlockParam``,
``BetaRequestToolRemovalBlockParam``, ``BetaToolChangeToolReferenceParam``,
``BetaToolChangeToolDefinitionParam``), a ``{"role": "system"}`` message may carry

- ``tool_addition``: ``tool`` is a ``tool_reference`` (by the name the model calls it) to a tool declared
  in ``tools`` or defined earlier in ``messages``, or a ``tool_definition`` carrying a ``tools`` entry
  inline (beta ``inline-tools-2026-09-15``); the tool "is offered to the model from this point in the
  conversation onward";
- ``tool_removal``: a ``tool_reference`` to such a tool; it "is no longer offered to the model from this
  point in the conversation onward".

In a message thread a continue may not send ``tools`` (the thread keeps those it was created with), so
these blocks are how a threaded conversation changes its tools: the stored conversation carries every
earlier change, and the offered set is worked out over the whole of it. MCP references are left as they
are (offline runs no MCP servers). Validation of the blocks' shapes stays with ``_validation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["offered_tools"]

_CHANGES = ("tool_addition", "tool_removal")


def _key(tool: Mapping[str, Any]) -> str:
    return str(tool.get("name") or tool.get("mcp_server_name") or id(tool))


def _changes(body: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(``tool_addition`` | ``tool_removal``, its ``tool``) for every change, in conversation order."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, Mapping) and msg.get("role") == "system" else None
        for block in content if isinstance(content, list) else []:
            tool = block.get("tool") if isinstance(block, Mapping) else None
            if block.get("type") in _CHANGES and isinstance(tool, Mapping):
                out.append((str(block["type"]), tool))
    return out


def offered_tools(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``tools``, then each system message's tool changes applied in order: what the model may call now."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, Mapping)]
    changes = _changes(body)
    if not changes:
        return tools
    offered = {_key(t): t for t in tools}
    known = dict(offered)  # every definition seen so far: a removed tool can be added back by name
    for kind, ref in changes:
        if ref.get("type") == "tool_definition" and kind == "tool_addition":
            definition = ref.get("definition")
            if isinstance(definition, Mapping):
                known[_key(definition)] = offered[_key(definition)] = definition
        elif ref.get("type") == "tool_reference":
            name = str(ref.get("name"))
            if kind == "tool_removal":
                offered.pop(name, None)
            elif name in known:
                offered[name] = known[name]
    return list(offered.values())

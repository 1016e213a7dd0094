"""The MCP connector: the service calls remote MCP servers itself (``Chat(mcp_servers=[…])``).

A beta (``anthropic-beta: mcp-client-2025-11-20``, the version with ``mcp_toolset`` tools, SDK type
``BetaMCPToolsetParam``). Chats call the non-beta ``messages.create``, which has no ``mcp_servers``
argument: the servers travel in ``extra_body`` and the beta in ``extra_headers``, as message threads do.
The response's ``mcp_tool_use`` / ``mcp_tool_result`` blocks stay in the history and go back as they came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._base._errors import ConfigError
from .._base._secrets import add_secret

__all__ = ["MCP_CONNECTOR_BETA", "check_mcp_servers", "connector_request"]

#: The connector's beta with ``mcp_toolset`` tools; the 2025-04-04 one predates them.
MCP_CONNECTOR_BETA = "mcp-client-2025-11-20"


def check_mcp_servers(servers: Any) -> list[dict[str, Any]]:
    """``Chat(mcp_servers=…)``: a list of ``{"url": "https://…", "name": …}`` (``type`` defaults to
    ``"url"``; ``authorization_token`` and ``tool_configuration`` pass through)."""
    if servers is None:
        return []
    if isinstance(servers, Mapping) or not isinstance(servers, Sequence) or isinstance(servers, str):
        raise ConfigError("mcp_servers must be a list of dicts such as {'url': 'https://…', 'name': 'docs'}")
    out: list[dict[str, Any]] = []
    for s in servers:
        if (
            not isinstance(s, Mapping)
            or not isinstance(s.get("url"), str)
            or not isinstance(s.get("name"), str)
        ):
            got = sorted(s) if isinstance(s, Mapping) else type(s).__name__  # never its values: a token
            raise ConfigError(
                f"each MCP connector server needs a 'url' and a 'name', got {got}",
                hint="e.g. {'url': 'https://mcp.example.com/mcp', 'name': 'docs'}",
            )
        if not s["url"].startswith("https://"):
            raise ConfigError(f"MCP connector server {s['name']!r}: the service only reaches https:// URLs")
        token = s.get("authorization_token")
        if isinstance(token, str):
            add_secret(token)  # scrubbed from everything claudekit writes (store, cassettes, logs)
        out.append({"type": "url", **dict(s)})
    names = [s["name"] for s in out]
    if len(set(names)) != len(names):
        raise ConfigError("two MCP connector servers share a name", hint="give each server its own name")
    return out


def connector_request(req: dict[str, Any], servers: Sequence[Mapping[str, Any]]) -> None:
    """Add the MCP connector to a request: the servers (in ``extra_body``: the non-beta ``create`` has no
    such argument), a toolset per server the tools do not already configure, and the beta header."""
    if not servers:
        return
    req["extra_body"] = {**(req.get("extra_body") or {}), "mcp_servers": [dict(s) for s in servers]}
    tools = req.setdefault("tools", [])
    configured = {t.get("mcp_server_name") for t in tools if t.get("type") == "mcp_toolset"}
    for s in servers:
        if s["name"] not in configured:
            tools.append({"type": "mcp_toolset", "mcp_server_name": s["name"]})
    headers = dict(req.get("extra_headers") or {})
    betas = [b for b in (headers.get("anthropic-beta") or "").split(",") if b.strip()]
    if MCP_CONNECTOR_BETA not in betas:
        betas.append(MCP_CONNECTOR_BETA)
    headers["anthropic-beta"] = ",".join(betas)
    req["extra_headers"] = headers

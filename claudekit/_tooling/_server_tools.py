"""The service's own tools (web search, web fetch, code execution) as tool specs, and the MCP connector.

The service runs these tools itself: claudekit only declares them (``Chat(tools=[ck.web_search()])``) and
shows what came back. The type versions are the newest the installed ``anthropic`` SDK's ``ToolUnionParam``
lists (anthropic 2.17: ``web_search_20260318``, ``web_fetch_20260318``, ``code_execution_20260521``); all
three are generally available, so they need no beta. ``version=`` picks an older one (e.g. ``"20250305"``
for basic web search on a model without dynamic filtering).

The MCP connector (``Chat(mcp_servers=[…])``) is in :mod:`claudekit._request._connector`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._base._errors import ConfigError
from ._tools import Tool

__all__ = [
    "SERVER_TOOL_VERSIONS",
    "code_execution",
    "web_fetch",
    "web_search",
]

#: The newest version of each tool in anthropic 2.17's non-beta ``ToolUnionParam`` (oldest first).
SERVER_TOOL_VERSIONS: dict[str, tuple[str, ...]] = {
    "web_search": ("20250305", "20260209", "20260318"),
    "web_fetch": ("20250910", "20260209", "20260309", "20260318"),
    "code_execution": ("20250522", "20250825", "20260120", "20260521"),
}


def _spec(name: str, version: str | None, options: Mapping[str, Any]) -> Tool:
    versions = SERVER_TOOL_VERSIONS[name]
    chosen = versions[-1] if version is None else str(version).removeprefix(f"{name}_")
    if chosen not in versions:
        raise ConfigError(
            f"unknown {name} version {version!r}", hint=f"versions: {', '.join(versions)} (newest last)"
        )
    param: dict[str, Any] = {"type": f"{name}_{chosen}", "name": name}
    param.update({k: v for k, v in options.items() if v is not None})
    description = f"the service's {name.replace('_', ' ')} tool ({param['type']}; it runs on the service)"
    return Tool(name, description, {"type": "object"}, param=param, approve=False)


def _domains(allowed: Sequence[str] | None, blocked: Sequence[str] | None) -> dict[str, Any]:
    if allowed is not None and blocked is not None:
        raise ConfigError("pass allowed_domains or blocked_domains, not both (the service refuses both)")
    for label, value in (("allowed_domains", allowed), ("blocked_domains", blocked)):
        if value is not None and (isinstance(value, str) or not all(isinstance(d, str) for d in value)):
            raise ConfigError(f"{label} must be a list of domain names, e.g. ['example.com']")
    return {
        "allowed_domains": list(allowed) if allowed is not None else None,
        "blocked_domains": list(blocked) if blocked is not None else None,
    }


def _max_uses(max_uses: int | None) -> int | None:
    if max_uses is not None and (isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1):
        raise ConfigError(f"max_uses must be a positive integer, got {max_uses!r}")
    return max_uses


def web_search(
    *,
    max_uses: int | None = None,
    allowed_domains: Sequence[str] | None = None,
    blocked_domains: Sequence[str] | None = None,
    user_location: Mapping[str, Any] | None = None,
    version: str | None = None,
    **options: Any,
) -> Tool:
    """The service's web search tool. ``user_location``: ``{"city": …, "region": …, "country": …,
    "timezone": …}`` (``"type": "approximate"`` is added). Priced per search (``claudekit.usage``)."""
    location: dict[str, Any] | None = None
    if user_location is not None:
        if not isinstance(user_location, Mapping):
            raise ConfigError("user_location must be a dict such as {'city': 'Paris', 'country': 'FR'}")
        location = {"type": "approximate", **dict(user_location)}
    opts = {"max_uses": _max_uses(max_uses), **_domains(allowed_domains, blocked_domains)}
    return _spec("web_search", version, {**opts, "user_location": location, **options})


def web_fetch(
    *,
    max_uses: int | None = None,
    allowed_domains: Sequence[str] | None = None,
    blocked_domains: Sequence[str] | None = None,
    citations: bool | None = None,
    max_content_tokens: int | None = None,
    version: str | None = None,
    **options: Any,
) -> Tool:
    """The service's web fetch tool: Claude reads a page whose address is in the conversation."""
    opts: dict[str, Any] = {"max_uses": _max_uses(max_uses), **_domains(allowed_domains, blocked_domains)}
    if citations is not None:
        opts["citations"] = {"enabled": bool(citations)}
    opts["max_content_tokens"] = max_content_tokens
    return _spec("web_fetch", version, {**opts, **options})


def code_execution(*, version: str | None = None, **options: Any) -> Tool:
    """The service's code execution tool (a sandbox on the service; claudekit never runs the code)."""
    return _spec("code_execution", version, options)

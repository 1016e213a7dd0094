"""Chat settings and the request they produce.

Everything here is checked before a request leaves: an invalid combination fails with the reason,
instead of a 400 from the service half a minute into a notebook run.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

import anthropic
import pydantic

from .._base import _models
from .._base._errors import ConfigError, OutputFormatError
from ._connector import check_mcp_servers, connector_request
from ._content import check_unicode
from ._markers import place_markers

__all__ = ["DEFAULT_MODEL", "Settings", "build_request", "output_schema", "parse_output"]

DEFAULT_MODEL = "claude-sonnet-4-6"
_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_TTLS = ("5m", "1h")
# Sampling knobs anthropic 2.x removed from messages.create(); we forward them in extra_body.
_SAMPLING = ("temperature", "top_p", "top_k")

ThinkingSetting = int | Literal["adaptive"] | bool | None


@dataclass
class Settings:
    """How a chat talks to Claude. ``Chat(**kwargs)`` and ``%%claude`` options map onto these fields."""

    model: str = DEFAULT_MODEL
    max_tokens: int = 8192
    system: str | list[dict[str, Any]] | None = None
    thinking: ThinkingSetting = None
    thinking_display: Literal["summarized", "omitted"] | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    tool_choice: str | None = None
    parallel_tool_calls: bool = True
    cache: bool | Literal["5m", "1h"] = True
    output_format: dict[str, Any] | type | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_retries: int = 2
    timeout: float | None = 600.0
    connect_timeout: float = 10.0
    metadata: dict[str, Any] | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    #: Remote MCP servers the service calls itself (the MCP connector, a beta): ``[{"url", "name"}, …]``.
    mcp_servers: list[dict[str, Any]] | None = None

    def replace(self, **changes: Any) -> Settings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(
                f"unknown setting(s): {', '.join(sorted(unknown))}",
                hint=f"valid settings are: {', '.join(f.name for f in fields(self))}",
            )
        new = copy.copy(self)
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    @property
    def cache_ttl(self) -> str | None:
        if self.cache is False or self.cache is None:
            return None
        return self.cache if self.cache in _TTLS else "5m"

    def validate(self, tool_names: list[str] | None = None) -> None:
        tool_names = tool_names or []
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("model must be a model name such as 'claude-sonnet-4-6'")
        _models.check_name(self.model, ConfigError)  # near misses only: newer ids go to the service
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        t = self._thinking_checked()
        if self.thinking_display not in (None, "summarized", "omitted"):
            raise ConfigError(
                f"thinking_display must be 'summarized' or 'omitted', got {self.thinking_display!r}"
            )
        if self.effort is not None and self.effort not in _EFFORTS:
            raise ConfigError(f"effort must be one of {', '.join(_EFFORTS)}; got {self.effort!r}")
        if self.cache not in (True, False, None, *_TTLS):
            raise ConfigError(f"cache must be True, False, '5m' or '1h'; got {self.cache!r}")
        self._check_tool_choice(t, tool_names)
        check_mcp_servers(self.mcp_servers)
        self._check_sampling(t)
        if self.max_retries < 0:
            raise ConfigError("max_retries cannot be negative")
        self._check_texts()

    def _thinking_checked(self) -> Any:
        """The thinking setting, checked (True means 'adaptive')."""
        t = self.thinking
        if isinstance(t, bool) and t is True:
            t = "adaptive"
        if t not in (None, False, "adaptive") and not isinstance(t, int):
            raise ConfigError(
                f"thinking must be a token budget (int), 'adaptive', or None; got {t!r}",
                hint="e.g. Chat(thinking=2048) or Chat(thinking='adaptive')",
            )
        if isinstance(t, int) and not isinstance(t, bool):
            if t < 1024:
                raise ConfigError(
                    f"thinking budget {t} is below the minimum of 1024 tokens",
                    hint="use thinking=1024 or more",
                )
            if t >= self.max_tokens:
                raise ConfigError(
                    f"thinking budget {t} must be less than max_tokens ({self.max_tokens})",
                    hint=f"raise max_tokens above {t} or lower the budget",
                )
        return t

    def _check_tool_choice(self, t: Any, tool_names: list[str]) -> None:
        tc = self.tool_choice
        if tc not in (None, "auto", "any", "none"):
            if not isinstance(tc, str):
                raise ConfigError(f"tool_choice must be 'auto', 'any', 'none' or a tool name; got {tc!r}")
            if tc not in tool_names:
                known = ", ".join(tool_names) or "none"
                raise ConfigError(
                    f"tool_choice names {tc!r}, which is not one of this chat's tools ({known})",
                    hint="pass the tool in tools=[...] or choose 'auto'",
                )
        if tc not in (None, "auto", "none") and t not in (None, False) and not _forced_tool_ok(self.model, t):
            raise ConfigError(
                f"tool_choice={tc!r} cannot be combined with "
                + ("adaptive thinking on this model" if t == "adaptive" else "budgeted thinking"),
                hint="with thinking on, use tool_choice 'auto' or 'none'",
            )
        if tc in ("any",) and not tool_names:
            raise ConfigError("tool_choice='any' needs at least one tool", hint="pass tools=[...]")

    def _check_sampling(self, t: Any) -> None:
        if self.temperature is not None and not 0.0 <= self.temperature <= 1.0:
            raise ConfigError(f"temperature must be between 0 and 1, got {self.temperature}")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise ConfigError(f"top_p must be between 0 and 1, got {self.top_p}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ConfigError(f"top_k must be a positive integer, got {self.top_k}")
        if t not in (None, False):
            # The service refuses these with thinking on (extended-thinking docs, feature compatibility).
            hint = "leave sampling at its defaults with thinking on, or turn thinking off"
            bad = None
            if self.temperature is not None and self.temperature != 1:
                bad = f"temperature={self.temperature} cannot be combined with thinking"
            elif self.top_k is not None:
                bad = f"top_k={self.top_k} cannot be combined with thinking"
            elif self.top_p is not None and self.top_p < 0.95:
                bad = f"top_p={self.top_p} is below 0.95, the least allowed with thinking"
            if bad:
                raise ConfigError(bad, hint=hint)

    def _check_texts(self) -> None:
        sys_ = self.system
        if (
            sys_ is not None
            and not isinstance(sys_, str)
            and not (isinstance(sys_, list) and all(isinstance(b, dict) for b in sys_))
        ):
            raise ConfigError(
                f"system must be text or a list of content-block dicts, got {type(sys_).__name__}",
                hint="e.g. Chat(system='Be brief.')",
            )
        check_unicode(sys_, "the system prompt")
        check_unicode(self.metadata, "metadata")
        check_unicode(self.stop_sequences, "stop_sequences")
        check_unicode(self.extra_body, "extra_body")


def _forced_tool_ok(model: str, thinking: Any) -> bool:
    """Forced tool use with thinking: never with a budget; with adaptive thinking where the model
    allows it (the catalog), and left to the service where the catalog does not know."""
    if thinking != "adaptive":
        return False
    spec = _models.lookup(model)
    return spec is None or spec.forced_tool_choice_with_adaptive is not False


def output_schema(fmt: dict[str, Any] | type) -> dict[str, Any]:
    """A JSON schema from a dict or a pydantic model class."""
    if isinstance(fmt, dict):
        return fmt
    schema_fn = getattr(fmt, "model_json_schema", None)
    if schema_fn is None:
        raise ConfigError(
            f"output_format must be a JSON schema dict or a pydantic model, got {fmt!r}",
            hint="e.g. output_format={'type': 'object', 'properties': {...}}",
        )
    # The SDK's own transform (what messages.parse sends): every object closed, and keywords the
    # service does not accept (minimum, maxLength…) moved into the description.
    transform = getattr(anthropic, "transform_schema", None)
    if transform is not None:
        return cast("dict[str, Any]", transform(fmt))
    schema: dict[str, Any] = schema_fn()
    schema.setdefault("additionalProperties", False)
    return schema


def parse_output(fmt: Any, text: str) -> Any:
    """The answer as ``output_format`` asks: JSON, validated into the pydantic model when one was given."""
    what = getattr(fmt, "__name__", "the output_format schema")
    if isinstance(fmt, dict) or not hasattr(fmt, "model_json_schema"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputFormatError(f"the answer is not JSON for {what}: {exc}") from exc
    try:
        return pydantic.TypeAdapter(fmt).validate_json(text)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first.get("type") == "json_invalid":
            raise OutputFormatError(f"the answer is not JSON for {what}: {first.get('msg')}") from exc
        detail = "; ".join(
            f"{'.'.join(map(str, e.get('loc', ()))) or '(answer)'}: {e.get('msg')}" for e in exc.errors()[:2]
        )
        raise OutputFormatError(f"the answer does not match {what}: {detail}") from exc


def build_request(
    settings: Settings,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    previous_message_id: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``client.messages.create``: exactly what goes on the wire.

    Caching (claudekit's default): a breakpoint on the last tool and the last system block, which
    change rarely, plus the top-level automatic ``cache_control`` that marks the last block of the
    conversation, so each turn reads everything the previous turn sent. The markers are placed within
    the service's limits beside any of the user's own (see :mod:`claudekit._request._markers`).
    """
    tools = [dict(t) for t in (tools or [])]
    settings.validate([t["name"] for t in tools if "name" in t])
    req: dict[str, Any] = {"model": settings.model, "max_tokens": settings.max_tokens, "messages": messages}
    ttl = settings.cache_ttl

    system = settings.system
    if system:
        if isinstance(system, str):
            req["system"] = [{"type": "text", "text": system}] if ttl else system
        else:
            req["system"] = [dict(b) for b in system]
    if tools:
        req["tools"] = tools
    place_markers(req, ttl)
    if ttl and previous_message_id is not None:
        req["diagnostics"] = {"previous_message_id": previous_message_id}

    thinking = _thinking_param(settings)
    if thinking is not None:
        req["thinking"] = thinking
    choice = _tool_choice_param(settings, tools)
    if choice is not None:
        req["tool_choice"] = choice

    output_config: dict[str, Any] = {}
    if settings.effort:
        output_config["effort"] = settings.effort
    if settings.output_format is not None:
        output_config["format"] = {"type": "json_schema", "schema": output_schema(settings.output_format)}
    if output_config:
        req["output_config"] = output_config
    if settings.stop_sequences:
        req["stop_sequences"] = list(settings.stop_sequences)
    if settings.metadata:
        req["metadata"] = dict(settings.metadata)

    extra = dict(settings.extra_body)
    for name in _SAMPLING:
        value = getattr(settings, name)
        if value is not None:
            extra[name] = value
    if extra:
        req["extra_body"] = extra
    connector_request(req, check_mcp_servers(settings.mcp_servers))
    return req


def _thinking_param(settings: Settings) -> dict[str, Any] | None:
    thinking = settings.thinking
    if thinking is True:
        thinking = "adaptive"
    out: dict[str, Any]
    if thinking == "adaptive":
        out = {"type": "adaptive"}
    elif isinstance(thinking, int) and thinking is not False:
        out = {"type": "enabled", "budget_tokens": thinking}
    else:
        return None
    if settings.thinking_display:
        out["display"] = settings.thinking_display
    return out


def _tool_choice_param(settings: Settings, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    tc = settings.tool_choice
    if not tools or (tc is None and settings.parallel_tool_calls):
        return None
    choice: dict[str, Any]
    if tc in (None, "auto"):
        choice = {"type": "auto"}
    elif tc == "any":
        choice = {"type": "any"}
    elif tc == "none":
        choice = {"type": "none"}
    else:
        choice = {"type": "tool", "name": tc}
    if not settings.parallel_tool_calls and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return choice

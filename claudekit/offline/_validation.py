"""Request validation in the service's order: merge turns, check the shape, then the semantic rules.

1. Consecutive ``user`` or ``assistant`` messages are combined into one turn (the SDK's ``messages``
   docstring: "Consecutive user or assistant turns in your request will be combined into a single
   turn"), so every later error path counts merged turns, as the service's do.
2. The shape: the top-level fields the service takes come from data (``service_rules.json``, with sources),
   each field's nested shape from the installed SDK's own request types (:mod:`._shapes`): plain, or beta
   when the ``anthropic-beta`` header names betas.
3. The rules below (and :mod:`._turns` for the conversation's turns and blocks) need more than a type:
   pairing, thinking, caching, limits and the model catalog. Each raises :class:`ApiError` with the
   service's wording where it is known (see ``RULES`` and ``docs/offline.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._base import _models
from ._context import Context
from ._documents import check_documents
from ._errors import ApiError
from ._rules_data import betas_for, known_betas
from ._shapes import check_shape
from ._turns import blocks_of, check_messages, merge_turns

__all__ = [
    "KNOWN_MODELS",
    "RULES",
    "Context",
    "Rule",
    "merge_turns",
    "parse_betas",
    "thinking_on",
    "validate_request",
]

MESSAGES_API = "https://platform.claude.com/docs/en/api/messages"
ERRORS = "https://platform.claude.com/docs/en/api/errors"
BETA_HEADERS = "https://platform.claude.com/docs/en/api/beta-headers"
THINKING = "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
ADAPTIVE = "https://platform.claude.com/docs/en/build-with-claude/adaptive-thinking"
EFFORT = "https://platform.claude.com/docs/en/build-with-claude/effort"
PRESERVED_THINKING = "https://platform.claude.com/docs/build-with-claude/preserved-thinking"
TOOLS = "https://platform.claude.com/docs/en/agents-and-tools/tool-use/handle-tool-calls"
CACHING = "https://platform.claude.com/docs/en/build-with-claude/prompt-caching"
VISION = "https://platform.claude.com/docs/en/build-with-claude/vision"
STRUCTURED = "https://platform.claude.com/docs/en/build-with-claude/structured-outputs"
DEPRECATIONS = "https://platform.claude.com/docs/en/about-claude/model-deprecations"


@dataclass(frozen=True)
class Rule:
    id: str
    doc: str
    summary: str


RULES: tuple[Rule, ...] = (
    Rule(
        "shape",
        MESSAGES_API,
        "top-level fields from service_rules.json; each fits the installed SDK's type (unknown keys refused)",
    ),
    Rule("beta_header", BETA_HEADERS, "every anthropic-beta value is a beta name (known or well-formed)"),
    Rule("model_unknown", ERRORS, "a model the catalog does not list is 404 not_found_error"),
    Rule("model_retired", DEPRECATIONS, "a model past its retirement date (backend clock) is 404"),
    Rule("max_tokens_range", MESSAGES_API, "max_tokens ≥ 0 and at most the model's max output"),
    Rule("messages_required", MESSAGES_API, "`messages` must not be empty"),
    Rule(
        "content_non_empty",
        MESSAGES_API,
        "messages and text blocks are non-empty and not only whitespace (except a final assistant)",
    ),
    Rule("tool_result_has_tool_use", TOOLS, "each tool_result answers a tool_use of the previous turn"),
    Rule("tool_use_has_result", TOOLS, "each tool_use gets a tool_result in the next turn"),
    Rule("tool_use_ends_turn", TOOLS, "no text after an assistant turn's last tool_use"),
    Rule("tool_ids_unique", TOOLS, "tool_use ids are unique; one tool_result per tool_use"),
    Rule("thinking_budget", THINKING, "budget_tokens ≥ 1024 and < max_tokens (interleaved beta: any)"),
    Rule("thinking_supported", ADAPTIVE, "the model accepts this thinking type (enabled / adaptive)"),
    Rule(
        "thinking_forced_tool",
        THINKING,
        "budgeted thinking cannot force tool use; adaptive only where the model refuses it",
    ),
    Rule("thinking_sampling", THINKING, "with thinking on: temperature 1, no top_k, top_p in [0.95, 1]"),
    Rule(
        "thinking_signature",
        PRESERVED_THINKING,
        "thinking blocks carry a signature; this backend's own ones must verify",
    ),
    Rule("thinking_first_in_tool_turn", THINKING, "budgeted thinking: a tool-using turn starts thinking"),
    Rule("effort_supported", EFFORT, "the model accepts output_config.effort, at that level"),
    Rule("cache_control_max", CACHING, "at most 4 cache_control breakpoints (automatic caching uses one)"),
    Rule("cache_ttl_order", CACHING, "1h cache_control entries before 5m ones"),
    Rule("tool_schema", MESSAGES_API, "custom tools: unique names, object input_schema, valid JSON Schema"),
    Rule("tool_choice", MESSAGES_API, "tool_choice tool names an existing tool; any needs tools"),
    Rule(
        "tool_result_file_source",
        MESSAGES_API,
        "no Files API `file` source in a tool_result's image or document (a real 400, issue 24)",
    ),
    Rule("image_data", VISION, "base64 images decode and match their media_type (tool results too)"),
    Rule("sampling_ranges", MESSAGES_API, "temperature and top_p in [0, 1], top_k ≥ 0"),
    Rule("stop_sequences", MESSAGES_API, "stop sequences contain non-whitespace"),
    Rule("output_format", STRUCTURED, "output_config.format.schema is structurally valid JSON Schema"),
    Rule("container_type", MESSAGES_API, "container is a string (an object only with the skills beta)"),
)

KNOWN_MODELS: frozenset[str] = frozenset(n for spec in _models.all_models() for n in spec.names)

_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_FORCED = ("any", "tool")
# Betas that lift the documented output limit or the budget < max_tokens rule, or allow an object container
# (service_rules.json, with sources).
_LONG_OUTPUT_BETAS = betas_for("long_output")
_INTERLEAVED_BETAS = betas_for("interleaved_thinking")
_SKILLS_BETAS = betas_for("skills_container")


def _bad(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def thinking_on(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


# A beta name as the service spells them: lower-case words and a release date (``effort-2025-11-24``,
# ``claude-code-20250219``). The service takes a well-formed name it does not know (Claude Code and litellm
# send betas no SDK lists, and get 200s); only a value that is not a beta name at all is refused.
_BETA_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


def beta_accepted(name: str) -> bool:
    """Whether the service takes ``name`` in ``anthropic-beta``: a known beta, or any well-formed name."""
    return name in known_betas() or bool(_BETA_NAME.match(name))


def parse_betas(header: str | None) -> frozenset[str]:
    """The ``anthropic-beta`` header's values; one that is no beta name is a 400 worded like the service's."""
    values = [v.strip() for v in (header or "").split(",") if v.strip()]
    unknown = [v for v in values if not beta_accepted(v)]
    if unknown:
        listed = ", ".join(f"`{v}`" for v in unknown)
        raise _bad(
            f"Unexpected value(s) {listed} for the `anthropic-beta` header. Please consult our "
            "documentation at platform.claude.com/docs or try again without the header."
        )
    return frozenset(values)


def validate_request(body: Any, ctx: Context) -> dict[str, Any]:
    """Raise :class:`ApiError` for the first rule ``body`` breaks; return the body with merged turns."""
    if not isinstance(body, Mapping):
        raise _bad("Request body must be a JSON object")
    view: dict[str, Any] = dict(body)
    if "messages" in view:
        view["messages"] = merge_turns(view["messages"])
    check_shape(view, surface="count_tokens" if ctx.count_tokens else "messages", beta=bool(ctx.betas))
    model = str(view["model"])
    spec = _models.lookup(model)
    messages: list[dict[str, Any]] = view["messages"]
    if not messages:
        raise _bad("messages: at least one message is required")
    _check_limits(view, spec, ctx)
    _check_sampling(view)
    _check_system(view)
    _check_output_config(view, spec)
    tool_names = _check_tools(view)
    _check_thinking(view, spec, tool_names, ctx)
    _check_container(view, ctx)
    check_messages(view, messages, ctx)
    if ctx.files is not None:
        messages = view["messages"] = ctx.files(messages)
    check_documents(messages)
    _check_cache_breakpoints(view, messages)
    if spec is None:
        raise ApiError(404, f"model: {model}", "not_found_error")
    if spec.retired(ctx.today):
        raise ApiError(404, f"model: {model}", "not_found_error")
    return view


def _check_limits(body: Mapping[str, Any], spec: _models.ModelSpec | None, ctx: Context) -> None:
    if ctx.count_tokens or "max_tokens" not in body:
        return
    mt = int(body["max_tokens"])
    # 0 is allowed: the SDK's docstring says it "populates the prompt cache without generating a response".
    if mt < 0:
        raise _bad("max_tokens: Input should be greater than or equal to 0")
    if spec is None or spec.max_output_tokens is None or ctx.betas & _LONG_OUTPUT_BETAS:
        return
    if mt > spec.max_output_tokens:
        raise _bad(
            f"max_tokens: {mt} > {spec.max_output_tokens}, which is the maximum allowed number of output "
            f"tokens for {spec.id}"
        )


def _check_sampling(body: Mapping[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if value < 0:
            raise _bad(f"{name}: Input should be greater than or equal to 0")
        if value > 1:
            raise _bad(f"{name}: Input should be less than or equal to 1")
    top_k = body.get("top_k")
    if top_k is not None and top_k < 0:
        raise _bad("top_k: Input should be greater than or equal to 0")
    for seq in body.get("stop_sequences") or []:
        if not seq.strip():
            raise _bad("stop_sequences: each stop sequence must contain non-whitespace")


def _check_system(body: Mapping[str, Any]) -> None:
    system = body.get("system")
    if isinstance(system, list) and any(not blk.get("text") for blk in system):
        raise _bad("system: text content blocks must be non-empty")


def _check_schema(schema: Any, path: str) -> None:
    """A structural JSON Schema check: types are real JSON Schema types, properties are schemas."""
    if not isinstance(schema, Mapping):
        raise _bad(f"{path}: JSON schema is invalid - it must be an object")
    t = schema.get("type")
    for one in t if isinstance(t, list) else [t] if t is not None else []:
        if not isinstance(one, str) or one not in _JSON_TYPES:
            raise _bad(
                f"{path}: JSON schema is invalid. It must match JSON Schema draft 2020-12 ({one!r} is "
                "not a type)"
            )
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, Mapping):
            raise _bad(f"{path}.properties: JSON schema is invalid - 'properties' must be an object")
        for name, sub in props.items():
            _check_schema(sub, f"{path}.properties.{name}")
    req = schema.get("required")
    if req is not None and (not isinstance(req, list) or not all(isinstance(r, str) for r in req)):
        raise _bad(f"{path}.required: JSON schema is invalid - 'required' must be a list of strings")
    items = schema.get("items")
    if isinstance(items, Mapping):
        _check_schema(items, f"{path}.items")
    enum = schema.get("enum")
    if enum is not None and not isinstance(enum, list):
        raise _bad(f"{path}.enum: JSON schema is invalid - 'enum' must be an array")


def _check_output_config(body: Mapping[str, Any], spec: _models.ModelSpec | None) -> None:
    oc = body.get("output_config") or {}
    fmt = oc.get("format")
    if fmt is not None:
        _check_schema(fmt.get("schema"), "output_config.format.schema")
    legacy = body.get("output_format")
    if legacy is not None:
        _check_schema(legacy.get("schema"), "output_format.schema")
    effort = oc.get("effort")
    levels = spec.effort_levels if spec is not None else None
    if effort is None or levels is None:
        return
    if not levels:
        raise _bad("This model does not support the effort parameter.")
    if effort not in levels:
        raise _bad(
            f"This model does not support effort level '{effort}'. Supported levels: "
            f"{', '.join(sorted(levels))}."
        )


def _check_tools(body: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for i, tool in enumerate(body.get("tools") or []):
        name = tool.get("name")
        if tool.get("type") not in (None, "custom"):
            names.append(str(name))  # server tools (web_search_…, bash_…) carry no input_schema
            continue
        if not _TOOL_NAME.match(name):
            raise _bad(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool["input_schema"]
        if schema.get("type") != "object":
            raise _bad(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        _check_schema(schema, f"tools.{i}.custom.input_schema")
        names.append(name)
    if len(set(names)) != len(names):
        raise _bad("tools: Tool names must be unique.")
    tc = body.get("tool_choice")
    if tc is not None:
        if tc["type"] == "tool" and tc["name"] not in names:
            raise _bad(f"tool_choice.tool.name: Tool '{tc['name']}' not found in tools")
        if tc["type"] == "any" and not names:
            raise _bad("tool_choice: tool_choice.type 'any' requires at least one tool in `tools`")
    return names


def _check_thinking(
    body: Mapping[str, Any], spec: _models.ModelSpec | None, tool_names: list[str], ctx: Context
) -> None:
    th = body.get("thinking")
    if th is None:
        return
    kind = th.get("type")
    if kind == "enabled":
        budget = th.get("budget_tokens")
        if budget is None:
            raise _bad("thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            raise _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        mt = body.get("max_tokens")
        if isinstance(mt, int) and budget >= mt and not ctx.betas & _INTERLEAVED_BETAS:
            raise _bad(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {THINKING}#max-tokens-and-context-window-size"
            )
        if spec is not None and spec.budgeted_thinking is False:
            raise _bad(
                '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" '
                'and "output_config.effort" to control thinking behavior.'
            )
    elif kind == "adaptive" and spec is not None and spec.adaptive_thinking is False:
        raise _bad("adaptive thinking is not supported on this model")
    if not thinking_on(body):
        return
    tc = body.get("tool_choice")
    forced = isinstance(tc, Mapping) and tc.get("type") in _FORCED
    # Budgeted thinking never allows forced tool use; adaptive only fails where the catalog says so.
    refused = kind == "enabled" or (spec is not None and spec.forced_tool_choice_with_adaptive is False)
    if forced and refused:
        raise _bad("Thinking may not be enabled when tool_choice forces tool use.")
    see = f"Please consult our documentation at {THINKING}#feature-compatibility"
    temp = body.get("temperature")
    if temp is not None and temp != 1:
        raise _bad(f"`temperature` may only be set to 1 when thinking is enabled. {see}")
    if body.get("top_k") is not None:
        raise _bad(f"`top_k` is not supported when thinking is enabled. {see}")
    top_p = body.get("top_p")
    if top_p is not None and top_p < 0.95:
        raise _bad(f"`top_p` must be between 0.95 and 1 when thinking is enabled. {see}")


def _check_container(body: Mapping[str, Any], ctx: Context) -> None:
    # A real 400 (pydantic/pydantic-ai#5167): a {"id": …} container is refused; the object form is
    # documented for Agent Skills, which need the skills beta.
    container = body.get("container")
    if container is not None and not isinstance(container, str) and not ctx.betas & _SKILLS_BETAS:
        raise _bad("container: Input should be a valid string")


def _cache_markers(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> list[str]:
    """The TTL of every explicit breakpoint in prompt order (tools, system, messages)."""
    ttls: list[str] = []

    def take(block: Any) -> None:
        cc = block.get("cache_control") if isinstance(block, Mapping) else None
        if cc is not None:
            ttls.append(str(cc.get("ttl") or "5m"))

    for tool in body.get("tools") or []:
        take(tool)
    system = body.get("system")
    for blk in system if isinstance(system, list) else []:
        take(blk)
    for msg in messages:
        for blk in blocks_of(msg.get("content")):
            take(blk)
            if blk.get("type") == "tool_result" and isinstance(blk.get("content"), list):
                for sub in blk["content"]:
                    take(sub)
    return ttls


def _check_cache_breakpoints(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> None:
    ttls = _cache_markers(body, messages)
    total = len(ttls) + (1 if body.get("cache_control") is not None else 0)
    if total > 4:
        raise _bad(f"A maximum of 4 blocks with cache_control may be provided. Found {total}.")
    if "5m" in ttls and "1h" in ttls[ttls.index("5m") :]:
        raise _bad(
            "cache_control: a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block"
        )

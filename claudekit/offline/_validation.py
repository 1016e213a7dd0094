"""Request validation in the service's order: merge turns, check the shape, then the semantic rules.

1. Consecutive ``user`` or ``assistant`` messages are combined into one turn (the SDK's ``messages``
   docstring: "Consecutive user or assistant turns in your request will be combined into a single
   turn"), so every later error path counts merged turns, as the service's do.
2. The shape comes from the installed SDK's own request types (:mod:`._shapes`): plain, or beta when the
   ``anthropic-beta`` header names betas.
3. The rules below need more than a type: pairing, thinking, caching, limits and the model catalog. Each
   raises :class:`ApiError` with the service's wording where it is known (see ``RULES`` and
   ``docs/offline.md``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _models
from ._errors import ApiError
from ._shapes import check_shape
from ._signing import ThinkingSigner

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
    Rule("shape", MESSAGES_API, "the body fits the installed SDK's request type (unknown keys refused)"),
    Rule("beta_header", BETA_HEADERS, "every anthropic-beta value is a known beta"),
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
    Rule("image_data", VISION, "base64 images decode and match their media_type (tool results too)"),
    Rule("sampling_ranges", MESSAGES_API, "temperature and top_p in [0, 1], top_k ≥ 0"),
    Rule("stop_sequences", MESSAGES_API, "stop sequences contain non-whitespace"),
    Rule("output_format", STRUCTURED, "output_config.format.schema is structurally valid JSON Schema"),
    Rule("container_type", MESSAGES_API, "container is a string (an object only with the skills beta)"),
)

KNOWN_MODELS: frozenset[str] = frozenset(n for spec in _models.all_models() for n in spec.names)

_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_FORCED = ("any", "tool")
# Betas that lift the documented output limit or the budget < max_tokens rule.
_LONG_OUTPUT_BETAS = frozenset({"output-128k-2025-02-19", "output-300k-2026-03-24"})
_INTERLEAVED = "interleaved-thinking-2025-05-14"
_SKILLS = "skills-2025-10-02"
# Betas seen in recorded traffic that the installed SDK's AnthropicBetaParam literal may not list.
_SEEN_BETAS = frozenset(
    {
        "fine-grained-tool-streaming-2025-05-14",
        "claude-code-20250219",
        "oauth-2025-04-20",
        "web-fetch-2025-09-10",
        "code-execution-2025-08-25",
        "advanced-tool-use-2025-11-20",
        "effort-2025-11-24",
        "tool-examples-2025-10-29",
        "mcp-client-2025-04-04",
        "structured-outputs-2025-12-15",
    }
)


@dataclass(frozen=True)
class Context:
    """What validation needs besides the body: the signer, the clock and the request's betas."""

    signer: ThinkingSigner
    today: dt.date = field(default_factory=dt.date.today)
    betas: frozenset[str] = frozenset()
    count_tokens: bool = False


def _bad(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def thinking_on(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


@functools.lru_cache(maxsize=1)
def _known_betas() -> frozenset[str]:
    from anthropic.types import anthropic_beta_param

    names: set[str] = set(_SEEN_BETAS)

    def walk(tp: Any) -> None:
        for arg in typing.get_args(tp):
            if isinstance(arg, str):
                names.add(arg)
            else:
                walk(arg)

    walk(anthropic_beta_param.AnthropicBetaParam)
    return frozenset(names)


def parse_betas(header: str | None) -> frozenset[str]:
    """The ``anthropic-beta`` header's values; unknown ones are a 400 worded like the service's."""
    values = [v.strip() for v in (header or "").split(",") if v.strip()]
    unknown = [v for v in values if v not in _known_betas()]
    if unknown:
        listed = ", ".join(f"`{v}`" for v in unknown)
        raise _bad(
            f"Unexpected value(s) {listed} for the `anthropic-beta` header. Please consult our "
            "documentation at platform.claude.com/docs or try again without the header."
        )
    return frozenset(values)


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    return []


def merge_turns(messages: Any) -> Any:
    """Consecutive ``user`` (or ``assistant``) messages combined into one turn, as the service does.

    Anything that is not a list of well-formed messages is returned unchanged for the shape check.
    """
    if not isinstance(messages, list):
        return messages
    merged: list[Any] = []
    for msg in messages:
        prev = merged[-1] if merged else None
        if (
            isinstance(msg, Mapping)
            and isinstance(prev, Mapping)
            and msg.get("role") in ("user", "assistant")
            and msg.get("role") == prev.get("role")
            and isinstance(msg.get("content"), (str, list))
            and isinstance(prev.get("content"), (str, list))
        ):
            merged[-1] = {**prev, "content": [*_blocks(prev["content"]), *_blocks(msg["content"])]}
        else:
            merged.append(msg)
    return merged


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
    _check_messages(view, messages, ctx)
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
        if isinstance(mt, int) and budget >= mt and _INTERLEAVED not in ctx.betas:
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
    if container is not None and not isinstance(container, str) and _SKILLS not in ctx.betas:
        raise _bad("container: Input should be a valid string")


def _image_type(raw: bytes) -> str | None:
    for media, magics in _IMAGE_MAGIC.items():
        if any(raw.startswith(m) for m in magics) and (media != "image/webp" or raw[8:12] == b"WEBP"):
            return media
    return None


def _check_image(block: Mapping[str, Any], path: str) -> None:
    """``path`` ends at the image block (``….image``); base64 data must decode to its media type."""
    source = block["source"]
    if source.get("type") != "base64":
        return
    media = str(source["media_type"])
    try:
        raw = base64.b64decode(str(source["data"]), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{path}.source.base64.data: The image data is not valid base64") from None
    if not raw:
        raise _bad(f"{path}.source.base64.data: The image data is empty")
    actual = _image_type(raw)
    if actual is None:
        raise _bad(f"{path}.source.base64.data: Image does not match the provided media type {media}")
    if actual != media:
        raise _bad(
            f"{path}.source.base64: The image was specified using the {media} media type, but the image "
            f"appears to be a {actual} image"
        )


def _check_messages(body: Mapping[str, Any], messages: list[dict[str, Any]], ctx: Context) -> None:
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if content is None:
            continue  # a beta system message may carry only output_config
        final_assistant = i == last and msg["role"] == "assistant"
        if content in ("", []) and not final_assistant:
            raise _bad(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        blocks = _blocks(content)
        for j, blk in enumerate(blocks):
            final = "last" if final_assistant and j == len(blocks) - 1 else "yes" if final_assistant else ""
            _check_block(blk, f"messages.{i}.content.{j}", final, ctx, msg["role"])
    _check_tool_pairing(messages)
    _check_thinking_turn(body, messages)


def _check_block(blk: Mapping[str, Any], path: str, final: str, ctx: Context, role: str) -> None:
    """One content block; ``final`` is "yes" inside a final assistant turn, "last" for its last block."""
    kind = blk["type"]
    if kind == "text":
        text = blk["text"]
        if not text and not final:
            raise _bad("messages: text content blocks must be non-empty")
        # User text only: recorded assistant turns with a " " text block are answered 200.
        if text and not text.strip() and role == "user":
            raise _bad("messages: text content blocks must contain non-whitespace text")
        if final == "last" and text != text.rstrip():
            raise _bad("messages: final assistant content cannot end with trailing whitespace")
    elif kind == "image":
        _check_image(blk, f"{path}.image")
    elif kind == "thinking":
        sig = blk["signature"]
        if not sig:
            raise _bad(f"{path}.thinking.signature: Field required")
        # Only this backend's own signatures can be checked; another's (the service's, in a recorded
        # conversation) is unverifiable, not invalid.
        if ctx.signer.issued(sig) and not ctx.signer.verify(blk["thinking"], sig):
            raise _bad(f"{path}: Invalid `signature` in `thinking` block")
    elif kind == "tool_result" and isinstance(blk.get("content"), list):
        for k, sub in enumerate(blk["content"]):
            if sub.get("type") == "image":
                _check_image(sub, f"{path}.tool_result.content.{k}.image")


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    for i, msg in enumerate(messages):
        blocks = _blocks(msg.get("content"))
        if msg["role"] == "assistant":
            _check_assistant_tools(i, blocks, messages)
        elif msg["role"] == "user":
            _check_user_results(i, blocks, messages)


def _check_assistant_tools(i: int, blocks: list[Any], messages: list[dict[str, Any]]) -> None:
    # Unique within a turn: recorded traffic reuses an id in a later turn and is answered 200.
    ids: list[str] = []
    for j, b in enumerate(blocks):
        if b.get("type") == "tool_use":
            if b["id"] in ids:
                raise _bad(f"messages.{i}.content.{j}: tool_use ids must be unique")
            ids.append(b["id"])
    if not ids:
        return
    nxt = messages[i + 1] if i + 1 < len(messages) else None
    answered: set[str] = set()
    if nxt is not None and nxt["role"] == "user":
        results = _blocks(nxt.get("content"))
        answered = {b.get("tool_use_id") for b in results if b.get("type") == "tool_result"}
    last_use = max(j for j, b in enumerate(blocks) if b.get("type") == "tool_use")
    text_after = any(b.get("type") == "text" for b in blocks[last_use + 1 :])
    missing = [t for t in ids if t not in answered]
    if missing or text_after:
        # Text after the last tool_use means the results cannot come "immediately after" it.
        raise _bad(
            f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing or ids)}. Each `tool_use` block must have a corresponding `tool_result` "
            "block in the next message."
        )


def _check_user_results(i: int, blocks: list[Any], messages: list[dict[str, Any]]) -> None:
    prev = messages[i - 1] if i > 0 else None
    prev_ids: set[str] = set()
    if prev is not None and prev["role"] == "assistant":
        prev_ids = {b["id"] for b in _blocks(prev.get("content")) if b.get("type") == "tool_use"}
    answered: set[str] = set()
    for j, blk in enumerate(blocks):
        if blk.get("type") != "tool_result":
            continue
        tid = blk["tool_use_id"]
        if tid not in prev_ids:
            raise _bad(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {tid}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
                "message."
            )
        if tid in answered:
            raise _bad(
                f"messages.{i}.content.{j}: each tool_use must have a single result. Found multiple "
                f"`tool_result` blocks with id: {tid}"
            )
        answered.add(tid)


def _check_thinking_turn(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> None:
    # Budgeted thinking only: with adaptive (interleaved) thinking the service lets a tool-using turn
    # start without a thinking block.
    thinking = body.get("thinking") or {}
    if thinking.get("type") != "enabled":
        return
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] != "assistant":
            continue
        blocks = _blocks(messages[i].get("content"))
        if not any(b.get("type") == "tool_use" for b in blocks):
            return
        first = blocks[0].get("type") if blocks else None
        if first not in ("thinking", "redacted_thinking"):
            raise _bad(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
                "recommend you include thinking blocks from previous turns. To avoid this requirement, "
                f"disable `thinking`. Please consult our documentation at {THINKING}"
            )
        return


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
        for blk in _blocks(msg.get("content")):
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

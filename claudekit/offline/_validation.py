"""Request validation rules, each with the documentation page it comes from.

Every rule raises :class:`ApiError` with the status and a message in the API's own
style (field path first). ``RULES`` lists them for the docs and for the tests.
"""

from __future__ import annotations

import base64
import binascii
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError
from ._signing import ThinkingSigner

__all__ = ["KNOWN_MODELS", "RULES", "Rule", "is_known_model", "thinking_on", "validate_request"]

MESSAGES_API = "https://platform.claude.com/docs/en/api/messages"
COUNT_TOKENS_API = "https://platform.claude.com/docs/en/api/messages-count-tokens"
ERRORS = "https://platform.claude.com/docs/en/api/errors"
THINKING = "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
PRESERVED_THINKING = "https://platform.claude.com/docs/build-with-claude/preserved-thinking"
TOOLS = "https://platform.claude.com/docs/en/agents-and-tools/tool-use/handle-tool-calls"
CACHING = "https://platform.claude.com/docs/en/build-with-claude/prompt-caching"
VISION = "https://platform.claude.com/docs/en/build-with-claude/vision"
STRUCTURED = "https://platform.claude.com/docs/en/build-with-claude/structured-outputs"
DIAGNOSTICS = "https://platform.claude.com/docs/en/build-with-claude/cache-diagnostics"


@dataclass(frozen=True)
class Rule:
    id: str
    doc: str
    summary: str


RULES: tuple[Rule, ...] = (
    Rule("model_required", MESSAGES_API, "`model` is required"),
    Rule("model_unknown", ERRORS, "an unknown model is 404 not_found_error"),
    Rule("max_tokens_required", MESSAGES_API, "`max_tokens` is required on /v1/messages, an integer ≥ 1"),
    Rule("messages_required", MESSAGES_API, "`messages` is required and must not be empty"),
    Rule("first_message_user", MESSAGES_API, "the first message must use the user role"),
    Rule("role_valid", MESSAGES_API, "roles are `user` or `assistant`"),
    Rule(
        "content_non_empty",
        MESSAGES_API,
        "messages and text blocks must be non-empty (except a final assistant)",
    ),
    Rule(
        "tool_result_has_tool_use",
        TOOLS,
        "each tool_result must answer a tool_use of the previous assistant turn",
    ),
    Rule("tool_use_has_result", TOOLS, "each tool_use must get a tool_result in the next user turn"),
    Rule("thinking_budget_min", THINKING, "thinking.budget_tokens ≥ 1024"),
    Rule("thinking_budget_lt_max", THINKING, "thinking.budget_tokens < max_tokens"),
    Rule(
        "thinking_config",
        THINKING,
        "thinking.type enabled|adaptive|disabled|between_tools, display summarized|omitted",
    ),
    Rule("thinking_forced_tool", THINKING, "thinking cannot be combined with tool_choice any/tool"),
    Rule(
        "thinking_sampling",
        THINKING,
        "with thinking on: temperature only 1, no top_k, top_p only in [0.95, 1]",
    ),
    Rule("thinking_signature", PRESERVED_THINKING, "thinking blocks need their unaltered signature"),
    Rule(
        "thinking_first_in_tool_turn",
        THINKING,
        "with thinking on, a tool-using last assistant turn starts with thinking",
    ),
    Rule("cache_control_max", CACHING, "at most 4 cache_control breakpoints (automatic caching uses one)"),
    Rule(
        "cache_control_shape", CACHING, "cache_control is {type: ephemeral, ttl: 5m|1h}, 1h entries before 5m"
    ),
    Rule("tool_schema", MESSAGES_API, "tools need a unique name and an input_schema object of type object"),
    Rule("tool_choice", MESSAGES_API, "tool_choice is auto|any|none|tool (tool names an existing tool)"),
    Rule("image_data", VISION, "base64 images must decode and match their media_type"),
    Rule("sampling_ranges", MESSAGES_API, "temperature and top_p in [0, 1], top_k ≥ 0"),
    Rule("stop_sequences", MESSAGES_API, "stop_sequences is a list of non-whitespace strings"),
    Rule("system_shape", MESSAGES_API, "system is a string or a list of text blocks"),
    Rule(
        "output_config", STRUCTURED, "output_config.effort is low..max, format is {type: json_schema, schema}"
    ),
    Rule("metadata", MESSAGES_API, "metadata only has user_id (a string)"),
    Rule("diagnostics", DIAGNOSTICS, "diagnostics.previous_message_id is a string or null"),
    Rule("extra_inputs", MESSAGES_API, "unknown top-level fields are rejected"),
)


def _models() -> frozenset[str]:
    from anthropic.types import model as model_mod

    names: set[str] = set()

    def walk(tp: Any) -> None:
        for arg in typing.get_args(tp):
            if isinstance(arg, str):
                names.add(arg)
            else:
                walk(arg)

    walk(model_mod.Model)
    return frozenset(names)


KNOWN_MODELS: frozenset[str] = _models()
_DATED = re.compile(r"^(?P<base>.+)-\d{8}$")


def is_known_model(model: str) -> bool:
    """Models in the installed SDK's ``Model`` literal, plus dated ``-YYYYMMDD`` aliases of them."""
    if not isinstance(model, str):
        return False
    if model in KNOWN_MODELS:
        return True
    m = _DATED.match(model)
    return bool(m and m.group("base") in KNOWN_MODELS)


_TOP_LEVEL = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "stream",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "cache_control",
        "output_config",
        "diagnostics",
        "container",
        "inference_geo",
        "service_tier",
        "speed",
        "user_profile_id",
        "workspace_id",
        "mcp_servers",
        "context_management",
    }
)
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def _bad(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def thinking_on(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    return []


def _check_cache_control(cc: Any, path: str, ttls: list[str]) -> None:
    if not isinstance(cc, Mapping) or cc.get("type") != "ephemeral":
        raise _bad(f"{path}.type: Input should be 'ephemeral'")
    ttl = cc.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise _bad(f"{path}.ttl: Input should be '5m' or '1h'")
    ttls.append(str(ttl))


def _check_schema(schema: Any, path: str) -> None:
    """A structural JSON Schema check: types are real JSON Schema types, properties are schemas."""
    if not isinstance(schema, Mapping):
        raise _bad(f"{path}: JSON schema is invalid - it must be an object")
    t = schema.get("type")
    types = t if isinstance(t, list) else [t] if t is not None else []
    for one in types:
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


def _check_image(block: Mapping[str, Any], path: str) -> None:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise _bad(f"{path}.source: Field required")
    if source.get("type") != "base64":
        return
    media = source.get("media_type")
    if not isinstance(media, str) or media not in _IMAGE_MAGIC:
        raise _bad(
            f"{path}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' "
            "or 'image/webp'"
        )
    try:
        raw = base64.b64decode(str(source.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{path}.source.base64.data: The image data is not valid base64") from None
    if not raw:
        raise _bad(f"{path}.source.base64.data: The image data is empty")
    ok = any(raw.startswith(m) for m in _IMAGE_MAGIC[str(media)])
    if media == "image/webp":
        ok = ok and raw[8:12] == b"WEBP"
    if not ok:
        raise _bad(f"{path}.source.base64.data: Image does not match the provided media type {media}")


def validate_request(body: Any, *, signer: ThinkingSigner, count_tokens: bool = False) -> None:
    """Raise :class:`ApiError` for the first rule ``body`` breaks (the API stops at the first)."""
    if not isinstance(body, Mapping):
        raise _bad("Request body must be a JSON object")
    # extra_inputs
    for key in body:
        if key not in _TOP_LEVEL and not (count_tokens and key == "max_tokens"):
            raise _bad(f"{key}: Extra inputs are not permitted")
    if count_tokens and "stream" in body:
        raise _bad("stream: Extra inputs are not permitted")
    # model_required / model_unknown
    model = body.get("model")
    if model is None:
        raise _bad("model: Field required")
    if not isinstance(model, str):
        raise _bad("model: Input should be a valid string")
    # max_tokens_required
    if not count_tokens:
        if "max_tokens" not in body:
            raise _bad("max_tokens: Field required")
        mt = body["max_tokens"]
        if isinstance(mt, bool) or not isinstance(mt, int):
            raise _bad("max_tokens: Input should be a valid integer")
        if mt < 1:
            raise _bad("max_tokens: Input should be greater than or equal to 1")
    # messages_required
    messages = body.get("messages")
    if messages is None:
        raise _bad("messages: Field required")
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    _check_sampling(body)
    _check_system(body)
    _check_output_config(body)
    _check_metadata_and_diagnostics(body)
    tool_names = _check_tools(body)
    _check_thinking(body, tool_names)
    ttls: list[str] = []
    explicit = _check_messages(body, messages, signer, ttls)
    _check_cache_breakpoints(body, explicit, ttls)
    if not is_known_model(model):
        raise ApiError(404, f"model: {model}", "not_found_error")


def _check_sampling(body: Mapping[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        if name in body:
            v = body[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _bad(f"{name}: Input should be a valid number")
            if v < 0:
                raise _bad(f"{name}: Input should be greater than or equal to 0")
            if v > 1:
                raise _bad(f"{name}: Input should be less than or equal to 1")
    if "top_k" in body:
        v = body["top_k"]
        if isinstance(v, bool) or not isinstance(v, int):
            raise _bad("top_k: Input should be a valid integer")
        if v < 0:
            raise _bad("top_k: Input should be greater than or equal to 0")
    if "stop_sequences" in body:
        seqs = body["stop_sequences"]
        if not isinstance(seqs, list) or not all(isinstance(s, str) for s in seqs):
            raise _bad("stop_sequences: Input should be a valid list of strings")
        for s in seqs:
            if not s.strip():
                raise _bad("stop_sequences: each stop sequence must contain non-whitespace")


def _check_system(body: Mapping[str, Any]) -> None:
    system = body.get("system")
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _bad("system: Input should be a valid string or list of text blocks")
    for i, blk in enumerate(system):
        if not isinstance(blk, Mapping) or blk.get("type") != "text":
            raise _bad(f"system.{i}.type: Input should be 'text'")
        if not isinstance(blk.get("text"), str):
            raise _bad(f"system.{i}.text: Field required")
        if not blk["text"]:
            raise _bad("system: text content blocks must be non-empty")


def _check_output_config(body: Mapping[str, Any]) -> None:
    oc = body.get("output_config")
    if oc is None:
        return
    if not isinstance(oc, Mapping):
        raise _bad("output_config: Input should be a valid dictionary")
    for key in oc:
        if key not in ("effort", "format"):
            raise _bad(f"output_config.{key}: Extra inputs are not permitted")
    effort = oc.get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        raise _bad("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    fmt = oc.get("format")
    if fmt is not None:
        if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
            raise _bad("output_config.format.type: Input should be 'json_schema'")
        if "schema" not in fmt:
            raise _bad("output_config.format.schema: Field required")
        _check_schema(fmt["schema"], "output_config.format.schema")


def _check_metadata_and_diagnostics(body: Mapping[str, Any]) -> None:
    md = body.get("metadata")
    if md is not None:
        if not isinstance(md, Mapping):
            raise _bad("metadata: Input should be a valid dictionary")
        for key, value in md.items():
            if key != "user_id":
                raise _bad(f"metadata.{key}: Extra inputs are not permitted")
            if value is not None and not isinstance(value, str):
                raise _bad("metadata.user_id: Input should be a valid string")
    diag = body.get("diagnostics")
    if diag is not None:
        if not isinstance(diag, Mapping):
            raise _bad("diagnostics: Input should be a valid dictionary")
        pid = diag.get("previous_message_id")
        if pid is not None and not isinstance(pid, str):
            raise _bad("diagnostics.previous_message_id: Input should be a valid string")


def _check_tools(body: Mapping[str, Any]) -> list[str]:
    tools = body.get("tools")
    names: list[str] = []
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise _bad(f"tools.{i}: Input should be a valid dictionary")
        name = tool.get("name")
        if tool.get("type") not in (None, "custom"):
            # Server tools (web_search_…, bash_…) carry no input_schema.
            names.append(str(name))
            continue
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise _bad(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool.get("input_schema")
        if schema is None:
            raise _bad(f"tools.{i}.custom.input_schema: Field required")
        if not isinstance(schema, Mapping):
            raise _bad(f"tools.{i}.custom.input_schema: Input should be a valid dictionary")
        if schema.get("type") != "object":
            raise _bad(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        _check_schema(schema, f"tools.{i}.custom.input_schema")
        if "cache_control" in tool and tool["cache_control"] is not None:
            _check_cache_control(tool["cache_control"], f"tools.{i}.custom.cache_control", [])
        names.append(name)
    if len(set(names)) != len(names):
        raise _bad("tools: Tool names must be unique.")
    tc = body.get("tool_choice")
    if tc is not None:
        if not isinstance(tc, Mapping) or tc.get("type") not in ("auto", "any", "tool", "none"):
            raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        dp = tc.get("disable_parallel_tool_use")
        if dp is not None and not isinstance(dp, bool):
            raise _bad(f"tool_choice.{tc['type']}.disable_parallel_tool_use: Input should be a valid boolean")
        if tc["type"] == "tool":
            tname = tc.get("name")
            if not isinstance(tname, str):
                raise _bad("tool_choice.tool.name: Field required")
            if tname not in names:
                raise _bad(f"tool_choice.tool.name: Tool '{tname}' not found in tools")
        elif tc["type"] == "any" and not names:
            raise _bad("tool_choice: tool_choice.type 'any' requires at least one tool in `tools`")
    return names


def _check_thinking(body: Mapping[str, Any], tool_names: list[str]) -> None:
    th = body.get("thinking")
    if th is None:
        return
    if not isinstance(th, Mapping) or th.get("type") not in (
        "enabled",
        "adaptive",
        "disabled",
        "between_tools",
    ):
        raise _bad("thinking.type: Input should be 'enabled', 'adaptive', 'disabled' or 'between_tools'")
    display = th.get("display")
    if display is not None and display not in ("summarized", "omitted"):
        raise _bad(f"thinking.{th['type']}.display: Input should be 'summarized' or 'omitted'")
    if th["type"] == "enabled":
        budget = th.get("budget_tokens")
        if budget is None:
            raise _bad("thinking.enabled.budget_tokens: Field required")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _bad("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < 1024:
            raise _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        mt = body.get("max_tokens")
        if isinstance(mt, int) and budget >= mt:
            raise _bad(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                "documentation "
                f"at {THINKING}#max-tokens-and-context-window-size"
            )
    if thinking_on(body):
        tc = body.get("tool_choice")
        if isinstance(tc, Mapping) and tc.get("type") in ("any", "tool"):
            raise _bad("Thinking may not be enabled when tool_choice forces tool use.")
        # "Thinking isn't compatible with temperature or top_k modifications"; top_p may stay in [0.95, 1].
        see = f"Please consult our documentation at {THINKING}#feature-compatibility"
        temp = body.get("temperature")
        if temp is not None and temp != 1:
            raise _bad(f"`temperature` may only be set to 1 when thinking is enabled. {see}")
        if body.get("top_k") is not None:
            raise _bad(f"`top_k` is not supported when thinking is enabled. {see}")
        top_p = body.get("top_p")
        if top_p is not None and isinstance(top_p, (int, float)) and top_p < 0.95:
            raise _bad(f"`top_p` must be between 0.95 and 1 when thinking is enabled. {see}")


_USER_TYPES = frozenset({"text", "image", "document", "tool_result", "search_result", "container_upload"})
_ASSISTANT_TYPES = frozenset(
    {
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
        "compaction",
        "fallback",
        "advisor_tool_result",
        "tool_search_tool_result",
    }
)


def _check_messages(
    body: Mapping[str, Any], messages: list[Any], signer: ThinkingSigner, ttls: list[str]
) -> int:
    """Structure, tool pairing, thinking and images; returns the number of explicit breakpoints."""
    explicit = 0
    # tools then system come first in the prompt, so their TTLs are ordered first.
    for tool in body.get("tools") or []:
        if isinstance(tool, Mapping) and tool.get("cache_control") is not None:
            explicit += 1
            _check_cache_control(tool["cache_control"], "tools.cache_control", ttls)
    system = body.get("system")
    if isinstance(system, list):
        for i, blk in enumerate(system):
            if isinstance(blk, Mapping) and blk.get("cache_control") is not None:
                explicit += 1
                _check_cache_control(blk["cache_control"], f"system.{i}.cache_control", ttls)
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise _bad(f"messages.{i}: Input should be a valid dictionary")
        role = msg.get("role")
        if role not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _bad('messages: first message must use the "user" role')
        content = msg.get("content")
        if not isinstance(content, (str, list)):
            raise _bad(f"messages.{i}.content: Field required")
        final_assistant = i == last and role == "assistant"
        if (content == "" or content == []) and not final_assistant:
            raise _bad(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        allowed = _USER_TYPES if role == "user" else _ASSISTANT_TYPES
        for j, blk in enumerate(_blocks(content)):
            path = f"messages.{i}.content.{j}"
            if not isinstance(blk, Mapping):
                raise _bad(f"{path}: Input should be a valid dictionary")
            kind = blk.get("type")
            if not isinstance(kind, str) or kind not in allowed:
                raise _bad(
                    f"{path}.type: Input tag '{kind}' found using 'type' is not allowed in a {role} message"
                )
            if kind == "text":
                text = blk.get("text")
                if not isinstance(text, str):
                    raise _bad(f"{path}.text.text: Field required")
                if not text and not final_assistant:
                    raise _bad("messages: text content blocks must be non-empty")
                if final_assistant and j == len(_blocks(content)) - 1 and text != text.rstrip():
                    raise _bad("messages: final assistant content cannot end with trailing whitespace")
            elif kind == "image":
                _check_image(blk, path)
            elif kind == "thinking":
                if not isinstance(blk.get("thinking"), str):
                    raise _bad(f"{path}.thinking.thinking: Field required")
                sig = blk.get("signature")
                if not isinstance(sig, str) or not sig:
                    raise _bad(f"{path}.thinking.signature: Field required")
                if not signer.verify(blk["thinking"], sig):
                    raise _bad(f"{path}: Invalid `signature` in `thinking` block")
            elif kind == "tool_use":
                if not isinstance(blk.get("id"), str) or not isinstance(blk.get("name"), str):
                    raise _bad(f"{path}.tool_use.id: Field required")
                if not isinstance(blk.get("input"), Mapping):
                    raise _bad(f"{path}.tool_use.input: Input should be a valid dictionary")
            elif kind == "tool_result":
                if not isinstance(blk.get("tool_use_id"), str):
                    raise _bad(f"{path}.tool_result.tool_use_id: Field required")
                inner = blk.get("content")
                if isinstance(inner, list):
                    for k, sub in enumerate(inner):
                        if isinstance(sub, Mapping) and sub.get("type") == "image":
                            _check_image(sub, f"{path}.content.{k}")
                        if isinstance(sub, Mapping) and sub.get("cache_control") is not None:
                            explicit += 1
                            _check_cache_control(
                                sub["cache_control"], f"{path}.content.{k}.cache_control", ttls
                            )
            if blk.get("cache_control") is not None:
                if kind in ("thinking", "redacted_thinking"):
                    raise _bad(f"{path}.{kind}.cache_control: Extra inputs are not permitted")
                explicit += 1
                _check_cache_control(blk["cache_control"], f"{path}.{kind}.cache_control", ttls)
    _check_tool_pairing(messages)
    _check_thinking_turn(body, messages)
    return explicit


def _check_tool_pairing(messages: list[Any]) -> None:
    for i, msg in enumerate(messages):
        blocks = _blocks(msg.get("content"))
        if msg.get("role") == "user":
            prev_ids: set[str] = set()
            if i > 0 and messages[i - 1].get("role") == "assistant":
                prev_ids = {
                    str(b.get("id"))
                    for b in _blocks(messages[i - 1].get("content"))
                    if isinstance(b, Mapping) and b.get("type") == "tool_use"
                }
            for j, blk in enumerate(blocks):
                if isinstance(blk, Mapping) and blk.get("type") == "tool_result":
                    tid = blk.get("tool_use_id")
                    if tid not in prev_ids:
                        raise _bad(
                            f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                            "`tool_result` blocks: "
                            f"{tid}. Each `tool_result` block must have a corresponding `tool_use` "
                            "block in the "
                            "previous message."
                        )
        else:
            ids = [str(b.get("id")) for b in blocks if isinstance(b, Mapping) and b.get("type") == "tool_use"]
            if not ids:
                continue
            answered: set[str] = set()
            if i + 1 < len(messages):
                nxt = messages[i + 1]
                if nxt.get("role") == "user":
                    answered = {
                        str(b.get("tool_use_id"))
                        for b in _blocks(nxt.get("content"))
                        if isinstance(b, Mapping) and b.get("type") == "tool_result"
                    }
            elif i == len(messages) - 1:
                # A final assistant turn ending in tool_use is a prefill the API rejects too.
                answered = set()
            missing = [t for t in ids if t not in answered]
            if missing:
                raise _bad(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    "immediately after: "
                    f"{', '.join(missing)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block "
                    "in the next message."
                )


def _check_thinking_turn(body: Mapping[str, Any], messages: list[Any]) -> None:
    if not thinking_on(body):
        return
    # The last assistant turn, when it used tools and the conversation continues with its results.
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") != "assistant":
            continue
        blocks = [b for b in _blocks(messages[i].get("content")) if isinstance(b, Mapping)]
        if not any(b.get("type") == "tool_use" for b in blocks):
            return
        first = blocks[0].get("type") if blocks else None
        if first not in ("thinking", "redacted_thinking"):
            raise _bad(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{first}`. "
                "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
                "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend "
                "you include "
                "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please "
                f"consult our documentation at {THINKING}"
            )
        return


def _check_cache_breakpoints(body: Mapping[str, Any], explicit: int, ttls: list[str]) -> None:
    auto = body.get("cache_control")
    total = explicit
    if auto is not None:
        _check_cache_control(auto, "cache_control", [])
        total += 1
    if explicit > 4 or (auto is not None and total > 4):
        raise _bad(f"A maximum of 4 blocks with cache_control may be provided. Found {total}.")
    seen_5m = False
    for ttl in ttls:
        if ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise _bad(
                "cache_control: a ttl='1h' cache_control block must not come after a ttl='5m' "
                "cache_control block"
            )


def _sequence(x: Any) -> Sequence[Any]:
    return x if isinstance(x, list) else []

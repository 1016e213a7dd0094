"""What the offline model says: scripted turns, functions, and the default responder."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._base._jsonschema import resolve_refs
from ._documents import cited_answer, search_results
from ._errors import ApiError
from ._faults import Fault
from ._server_tools import plan_server_turn
from ._tokens import count_text
from ._tool_changes import offered_tools
from ._validation import thinking_on

__all__ = [
    "DefaultResponder",
    "OfflineRequest",
    "Responder",
    "Script",
    "ToolCall",
    "Turn",
    "value_for_schema",
]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the offline model makes: ``ToolCall("get_weather", {"city": "Paris"})``."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Turn:
    """One assistant turn: optional thinking, text, tool calls, stop reason and fault.

    ``thinking`` is only emitted when the request enables thinking; when it does and
    ``thinking`` is None, a short plan is generated so tool loops stay valid.
    ``stop_reason`` defaults to ``tool_use`` when there are tool calls, else ``end_turn``
    (``max_tokens`` / ``stop_sequence`` are still applied from the request).
    """

    text: str | None = None
    thinking: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    stop_reason: str | None = None
    fault: Fault | None = None
    #: Text blocks after ``text``, each with its citations (the documents' answers, see ``_documents``).
    cited: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = ()
    #: Server-tool and MCP connector blocks (raw, in order) before the text (see ``_server_tools``).
    server_blocks: Sequence[Mapping[str, Any]] = ()
    #: ``usage.server_tool_use`` counts for this response (``web_search_requests``, …).
    server_tool_use: Mapping[str, int] | None = None


class OfflineRequest:
    """A read-only view of a Messages request, with helpers for responders."""

    def __init__(self, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self.body = body
        self.headers: Mapping[str, str] = headers or {}

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        return [m for m in self.body.get("messages") or [] if isinstance(m, Mapping)]

    @property
    def tools(self) -> list[Mapping[str, Any]]:
        """The tools offered at the end of the conversation: ``tools`` after the system messages'
        ``tool_addition`` / ``tool_removal`` blocks (``_tool_changes``)."""
        return offered_tools(self.body)

    @property
    def thinking_enabled(self) -> bool:
        return thinking_on(self.body)

    @property
    def tool_choice(self) -> Mapping[str, Any]:
        tc = self.body.get("tool_choice")
        return tc if isinstance(tc, Mapping) else {"type": "auto"}

    @property
    def parallel_allowed(self) -> bool:
        return not bool(self.tool_choice.get("disable_parallel_tool_use"))

    @property
    def output_schema(self) -> Mapping[str, Any] | None:
        oc = self.body.get("output_config")
        fmt = oc.get("format") if isinstance(oc, Mapping) else None
        if fmt is None:
            # The legacy top-level ``output_format`` (beta structured-outputs-2025-11-13): litellm sends it.
            fmt = self.body.get("output_format")
        schema = fmt.get("schema") if isinstance(fmt, Mapping) else None
        return schema if isinstance(schema, Mapping) else None

    @property
    def last_user_text(self) -> str:
        """Text of the last user message that has text (tool results excluded)."""
        for msg in reversed(self.messages):
            if msg.get("role") == "user":
                text = _text_of(msg.get("content"))
                if text:
                    return text
        return ""

    @property
    def tool_results(self) -> list[tuple[str, str, str, bool]]:
        """(tool_use_id, tool name, result text, is_error) from the last message, if it is a user turn."""
        msgs = self.messages
        if not msgs or msgs[-1].get("role") != "user":
            return []
        names: dict[str, str] = {}
        if len(msgs) >= 2:
            for blk in _blocks(msgs[-2].get("content")):
                if blk.get("type") == "tool_use":
                    names[str(blk.get("id"))] = str(blk.get("name"))
        out = []
        for blk in _blocks(msgs[-1].get("content")):
            if blk.get("type") == "tool_result":
                tid = str(blk.get("tool_use_id"))
                out.append(
                    (tid, names.get(tid, "tool"), _text_of(blk.get("content")), bool(blk.get("is_error")))
                )
        return out


def _blocks(content: Any) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, Mapping)]
    return []


# Text a client injects into the user's turn (Claude Code's ``<system-reminder>`` blocks, command wrappers):
# context for the model, not what the user asked.
_INJECTED = re.compile(
    r"<(system-reminder|system|context|command-[\w-]+|local-command-[\w-]+)>.*?</\1>", re.S
)


def _text_of(content: Any) -> str:
    texts = (str(b.get("text", "")) for b in _blocks(content) if b.get("type") == "text")
    return "\n".join(_INJECTED.sub("", t).strip() for t in texts).strip()


def _system_text(system: Any) -> str:
    return _text_of(system) if system is not None else ""


Responder = Callable[[OfflineRequest], Turn | Fault | str]
ScriptStep = Turn | Fault | str | Responder


class Script:
    """Answers each ``/v1/messages`` request with the next step: a Turn, a Fault, a string or a function.

    When the steps run out, ``then`` (a responder) answers, or else the request fails
    with a 500 ``api_error`` saying the script is exhausted.
    """

    def __init__(self, steps: Iterable[ScriptStep], *, then: Responder | None = None) -> None:
        self.steps: list[ScriptStep] = list(steps)
        self.then = then
        self.used = 0
        self.requests: list[OfflineRequest] = []
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return len(self.steps) - self.used

    def __call__(self, request: OfflineRequest) -> Turn | Fault | str:
        with self._lock:
            self.requests.append(request)
            if self.used >= len(self.steps):
                if self.then is not None:
                    step: ScriptStep = self.then
                else:
                    raise ApiError(
                        500, f"claudekit offline Script is exhausted ({len(self.steps)} steps used)"
                    )
            else:
                step = self.steps[self.used]
                self.used += 1
        if isinstance(step, (Turn, Fault, str)):
            return step
        return step(request)


# -- the default responder ------------------------------------------------------------------------

_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "get",
        "give",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "set",
        "show",
        "tell",
        "that",
        "the",
        "their",
        "then",
        "this",
        "to",
        "use",
        "using",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "list",
        "find",
        "some",
        "any",
    ]
)
_FREE_TEXT_FIELDS = frozenset(
    {"query", "q", "text", "prompt", "question", "message", "content", "input", "search"}
)
_PLACE_FIELDS = frozenset({"city", "location", "place", "country", "region", "town", "destination", "origin"})


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in _STOP}


def _name_parts(name: str) -> set[str]:
    parts = re.split(r"[_\-\s]+|(?<=[a-z])(?=[A-Z])", name)
    return {p.lower() for p in parts if len(p) >= 3 and p.lower() not in _STOP}


def _asks_for(tool: Mapping[str, Any], prompt: str) -> bool:
    """Whether the user's message asks for ``tool``: it names it (``get_weather``, ``get weather``, ``Bash``),
    or uses every word of a compound name (``weather`` for ``get_weather``, ``search … books``).

    Descriptions are not matched: in an agent's request every word is in some tool's description (issue 24:
    Claude Code's "Say hello" called Agent, CronCreate and Bash in parallel, 580 requests in 120 s)."""
    name = str(tool.get("name", ""))
    if not name:
        return False
    compound = bool(re.search(r"[_\-]|[a-z][A-Z]", name))
    # A one-word name (``Read``, ``Agent``) counts only as written; an identifier counts in any case.
    flags = re.IGNORECASE if compound else 0
    if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", prompt, flags):
        return True
    spaced = " ".join(re.split(r"[_\-]+|(?<=[a-z])(?=[A-Z])", name)).lower()
    if compound and re.search(rf"\b{re.escape(spaced)}\b", prompt.lower()):
        return True
    parts = _name_parts(name)
    return compound and bool(parts) and parts <= _words(prompt)


_QUOTED = re.compile(r"[\"“']([^\"”']{1,80})[\"”']|`([^`\n]{1,200})`")  # quotes, or inline code
# A URL, an absolute or home path, or a file name with an extension (``hello.txt``, ``src/app.py``).
_PATHISH = re.compile(r"https?://[^\s\"'<>`]+|~?/[\w.~/-]+|\b[\w-]+(?:/[\w.-]+)*\.[A-Za-z0-9]{1,8}\b")
_PATH_SUFFIXES = ("path", "file", "filename", "url", "uri", "dir", "directory")
_PLACES = re.compile(r"\b(?:in|for|at|of|and|to|from)\s+([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)")


def _field_values(name: str, prompt: str) -> list[str]:
    """Values the prompt gives for a field: ``name Paris``, ``name: "x"``, ``name=3``."""
    label = re.escape(name).replace("_", "[ _]")
    out = []
    for m in re.finditer(
        rf"\b{label}\b\s*(?:=|:|is|of)?\s*(?:\"([^\"]+)\"|“([^”]+)”|'([^']+)'|([\w./:@+-]+))",
        prompt,
        re.IGNORECASE,
    ):
        value = next(g for g in m.groups() if g is not None).rstrip(".,:;")
        if value.lower() not in _STOP:
            out.append(value)
    return out


def _numbers(prompt: str) -> list[str]:
    return re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])", prompt)


_MAX_DEPTH = 6  # recursive models (a tree of nodes) stop nesting here: optional parts left out


def value_for_schema(
    schema: Mapping[str, Any],
    prompt: str,
    name: str = "",
    *,
    index: int = 0,
    root: Mapping[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A value valid against ``schema``, drawn from ``prompt`` where the field name or type allows."""
    root = schema if root is None else root
    schema = resolve_refs(schema, root)
    if depth > 4 * _MAX_DEPTH:  # a schema no finite value satisfies (a required self-reference)
        return None

    def sub(s: Mapping[str, Any], key: str, i: int) -> Any:
        return value_for_schema(s, prompt, key, index=i, root=root, depth=depth + 1)

    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return _enum_value(schema["enum"], prompt)
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t is None and isinstance(schema.get("anyOf"), list) and schema["anyOf"]:
        options = [o for o in schema["anyOf"] if isinstance(o, Mapping)]
        null = next((o for o in options if o.get("type") == "null"), None)
        if depth >= _MAX_DEPTH and null is not None:  # a nullable self-reference ends the recursion
            return None
        chosen = next((o for o in options if o.get("type") != "null"), options[0] if options else {})
        return sub(chosen, name, index)
    if t in ("integer", "number"):
        value = _number_value(schema, prompt, name, index)
        return int(value) if t == "integer" else value
    if t == "boolean":
        found = _field_values(name, prompt) if name else []
        return bool(found and found[0].lower() in ("true", "yes", "on", "1"))
    if t == "null":
        return None
    if t == "array":
        items = schema.get("items")
        item_schema = items if isinstance(items, Mapping) else {"type": "string"}
        least = int(schema.get("minItems", 0))
        count = least if depth >= _MAX_DEPTH else max(1, least)
        return [sub(item_schema, name, index + i) for i in range(count)]
    if t == "object" or "properties" in schema:
        return _object_value(schema, prompt, index, root, depth, sub)
    return _string_value(name, prompt, index, _schema_example(schema))


def _enum_value(options: list[Any], prompt: str) -> Any:
    """The first option the prompt names as a word, else the first option."""
    low = prompt.lower()
    for option in options:
        if isinstance(option, str) and re.search(rf"\b{re.escape(option.lower())}\b", low):
            return option
    return options[0]


def _number_value(schema: Mapping[str, Any], prompt: str, name: str, index: int) -> float:
    """The field's number in the prompt (else its index-th number), clamped to the schema's bounds."""
    found = _field_values(name, prompt) if name else []
    nums = [v for v in found if re.fullmatch(r"-?\d+(?:\.\d+)?", v)] or _numbers(prompt)
    value = float(nums[min(index, len(nums) - 1)]) if nums else float(schema.get("minimum", 1))
    if "minimum" in schema:
        value = max(value, float(schema["minimum"]))
    if "maximum" in schema:
        value = min(value, float(schema["maximum"]))
    return value


def _object_value(
    schema: Mapping[str, Any],
    prompt: str,
    index: int,
    root: Mapping[str, Any],
    depth: int,
    sub: Callable[[Mapping[str, Any], str, int], Any],
) -> dict[str, Any]:
    """The required properties, and the optional ones the prompt mentions (not past the depth limit)."""
    required = set(schema.get("required") or [])
    obj: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        mentioned = depth < _MAX_DEPTH and (
            bool(_field_values(key, prompt)) or _enum_mentioned(resolve_refs(prop, root), prompt)
        )
        if key in required or mentioned:
            obj[key] = sub(prop, key, index)
    return obj


def _enum_mentioned(schema: Mapping[str, Any], prompt: str) -> bool:
    options = schema.get("enum")
    low = prompt.lower()
    return isinstance(options, list) and any(
        isinstance(o, str) and re.search(rf"\b{re.escape(o.lower())}\b", low) for o in options
    )


def _schema_example(schema: Mapping[str, Any]) -> str | None:
    """The schema's own ``default`` or first ``examples`` string: better than the prompt's words."""
    examples = schema.get("examples")
    for value in (schema.get("default"), examples[0] if isinstance(examples, list) and examples else None):
        if isinstance(value, str) and value:
            return value
    return None


def _string_value(name: str, prompt: str, index: int, example: str | None = None) -> str:
    candidates = _string_candidates(name, prompt)
    if candidates:
        return candidates[min(index, len(candidates) - 1)]
    if example is not None:
        return example
    short = prompt.strip().splitlines()[0][:60] if prompt.strip() else "offline"
    return short


def _string_candidates(name: str, prompt: str) -> list[str]:
    return list(dict.fromkeys(_raw_string_candidates(name, prompt)))


def _raw_string_candidates(name: str, prompt: str) -> list[str]:
    key = name.lower()
    found = (
        [v for v in _field_values(name, prompt) if not re.fullmatch(r"-?\d+(?:\.\d+)?", v)] if name else []
    )
    if found:
        return found
    if key in _FREE_TEXT_FIELDS:
        return [prompt.strip()[:200]] if prompt.strip() else []
    if key.endswith(_PATH_SUFFIXES):  # Claude Code's Read(file_path): "Read hello.txt" means hello.txt
        paths = [p.rstrip(".,:;") for p in _PATHISH.findall(prompt)]
        if paths:
            return paths
    quoted = [a or b for a, b in _QUOTED.findall(prompt)]
    if quoted:
        return quoted
    if key in _PLACE_FIELDS or key.endswith(("city", "location", "name")):
        places = [p for p in _PLACES.findall(prompt) if p.lower() not in _STOP]
        if places:
            return places
    return []


def _quote(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class DefaultResponder:
    """Deterministic replies that exercise thinking, tools, structured output and text."""

    max_parallel: int = 4

    def __call__(self, request: OfflineRequest) -> Turn:
        server = plan_server_turn(request.body)
        if server is not None:
            return Turn(
                text=None,
                cited=server.answer,
                stop_reason=server.stop_reason,
                server_blocks=server.blocks,
                server_tool_use=server.usage,
            )
        prompt = request.last_user_text
        results = request.tool_results
        choice = str(request.tool_choice.get("type", "auto"))
        if results and choice not in ("any", "tool"):
            return self._answer_results(request, results)
        calls = self._choose_calls(request, prompt)
        if calls:
            names = ", ".join(dict.fromkeys(c.name for c in calls))
            thinking = (
                f"The user asks: “{_quote(prompt, 120)}”. Plan: call {names} with arguments taken from the "
                "request, then answer from the results."
            )
            # Forced tool use (``any`` / ``tool``): the service writes no text before the tool_use.
            text = None if choice in ("any", "tool") else f"(offline) I'll use {names} for this."
            return Turn(thinking=thinking, text=text, tool_calls=calls)
        schema = request.output_schema
        if schema is not None:
            value = value_for_schema(schema, prompt)
            return Turn(
                thinking=f"The user asks: “{_quote(prompt, 120)}”. Plan: fill the requested JSON schema.",
                text=json.dumps(value, ensure_ascii=False),
            )
        cited = cited_answer(request.body, prompt)
        if cited is not None:
            plan = "Plan: answer from the documents' text and cite where each statement comes from."
            return Turn(thinking=f"The user asks: “{_quote(prompt, 120)}”. {plan}", cited=cited)
        return _plain_reply(request, prompt)

    def _answer_results(self, request: OfflineRequest, results: list[tuple[str, str, str, bool]]) -> Turn:
        fresh = search_results(request.messages[-1:]) and request.output_schema is None
        cited = cited_answer(request.body, request.last_user_text) if fresh else None
        if cited is not None:
            # Search results a tool returned are cited as the service cites them.
            return Turn(thinking="Plan: answer from the sources and cite them.", cited=cited)
        parts = []
        for _tid, name, text, is_error in results:
            verb = "failed with" if is_error else "returned"
            parts.append(f"{name} {verb} “{_quote(text)}”")
        summary = "; ".join(parts)
        thinking = f"The tools answered: {summary}. Plan: report these results back to the user."
        schema = request.output_schema
        if schema is not None:
            return Turn(
                thinking=thinking, text=json.dumps(value_for_schema(schema, summary), ensure_ascii=False)
            )
        return Turn(thinking=thinking, text=f"(offline) Here is what the tools reported: {summary}.")

    def _choose_calls(self, request: OfflineRequest, prompt: str) -> list[ToolCall]:
        tools = [t for t in request.tools if t.get("type") in (None, "custom") and "input_schema" in t]
        choice = request.tool_choice
        kind = str(choice.get("type", "auto"))
        if not tools or kind == "none":
            return []
        if kind == "tool":
            chosen = [t for t in tools if t.get("name") == choice.get("name")][:1]
        else:
            chosen = [t for t in tools if _asks_for(t, prompt)]
            if not chosen and kind == "any":
                chosen = tools[:1]
        calls: list[ToolCall] = []
        for tool in chosen:
            schema = tool.get("input_schema") or {"type": "object"}
            fan = self._fan_out(schema, prompt) if request.parallel_allowed else 1
            for idx in range(fan):
                calls.append(ToolCall(str(tool["name"]), value_for_schema(schema, prompt, index=idx)))
        if not request.parallel_allowed:
            calls = calls[:1]
        return calls[: self.max_parallel]

    @staticmethod
    def _fan_out(schema: Mapping[str, Any], prompt: str) -> int:
        """How many calls the prompt asks for: one per value of the first required string field."""
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            sub = props.get(key)
            if isinstance(sub, Mapping) and sub.get("type") == "string" and "enum" not in sub:
                return max(1, len(dict.fromkeys(_string_candidates(key, prompt))))
        return 1


def _plain_reply(request: OfflineRequest, prompt: str) -> Turn:
    """JSON when the prompt asks for JSON, a fenced code block when it asks for code, else a placeholder
    short enough for ``max_tokens`` (a small budget is not a failure: issue 28 item 12)."""
    system = _system_text(request.body.get("system"))
    budget = int(request.body.get("max_tokens") or 0)
    # An agent's long system prompt mentions JSON and code fences in passing: only an instruction counts.
    schema = _embedded_schema(system) if re.search(r"\bjson\b", system, re.IGNORECASE) else None
    if schema is not None or re.search(r"\bjson\b", prompt, re.IGNORECASE):
        schema = schema or _embedded_schema(prompt)
        value = value_for_schema(schema, prompt) if schema is not None else {"answer": _quote(prompt, 80)}
        return Turn(thinking="Plan: answer with the JSON the request asks for.", text=json.dumps(value))
    if "```" in prompt or re.search(r"\bcode block\b", prompt, re.I) or _CODE_ASKED.search(system):
        asked = f"{system}\n{prompt}"
        return Turn(
            thinking="Plan: answer with one fenced code block.", text=_code_reply(asked, prompt, budget)
        )
    thinking = (
        f"The user asks: “{_quote(prompt, 120)}”. Plan: no model is available offline, so restate the "
        "question and say clearly that this reply is simulated."
    )
    if request.thinking_enabled:
        budget -= count_text(thinking)
    return Turn(thinking=thinking, text=_fitted(prompt, budget))


_CODE_ASKED = re.compile(r"\b(?:answer|reply|respond)\b[^.\n]*\bcode block", re.IGNORECASE)


def _fitted(prompt: str, budget: int) -> str:
    """The placeholder reply, shortened until it fits ``budget`` output tokens."""
    tail = (
        " This is a deterministic reply from claudekit's offline backend; no model was called, so treat it "
        "as a placeholder that shows the shape of a real answer."
    )
    for limit, end in ((160, tail), (160, ""), (60, ""), (20, "")):
        text = f"(offline) You asked: “{_quote(prompt, limit)}”.{end}"
        if count_text(text) <= budget:
            return text
    return "(offline) OK."


def _code_reply(asked: str, prompt: str, budget: int) -> str:
    lang = m.group(1) if (m := re.search(r"```(\w+)", asked)) else "python"
    comment = "#" if lang in ("python", "py", "bash", "sh", "r", "ruby") else "//"
    lines = [f"{comment} offline: {_quote(prompt, 100 if budget >= 80 else 30)}"]
    if lang in ("python", "py"):
        lines.append('print("offline")')
    body = "\n".join(lines)
    return f"(offline) A placeholder for the code you asked for.\n\n```{lang}\n{body}\n```"


def _embedded_schema(text: str) -> Mapping[str, Any] | None:
    """The first JSON Schema object written out in ``text`` (pydantic-ai's PromptedOutput, instructor's JSON
    mode), if any."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _end = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(value, dict) and ("properties" in value or value.get("type") == "object"):
            return value
    return None

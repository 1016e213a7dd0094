"""Tools: functions the model may call, and running the calls of one step of the tool loop.

``@claudekit.tool`` turns a sync or async function into a :class:`Tool`. The JSON schema and the
descriptions come from the SDK's own function-tool machinery (``anthropic.lib.tools``: pydantic's
arguments schema plus the docstring's parameter docs); arguments are validated with pydantic before the
call, so a bad call goes back to the model as an ``is_error`` result instead of raising.

:meth:`ToolSet.run` is what ``Chat`` calls after a ``tool_use`` stop: validate, ask for approval where
needed (see :mod:`claudekit._tooling._approval`), run the approved calls concurrently (sync tools in a thread)
and yield their :class:`~claudekit.ToolResult` events in call order.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import typing
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import pydantic
import pydantic_core
from anthropic.lib.tools import BetaAsyncFunctionTool, BetaFunctionTool, ToolError
from pydantic.experimental.arguments_schema import generate_arguments_schema

from .._base._errors import ConfigError
from .._base._events import ApprovalRequest, ToolResult
from .._base._reply import ToolCall
from .._request._content import Blockish, Image, sniff_image
from ._approval import (
    Decision,
    PendingCall,
    PolicyLike,
    approve,
    as_policy,
    resolve_policy,
)

__all__ = ["DEFAULT_MAX_OUTPUT", "RunState", "Tool", "ToolError", "ToolSet", "as_tool", "tool"]

log = logging.getLogger("claudekit.tools")

DEFAULT_MAX_OUTPUT = 20_000
"""Characters of tool output sent to the model before it is truncated (with a note saying so)."""

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_BLOCK_TYPES = {"text", "image", "document", "search_result"}
F = TypeVar("F", bound=Callable[..., Any])


class ArgumentsError(ValueError):
    """Arguments that do not match a tool's signature; the message is what the model is told."""


@dataclass
class Tool:
    """A tool the model may call. Calling the Tool calls the function, so decorated functions stay usable.

    ``approve`` — the call needs approval before it runs (default False: read-only tools run at once).
    ``strict`` — sent to the API (schema-conforming tool input). ``max_output`` — characters of output
    sent back before truncation (None: the toolset's default).
    """

    name: str
    description: str
    input_schema: dict[str, Any]
    fn: Callable[..., Any] | None = None
    approve: bool = False
    strict: bool | None = None
    max_output: int | None = None
    param: dict[str, Any] | None = field(default=None, repr=False)
    #: The MCP server the tool comes from (``ck.mcp`` servers set it; cards show it).
    mcp_server: str | None = None
    _validator: pydantic_core.SchemaValidator | None = field(default=None, repr=False, compare=False)

    def to_param(self) -> dict[str, Any]:
        if self.param is not None:
            return dict(self.param)
        out: dict[str, Any] = {"name": self.name, "input_schema": self.input_schema}
        if self.description:
            out["description"] = self.description
        if self.strict is not None:
            out["strict"] = self.strict
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            raise TypeError(f"tool {self.name!r} has no function (it is a tool definition only)")
        return self.fn(*args, **kwargs)

    def with_options(self, **options: Any) -> Tool:
        """A copy with other options, e.g. ``search.with_options(approve=True)`` for one chat."""
        bad = set(options) - {"name", "description", "approve", "strict", "max_output"}
        if bad:
            raise ConfigError(f"unknown tool option(s): {', '.join(sorted(bad))}")
        if "name" in options:
            _check_name(options["name"])
        return Tool(**{**self.__dict__, **options})

    # -- arguments ---------------------------------------------------------------------------------

    def validate(self, arguments: Any, *, strict: bool = False) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's ``(args, kwargs)`` after pydantic validation; raises ArgumentsError.

        ``strict``: no coercion (``"yes"`` is not a boolean, ``"3"`` not an integer), read as JSON (a date
        or an enum may still be its JSON string). Arguments a person typed are checked this way: what
        they typed, exactly, is what runs.
        """
        if not isinstance(arguments, dict):
            raise ArgumentsError(
                f"Invalid arguments for {self.name}: expected a JSON object, got {arguments!r}"
            )
        if self._validator is None:
            return (), dict(arguments)
        try:
            if strict:
                self._validator.validate_json(json.dumps(arguments, default=str), strict=True)
            out = self._validator.validate_python(pydantic_core.ArgsKwargs((), dict(arguments)))
        except pydantic.ValidationError as exc:
            raise ArgumentsError(_validation_message(self.name, exc)) from None
        args, kwargs = out
        return tuple(args), dict(kwargs or {})

    def check_arguments(self, arguments: Any, *, strict: bool = False) -> str | None:
        """Why ``arguments`` are invalid for this tool, or None when they are valid."""
        try:
            self.validate(arguments, strict=strict)
        except ArgumentsError as exc:
            return str(exc)
        return None

    async def invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call the function with validated arguments: async functions awaited, sync ones in a thread."""
        fn = self.fn
        if fn is None:
            raise TypeError(f"tool {self.name!r} has no function")
        if _is_async(fn):
            return await fn(*args, **kwargs)
        out = await asyncio.to_thread(fn, *args, **kwargs)
        if inspect.isawaitable(out):
            out = await out
        return out

    async def call(self, arguments: dict[str, Any]) -> Any:
        """Validate ``arguments`` and call the function (no approval: that is the tool loop's business)."""
        args, kwargs = self.validate(arguments)
        return await self.invoke(args, kwargs)


# -- building tools --------------------------------------------------------------------------------


@overload
def tool(fn: F, /) -> Tool: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approve: bool = False,
    strict: bool | None = None,
    max_output: int | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


@overload
def tool(
    fn: Callable[..., Any] | Tool,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approve: bool = False,
    strict: bool | None = None,
    max_output: int | None = None,
) -> Tool: ...


def tool(
    fn: Callable[..., Any] | Tool | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approve: bool = False,
    strict: bool | None = None,
    max_output: int | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool from a function: ``@tool``, ``@tool(approve=True)``, or ``tool(fn, name=...)``.

    Sync functions run in a thread, which an interrupt cannot stop: the model is then told the call
    may have completed. Write tools with side effects as ``async def`` so that an interrupt cancels them.

    The schema comes from the type hints (str, int, float, bool, lists, dicts, Literal, Enum, Optional,
    defaults, pydantic models…) and parameter descriptions from the docstring (Google, NumPy or reST
    style). A hint that cannot become JSON schema raises ConfigError here, naming the parameter.
    """

    def make(f: Callable[..., Any] | Tool) -> Tool:
        if isinstance(f, Tool):
            opts: dict[str, Any] = {"approve": approve}
            for key, value in (("name", name), ("description", description), ("strict", strict)):
                if value is not None:
                    opts[key] = value
            if max_output is not None:
                opts["max_output"] = max_output
            return f.with_options(**opts)
        return _from_function(f, name, description, approve, strict, max_output)

    if fn is None:
        return make
    return make(fn)


def as_tool(obj: Any) -> Tool:
    """A Tool from a Tool, a function, or a tool definition dict (sent as is; never run by claudekit)."""
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("name"), str):
        schema = obj.get("input_schema", {"type": "object"})
        return Tool(obj["name"], obj.get("description", ""), schema, param=dict(obj))
    if callable(obj):
        return _from_function(obj, None, None, False, None, None)
    raise ConfigError(
        f"cannot use {obj!r} as a tool", hint="pass a function, a claudekit.tool or a tool dict"
    )


def expand_tools(items: list[Any]) -> list[Tool]:
    """Tools from tools, functions, dicts and tool providers (an MCP server: ``__claudekit_tools__()``).

    A provider's tool whose name another tool also has is renamed ``<provider name>_<tool name>``.
    """
    groups: list[tuple[str | None, list[Tool]]] = []
    for x in items:
        provide = getattr(x, "__claudekit_tools__", None)
        if callable(provide) and not isinstance(x, Tool):
            groups.append((str(getattr(x, "name", "server")), list(provide())))
        else:
            groups.append((None, [as_tool(x)]))
    counts: dict[str, int] = {}
    for _, group in groups:
        for t in group:
            counts[t.name] = counts.get(t.name, 0) + 1
    out: list[Tool] = []
    for prefix, group in groups:
        for t in group:
            if prefix is not None and counts[t.name] > 1:
                t = t.with_options(name=re.sub(r"[^a-zA-Z0-9_-]", "_", f"{prefix}_{t.name}")[:64])
            out.append(t)
    return out


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"invalid tool name {name!r}",
            hint="tool names are 1–64 characters: letters, digits, '_' and '-'",
        )


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _from_function(
    fn: Callable[..., Any],
    name: str | None,
    description: str | None,
    approve_: bool,
    strict: bool | None,
    max_output: int | None,
) -> Tool:
    label = name or getattr(fn, "__name__", None) or type(fn).__name__
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise ConfigError(
            f"tool {label!r} is a generator", hint="return the whole result instead of yielding it"
        )
    if not callable(fn):
        raise ConfigError(f"cannot use {fn!r} as a tool", hint="pass a function")
    _check_name(label)
    if max_output is not None and max_output < 100:
        raise ConfigError("max_output must be at least 100 characters")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot read the signature of tool {label!r}: {exc}") from None
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            kind = {
                p.VAR_POSITIONAL: "*args",
                p.VAR_KEYWORD: "**kwargs",
                p.POSITIONAL_ONLY: "positional-only",
            }
            raise ConfigError(
                f"tool {label!r}: parameter {p.name!r} is {kind[p.kind]}",
                hint="tool arguments arrive by name: use ordinary named parameters",
            )
    maker: Any = BetaAsyncFunctionTool if _is_async(fn) else BetaFunctionTool
    try:
        sdk_tool = maker(fn, name=label, description=description, strict=strict)
        schema = dict(sdk_tool.input_schema)
        validator = pydantic_core.SchemaValidator(generate_arguments_schema(fn))
    except ConfigError:
        raise
    except Exception as exc:  # pydantic schema errors, unresolved forward references, …
        raise _schema_error(fn, label, sig, exc) from None
    return Tool(
        name=label,
        description=sdk_tool.description or "",
        input_schema=schema,
        fn=fn,
        approve=approve_,
        strict=strict,
        max_output=max_output,
        _validator=validator,
    )


def _schema_error(fn: Callable[..., Any], label: str, sig: inspect.Signature, exc: Exception) -> ConfigError:
    """A ConfigError naming the parameter whose annotation cannot become a JSON schema."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = (
        "annotate parameters with JSON-friendly types (str, int, float, bool, list, dict, Literal, Enum, "
        "Optional, pydantic models) defined at module level"
    )
    try:
        hints: dict[str, Any] | None = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable (forward) reference: find the parameter by its own annotation
        hints = None
    globalns = getattr(fn, "__globals__", {})
    for p in sig.parameters.values():
        ann = p.annotation
        try:
            if hints is None:
                if isinstance(ann, str):
                    eval(ann, dict(globalns))  # the function's own annotation text
                continue
            if p.name in hints:
                pydantic.TypeAdapter(hints[p.name]).json_schema()
        except Exception as sub:
            shown = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
            why = str(sub).strip().splitlines()[0] if str(sub).strip() else type(sub).__name__
            return ConfigError(
                f"tool {label!r}: parameter {p.name!r} has an unsupported annotation {shown!r} ({why})",
                hint=hint,
            )
    return ConfigError(f"tool {label!r}: cannot build its input schema ({reason})", hint=hint)


def _validation_message(name: str, exc: pydantic.ValidationError) -> str:
    lines = [f"Invalid arguments for {name}:"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing_argument":
            msg = "Missing required argument"
        lines.append(f"- {loc}: {msg}")
    return "\n".join(lines)


# -- results -----------------------------------------------------------------------------------------


def _is_block(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in _BLOCK_TYPES and len(value) > 1


def _image_block(data: bytes) -> dict[str, Any] | None:
    return Image.from_bytes(data).to_block() if sniff_image(data) else None


def to_content(value: Any) -> str | list[dict[str, Any]]:
    """A tool's return value as tool_result content: text, JSON text, or content blocks (images…)."""
    if value is None:
        return "(the tool returned nothing)"
    if isinstance(value, str):
        return value
    if isinstance(value, (Image, Blockish)):
        return [value.to_block()]  # an Image, SearchResult, Document: the block it makes
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        img = _image_block(data)
        if img is not None:
            return [img]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return f"(binary output: {len(data):,} bytes that are not text or an image)"
    if _is_block(value):
        return [dict(value)]
    if (
        isinstance(value, (list, tuple))
        and value
        and any(
            isinstance(v, (Image, Blockish)) or _is_block(v) or (isinstance(v, bytes) and sniff_image(v))
            for v in value
        )
    ):
        blocks: list[dict[str, Any]] = []
        for v in value:
            if isinstance(v, str):
                blocks.append({"type": "text", "text": v})
            elif isinstance(v, (Image, Blockish)):
                blocks.append(v.to_block())
            elif isinstance(v, bytes) and sniff_image(v):
                blocks.append(Image.from_bytes(v).to_block())
            elif _is_block(v):
                blocks.append(dict(v))
            else:
                blocks.append({"type": "text", "text": _json(v)})
        return blocks
    return _json(value)


def _json(value: Any) -> str:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return pydantic_core.to_json(value, serialize_unknown=True).decode("utf-8")


def truncate(content: str | list[dict[str, Any]], limit: int) -> str | list[dict[str, Any]]:
    """Cut text to ``limit`` characters in all, with a note to the model saying how much it did not see."""
    if isinstance(content, str):
        if len(content) <= limit:
            return content
        return content[:limit] + _truncation_note(limit, len(content))
    total = sum(len(b.get("text", "")) for b in content if b.get("type") == "text")
    if total <= limit:
        return content
    budget = limit
    out: list[dict[str, Any]] = []
    for b in content:
        if b.get("type") == "text":
            text = b.get("text", "")
            if budget <= 0:
                continue
            b = {**b, "text": text[:budget]}
            budget -= len(text)
        out.append(b)
    out.append({"type": "text", "text": _truncation_note(limit, total).strip()})
    return out


def _truncation_note(limit: int, total: int) -> str:
    return (
        f"\n\n[claudekit: output truncated: showing the first {limit:,} of {total:,} characters. "
        "Ask for a narrower result if you need the rest.]"
    )


def _with_note(content: str | list[dict[str, Any]], note: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return f"{note}\n\n{content}"
    return [{"type": "text", "text": note}, *content]


# -- the tool set of a chat ------------------------------------------------------------------------------


@dataclass
class RunState:
    """What the tool calls of one step are doing, for whoever has to answer them after an interrupt."""

    started: dict[str, bool] = field(default_factory=dict)  # call id -> runs in a thread (a sync tool)
    runner: asyncio.Task[Any] | None = None  # the task running the turn

    def interrupted(self) -> bool:
        """The turn was asked to stop: its task is being cancelled, though the news has not landed yet
        (a tool task scheduled in the same loop iteration as the cancel must not start)."""
        cancelling = getattr(self.runner, "cancelling", None)  # Python >= 3.11
        return bool(cancelling()) if cancelling is not None else False

    def unfinished_text(self, call_id: str) -> str:
        """The result the model gets for a call the interrupt left without one."""
        if call_id not in self.started:
            return "Not run: the turn was interrupted before this tool call ran."
        if self.started[call_id]:
            return (
                "Interrupted while this tool was running (in a thread, which cannot be stopped): "
                "it may have completed; its result is unknown."
            )
        return "Interrupted while this tool was running: it was cancelled and may have partly completed."


@dataclass
class _Plan:
    call: ToolCall
    tool: Tool | None  # None: the model named a tool this chat does not have
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    result: ToolResult | None = None
    pending: PendingCall | None = None


class ToolSet:
    """The tools of one chat, its approval policy, and what this chat always allows."""

    def __init__(
        self,
        tools: list[Any] | None = None,
        approval: PolicyLike | None = None,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        built = expand_tools(tools or [])
        self.tools: dict[str, Tool] = {}
        for t in built:
            if t.name in self.tools:
                raise ConfigError(f"two tools are named {t.name!r}", hint="pass name=... to tell them apart")
            self.tools[t.name] = t
        if approval is not None:
            as_policy(approval)  # reject a bad policy now, before anything is sent
        self.approval = approval
        self.max_output = max_output
        self.always_allowed: set[str] = set()
        self.required: set[str] = set()

    def replace_tools(self, tools: list[Any]) -> None:
        """Swap the tools, keeping the approval policy and the per-chat allow/require choices."""
        fresh = ToolSet(tools, self.approval, max_output=self.max_output)
        self.tools = fresh.tools
        self.always_allowed &= set(self.tools)
        self.required &= set(self.tools)

    def params(self) -> list[dict[str, Any]]:
        return [t.to_param() for t in self.tools.values()]

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def handles(self, call: ToolCall) -> bool:
        """Whether claudekit answers the call: a tool it can run, or a name no tool has (an error result,
        as the SDK's tool runner gives, so a made-up name cannot end the loop waiting for the caller)."""
        t = self.tools.get(call.name)
        return t is None or t.fn is not None

    def require_approval(self, *names: str) -> None:
        """In this chat, these tools need approval even if they were made with ``approve=False``."""
        self._known(names)
        self.required.update(names)
        self.always_allowed.difference_update(names)

    def allow(self, *names: str) -> None:
        """In this chat, these tools run without asking (what "Always allow this tool" does)."""
        self._known(names)
        self.always_allowed.update(names)

    def _known(self, names: tuple[str, ...]) -> None:
        unknown = [n for n in names if n not in self.tools]
        if unknown:
            raise ConfigError(
                f"no tool named {unknown[0]!r}", hint=f"tools: {', '.join(self.tools) or 'none'}"
            )

    def needs_approval(self, name: str) -> bool:
        t = self.tools[name]
        return (t.approve or name in self.required) and name not in self.always_allowed

    async def run(
        self, calls: list[ToolCall], state: RunState | None = None
    ) -> AsyncGenerator[ToolResult | ApprovalRequest, None]:
        """Decide, run and answer the calls of one step; yields ToolResults in call order.

        An :class:`~claudekit.ApprovalRequest` comes first when a person may decide (the widget policy).
        Cancellation (interrupt, closing the stream) denies whatever was still undecided; ``state``
        records which calls had started running.
        """
        state = state if state is not None else RunState()
        state.runner = asyncio.current_task()
        policy = resolve_policy(self.approval)
        loop = asyncio.get_running_loop()
        plans = [self._plan(call, loop) for call in calls]
        pending = tuple(p.pending for p in plans if p.pending is not None)
        for pc in pending:
            pc.group = pending
        tasks: list[asyncio.Task[ToolResult]] = []
        try:
            if pending:
                if policy.interactive:
                    yield ApprovalRequest(pending)
                try:
                    await policy.prepare(pending)
                except Exception:
                    log.exception("approval policy %r failed to prepare", policy)
            tasks = [asyncio.ensure_future(self._one(plan, policy, state)) for plan in plans]
            for task in tasks:
                yield await task
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
                    task.add_done_callback(_consume)
            for pc in pending:
                if not pc.done:
                    pc._cancel("the turn was interrupted before a decision")

    def _plan(self, call: ToolCall, loop: asyncio.AbstractEventLoop) -> _Plan:
        t = self.tools.get(call.name)
        plan = _Plan(call, t)
        if t is None:
            known = ", ".join(self.tools) or "none"
            text = f"There is no tool named \"{call.name}\"; the tools are: {known}."
            plan.result = ToolResult(call.id, call.name, text, True, "invalid")
            return plan
        if call.error:
            plan.result = ToolResult(
                call.id, call.name, f"The tool call was not run: {call.error}", True, "invalid"
            )
            return plan
        try:
            plan.args, plan.kwargs = t.validate(call.input)
        except ArgumentsError as exc:
            plan.result = ToolResult(call.id, call.name, str(exc), True, "invalid")
            return plan
        if self.needs_approval(call.name):
            plan.pending = PendingCall(call, t, loop)
        return plan

    async def _one(self, plan: _Plan, policy: Any, state: RunState) -> ToolResult:
        if plan.result is not None or plan.tool is None:
            assert plan.result is not None
            return plan.result
        call, t = plan.call, plan.tool
        args, kwargs = plan.args, plan.kwargs
        note: str | None = None
        decision_label = "auto"
        pc = plan.pending
        if pc is not None:
            if pc.done:
                decision = pc.decision
            else:
                try:
                    decision = await policy.decide(pc)
                except Exception as exc:
                    # One line for the user; the traceback only at debug level. Failing closed: deny.
                    log.warning(
                        "claudekit: approval policy %r failed (%s: %s); the call to %s was denied",
                        policy,
                        type(exc).__name__,
                        exc,
                        call.name,
                    )
                    log.debug("approval policy traceback", exc_info=True)
                    decision = Decision(False, reason=f"the approval policy failed ({exc})", by="error")
                if not pc.decide(decision):
                    decision = pc.decision
            assert decision is not None
            if not decision.approved:
                return ToolResult(call.id, call.name, _denied_text(decision), True, "denied")
            decision_label = "approved"
            if decision.always:
                self.always_allowed.add(call.name)
                for sibling in pc.group:
                    if sibling.name == call.name and not sibling.done:
                        sibling.decide(approve(by="always allow"))
            if decision.arguments is not None and decision.arguments != call.input:
                try:
                    args, kwargs = t.validate(decision.arguments, strict=True)
                except ArgumentsError as exc:
                    text = f"The user's edited arguments are invalid, so the tool did not run.\n{exc}"
                    return ToolResult(call.id, call.name, text, True, "invalid")
                note = (
                    "Note: the user edited the arguments before approving; the tool ran with "
                    f"{json.dumps(decision.arguments, ensure_ascii=False, default=str)}."
                )
        if state.interrupted():
            return ToolResult(call.id, call.name, state.unfinished_text(call.id), True, "interrupted")
        state.started[call.id] = t.fn is not None and not _is_async(t.fn)
        return await self._execute(call, t, args, kwargs, note, decision_label)

    async def _execute(
        self,
        call: ToolCall,
        t: Tool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        note: str | None,
        decision: str,
    ) -> ToolResult:
        limit = t.max_output or self.max_output
        try:
            out = await t.invoke(args, kwargs)
        except ToolError as exc:
            content: str | list[dict[str, Any]] = truncate(to_content(exc.content), limit)
            return ToolResult(call.id, call.name, content, True, decision)
        except Exception as exc:
            log.error("tool %s raised %s", call.name, type(exc).__name__, exc_info=exc)
            text = f"Error: {type(exc).__name__}: {exc}" if str(exc) else f"Error: {type(exc).__name__}"
            return ToolResult(call.id, call.name, truncate(text, limit), True, decision)
        try:
            content = truncate(to_content(out), limit)
        except Exception as exc:
            log.error("tool %s returned a value that cannot be sent", call.name, exc_info=exc)
            return ToolResult(
                call.id, call.name, f"Error: the tool's result cannot be sent ({exc})", True, decision
            )
        if note is not None:
            content = _with_note(content, note)
        return ToolResult(call.id, call.name, content, False, decision)


def _denied_text(decision: Decision) -> str:
    if decision.by == "user":
        text = "The user denied this tool call; it was not run."
    else:
        text = f"This tool call needs the user's approval and was denied ({decision.by}); it was not run."
    if decision.reason:
        text += f" Reason: {decision.reason}"
    return text


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()

"""One user turn: the steps of its tool loop, and the one place that finishes it.

A turn takes the prompt (answering tool calls nobody answered), then per step: builds the request,
sends it, streams the SDK's events into an :class:`~claudekit._runner._stream.Accumulator`, finishes the step
(history first, then usage: a log that cannot be written never costs the answer) and runs the tools
the step asked for. However the turn ends — done, an error, an interrupt, the consumer closing or
dropping the stream — :meth:`Turn.fail` / :meth:`Turn.close` run exactly once, synchronously, and
leave the history valid; nothing is left for the garbage collector to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import anthropic
import httpx2

from .. import _seams
from .._base._errors import (
    INTERRUPTS,
    ClaudekitError,
    ConfigError,
    IncompleteStreamError,
    from_sdk_error,
    is_transport_error,
)
from .._base._events import Event, ToolCallReady, ToolCallStart, ToolResult, Usage
from .._base._notes import say_once
from .._base._reply import Reply, Step, ToolCall
from .._request import _hygiene
from .._request._settings import Settings, build_request, parse_output
from .._tooling._tools import RunState
from . import _attempts
from ._stream import Accumulator
from ._threads import ThreadCursor, resend_in_full

if TYPE_CHECKING:
    import anthropic

    from .._request._history import History
    from .._seams import Renderer
    from .._tooling._tools import ToolSet
    from ..usage._budget import Reservation

__all__ = ["Turn", "TurnContext", "TurnHost", "next_request"]


@dataclasses.dataclass
class TurnContext:
    """What a turn needs of its chat, handed over when the turn starts: the turn never sees the Chat."""

    history: History
    toolset: ToolSet
    client: anthropic.AsyncAnthropic
    usage: Any  # the chat's UsageLog, or None
    name: str
    max_steps: int
    budget_usd: float | None
    tracker: Any  # the client-side cache-miss tracker, or None
    last_message_id: str | None  # of the chat's last answer (sent as previous_message_id)
    threads: ThreadCursor = dataclasses.field(default_factory=ThreadCursor)  # every answer noted
    threads_on: bool = False  # requests go through the thread (send only what is new)
    next_turn: Callable[[], int] = lambda: 0  # this turn's number (the chat counts its turns)
    keep_message_id: Callable[[str | None], None] = lambda _id: None  # the chat remembers it
    max_pauses: int = 5  # pause_turn continuations per turn before the turn stops (with a note)
    # Rewrites the prompt's blocks before the turn adds them (large documents go by Files API id).
    prepare: Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]] | None = None

    def set_last_message_id(self, message_id: str | None) -> None:
        self.last_message_id = message_id  # the next step of this turn sends it
        self.keep_message_id(message_id)  # and the chat's next turn


class TurnHost(Protocol):
    """The reply stream that runs the turn: it claims the chat for it and shows the reply."""

    def _begin(self) -> Renderer | None: ...

    def _closed(self, error: BaseException | None) -> None: ...


log = logging.getLogger("claudekit")


@dataclasses.dataclass
class _Step:
    """One API call of the turn, from the request it sends to the usage record it leaves."""

    index: int
    body: dict[str, Any]
    client_reason: str | None
    acc: Accumulator
    started: float = 0.0
    started_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(timezone.utc))
    raw: Any = None
    request_id: str | None = None
    attempts: list[_attempts.Attempt] = dataclasses.field(default_factory=list)
    done: bool = False


@dataclasses.dataclass
class _ToolRun:
    """The client tool calls of one step while they run."""

    calls: list[ToolCall]
    state: RunState = dataclasses.field(default_factory=RunState)
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


class Turn:
    """The runner of one prompt. Iterate :meth:`events`; it finishes the turn however iteration ends."""

    def __init__(
        self,
        context: Callable[[], TurnContext],
        prompt: list[dict[str, Any]] | None,
        settings: Settings,
        reply: Reply,
        host: TurnHost,
    ) -> None:
        self._context = context  # taken when the turn starts, once it holds the chat
        self.ctx: TurnContext | None = None
        self.prompt = prompt
        self.settings = settings
        self.reply = reply
        self._host = host
        self.renderer: Renderer | None = None
        self.task: asyncio.Task[Any] | None = None  # what runs the turn (a Stop button cancels it)
        self.number = 0
        self.started = False  # the generator began: something may need finishing
        self.closed = False
        self.step: _Step | None = None  # the API call in flight, until it is finished
        self.tools: _ToolRun | None = None  # tool calls running, until their results are in the history
        self._mark: tuple[int, int] | None = None  # the history before the prompt
        self._previous_id: str | None = None
        self._raw: Any = None  # the last HTTP response, closed on the way out
        self._awake: Callable[[], None] | None = None  # releases the loop waker (see _seams)
        self._reservation: Reservation | None = None  # the budget held for the call in flight
        self._pauses = 0  # pause_turn answers continued so far

    @property
    def _chat(self) -> TurnContext:
        assert self.ctx is not None, "the turn has not started"
        return self.ctx

    # -- the turn ---------------------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[Event, None]:
        if self.closed:
            return
        self.renderer = self._host._begin()  # BusyError here: this turn never started, nothing to undo
        self.started = True
        try:
            self.ctx = self._context()
            if self.prompt is not None and self.ctx.prepare is not None:
                self.prompt = await self.ctx.prepare(self.prompt)
            self._begin()
            renderer = self.renderer
            for index in range(self._chat.max_steps):
                body = self._request()
                # Refused: nothing sent, nothing noted. Allowed: its worst case is held until it is logged.
                self._reservation = await _within_budget(self._chat, body)
                step = self._new_step(index, body)
                await self._send(step)
                feed = step.acc.feed
                try:
                    async for sdk_event in step.raw:  # the hot loop: one frame, no per-event calls of ours
                        for ev in feed(sdk_event):
                            if ev.__class__ is ToolCallReady or ev.__class__ is ToolCallStart:
                                ev = self._tool_event(ev, index)  # type: ignore[arg-type]
                            if renderer is not None:
                                renderer.event(ev)
                            yield ev
                except (httpx2.TransportError, anthropic.APIConnectionError):
                    if not step.acc.stopped:
                        raise
                    step.acc.warnings.append("the connection dropped after message_stop")
                for ev in step.acc.end_events(step.started, step.request_id):
                    if ev.__class__ is ToolCallReady:
                        ev = self._tool_event(ev, step.index)  # type: ignore[arg-type]
                    yield self._show(ev)
                calls = self._end_step(step)
                if calls is None:
                    break
                if calls:
                    async with contextlib.aclosing(self._run_tools(calls)) as tool_events:
                        async for tev in tool_events:
                            yield self._show(tev)
                    if self._caller_answers(index):
                        break  # definition-only tools: their results are the caller's to send
            else:
                self._max_steps()
        except BaseException as exc:
            err = self.fail(exc)
            await self._release()
            if err is not exc:
                raise err from exc
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
                # An interrupt is not a failure of the SDK or httpx: their ~60 frames would only be a
                # wall of traceback under the partial answer (and take IPython seconds to format).
                raise exc.with_traceback(None)  # noqa: B904
            raise
        self.close(None)

    def _show(self, ev: Event) -> Event:
        if self.renderer is not None:
            self.renderer.event(ev)
        return ev

    def _begin(self) -> None:
        chat = self._chat
        self.task = asyncio.current_task()
        self.number = chat.next_turn()
        self._previous_id = chat.last_message_id
        self._answer_dangling()
        self._mark = chat.history.snapshot_len()
        if self.prompt is not None:
            chat.history.add_user(self.prompt)
        elif not chat.history.messages:
            raise ConfigError("nothing to send: the conversation is empty", hint="pass a prompt")
        keep_awake = _seams.get_loop_waker()
        if keep_awake is not None and threading.current_thread() is threading.main_thread():
            self._awake = keep_awake()

    def _answer_dangling(self) -> None:
        _answer_dangling(self._chat.history, self.prompt)

    # -- one step -----------------------------------------------------------------------------------------

    def _request(self) -> dict[str, Any]:
        return _build(self._chat, self._chat.history, self.settings)

    def _new_step(self, index: int, body: dict[str, Any]) -> _Step:
        chat = self._chat
        started_at = datetime.now(timezone.utc)
        reason = chat.tracker.observe(body, started_at) if chat.tracker is not None else None
        self.step = _Step(index, body, reason, Accumulator(index), started_at=started_at)
        return self.step

    async def _send(self, step: _Step) -> None:
        step.started = time.perf_counter()
        cursor = self._chat.threads if self._chat.threads_on else None
        create = self._chat.client.messages.create
        with _attempts.watching(step.attempts):
            if cursor is None:
                step.raw = self._raw = await create(**step.body, stream=True)
            else:
                try:
                    step.raw = self._raw = await create(**cursor.shape(step.body), stream=True)
                except anthropic.APIStatusError as exc:
                    if not resend_in_full(exc):
                        raise
                    cursor.forget()  # the service lost the thread: once more, in full, under a new one
                    step.raw = self._raw = await create(**cursor.shape(step.body), stream=True)
        self._log_retried(step, step.raw.response)
        step.request_id = step.raw.response.headers.get("request-id")

    def _end_step(self, step: _Step) -> list[ToolCall] | None:
        """A step that streamed to its end: into the history, then the log. Returns the tool calls to
        run (empty: go on to the next step), or None when the turn is over."""
        if self.closed:  # finished already (the consumer left): nothing more goes into the history
            return None
        if not step.acc.stopped:
            raise IncompleteStreamError("the response stream ended before message_stop")
        message = step.acc.snapshot
        assert message is not None
        refused = message.stop_reason == "refusal"
        self.reply.steps.append(self._step_record(step, "ok"))
        self._chat.history.add_assistant(message.content)
        self._chat.set_last_message_id(message.id)
        self._chat.threads.answered(message.id)
        self._log_step(step, "refusal" if refused else "ok")
        step.done = True
        self.step = None
        if refused:
            self._take_back_refused()
            return None
        if self.settings.output_format is not None and message.stop_reason == "end_turn":
            # The final message's text only: earlier steps of a tool loop may have said things.
            final_text = "".join(b.text for b in message.content if b.type == "text")
            self.reply.parsed = parse_output(self.settings.output_format, final_text)
        if message.stop_reason == "pause_turn":
            # The service paused a long server-tool turn: sending the conversation back (the paused
            # content last, as it is now in the history) lets it continue, up to the chat's limit.
            self._pauses += 1
            if self._pauses <= self._chat.max_pauses:
                return []
            log.warning(
                "claudekit: the service paused this turn %d times (pause_turn); stopped at "
                "Chat(max_pauses=%d): "
                "send again (no prompt: await chat.send()) to let it continue",
                self._pauses,
                self._chat.max_pauses,
            )
            return None
        calls = [c for c in self.reply.tool_calls if c.step == step.index and not c.server]
        runnable = [c for c in calls if self._chat.toolset.handles(c)]
        if message.stop_reason != "tool_use" or not runnable:
            return None
        return runnable

    def _take_back_refused(self) -> None:
        """The service's rule: after a refusal the context must be reset, or refusals continue."""
        assert self._mark is not None
        self._chat.history.restore(self._mark)
        self._chat.set_last_message_id(self._previous_id)
        self._chat.threads.forget()
        details = self.reply.stop_details
        why = getattr(details, "explanation", None) or getattr(details, "category", None)
        log.warning(
            "claudekit: Claude declined this prompt (refusal%s); it was taken out of the conversation, "
            "so rephrase it or ask something else",
            f": {why}" if why else "",
        )

    def _caller_answers(self, step: int) -> bool:
        """Whether the step also called tools claudekit cannot run (definitions only)."""
        toolset = self._chat.toolset
        return any(c.step == step and not c.server and not toolset.handles(c) for c in self.reply.tool_calls)

    def _tool_event(self, ev: ToolCallStart | ToolCallReady, step: int) -> ToolCallStart | ToolCallReady:
        """A call's event named with the MCP server of a ``ck.mcp`` tool (a connector call names its own);
        a ready call is recorded on the reply."""
        if ev.server_name is None and not ev.server:
            tool = self._chat.toolset.tools.get(ev.name)
            if tool is not None and tool.mcp_server is not None:
                ev = dataclasses.replace(ev, server_name=tool.mcp_server)
        if isinstance(ev, ToolCallReady):
            self._record_call(ev, step)
        return ev

    def _record_call(self, ev: ToolCallReady, step: int, error: str | None = None) -> None:
        self.reply.tool_calls.append(
            ToolCall(
                ev.id, ev.name, ev.input, ev.server, ev.error or error, step=step, server_name=ev.server_name
            )
        )

    # -- tools ----------------------------------------------------------------------------------------------

    async def _run_tools(self, calls: list[ToolCall]) -> AsyncGenerator[Event, None]:
        run = self.tools = _ToolRun(calls)
        async with contextlib.aclosing(self._chat.toolset.run(calls, run.state)) as results:
            async for tev in results:
                if isinstance(tev, ToolResult):
                    _apply_result(self.reply, tev)
                    run.results[tev.id] = _result(tev.id, _valid_unicode(tev.content), tev.is_error)
                yield tev
        self._chat.history.add_tool_results([run.results[c.id] for c in calls])
        self.tools = None

    def _answer_unfinished_tools(self) -> None:
        """Every tool_use must get exactly one result, or no later request would be valid."""
        run, self.tools = self.tools, None
        if run is None:
            return
        blocks = [
            run.results.get(c.id) or _result(c.id, run.state.unfinished_text(c.id), True) for c in run.calls
        ]
        self._chat.history.add_tool_results(blocks)

    def _max_steps(self) -> None:
        self.reply.max_steps_reached = True
        logging.getLogger("claudekit.tools").warning(
            "claudekit: stopped after max_steps=%d API calls while the model was still calling tools "
            "(reply.max_steps_reached); send again to continue, or raise Chat(max_steps=...)",
            self._chat.max_steps,
        )

    # -- the end ----------------------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> BaseException:
        """Finish the turn after ``exc`` (synchronous, once); returns the exception to raise.

        Errors of the exchange become claudekit errors; an interrupt or the consumer closing the stream
        stays what it is; anything else is a bug and is raised as itself, traceback and all.
        """
        interrupted = isinstance(exc, INTERRUPTS)
        err: BaseException = exc
        if not interrupted and not isinstance(exc, ClaudekitError) and is_transport_error(exc):
            err = from_sdk_error(exc)
        if self.closed:
            return err
        if interrupted:
            status = "interrupted"
        elif isinstance(err, ClaudekitError):
            status = err.kind
        else:
            status = type(err).__name__
        step = self.step
        if step is not None and not step.done:
            self._abandon_step(step, status, exc, interrupted)
        elif not self.reply.steps and self._mark is not None:
            self._chat.history.restore(self._mark)  # nothing was sent: the prompt comes back out
        self._answer_unfinished_tools()
        if interrupted:
            self.reply.interrupted = True
        elif isinstance(err, ClaudekitError):
            err.reply = self.reply
            self.reply.error = err
        self.close(None if interrupted else err)
        return err

    def _abandon_step(self, step: _Step, status: str, exc: BaseException, interrupted: bool) -> None:
        if step.raw is None:  # the request itself failed, after the SDK's retries
            self._log_retried(step, getattr(exc, "response", None))
        why = "interrupted" if interrupted else "the stream failed"
        for ev in step.acc.finish_open_blocks():
            if isinstance(ev, ToolCallReady):
                self._record_call(ev, step.index, error=why)
        self.reply.steps.append(self._step_record(step, status))
        self._keep_partial(step)
        self._log_step(step, status)
        step.done = True
        self.step = None

    def _keep_partial(self, step: _Step) -> None:
        """After an error or interrupt: keep what arrived in a form the API will accept next turn."""
        msg = step.acc.snapshot
        kept = _hygiene.partial_content(list(msg.content), set(step.acc.open_block_indices())) if msg else []
        if kept:
            self._chat.history.add_assistant(kept)
        elif step.index == 0 and self._mark is not None:
            # Nothing came back: take the prompt out again so that re-sending it does not duplicate it.
            self._chat.history.restore(self._mark)

    def close(self, error: BaseException | None) -> None:
        """The turn is over: stop waking the loop and tell the stream (once)."""
        if self.closed:
            return
        self.closed = True
        self._release_budget()
        if self._awake is not None:
            self._awake()
        self._host._closed(error)

    async def _release(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            # Best effort: the error that brought us here is the one to report.
            with contextlib.suppress(Exception):
                await asyncio.shield(raw.close())

    # -- usage ---------------------------------------------------------------------------------------------

    def _step_record(self, step: _Step, status: str) -> Step:
        acc = step.acc
        latency = time.perf_counter() - step.started if step.started else None
        ttft = None if acc.first_token_at is None else acc.first_token_at - step.started
        usage = acc.usage if acc.snapshot is not None else Usage()
        if status != "ok" and not acc.final_usage:
            usage = dataclasses.replace(usage, output_tokens=None)  # message_start's is a placeholder
        return Step(step.index, acc.snapshot, usage, status, step.request_id, latency, ttft)

    def _log_step(self, step: _Step, status: str) -> None:
        record = self.reply.steps[-1]
        msg = step.acc.snapshot
        usage: Any = None
        if msg is not None and (step.acc.final_usage_missing or not step.acc.final_usage):
            # Record what is known and leave the rest missing (NA), never a stale or zero count:
            # without message_delta's usage, message_start's output count is only a placeholder.
            known = dataclasses.asdict(step.acc.usage).items()
            usage = {
                k: v for k, v in known if v is not None and k.endswith("_tokens") and k != "output_tokens"
            }
        diagnostics = getattr(msg, "diagnostics", None) if msg is not None else None
        self._append_usage(
            msg,
            arrived=_arrived_tokens(msg) if usage is not None and status != "ok" else None,
            usage=usage,
            step=step.index,
            model=(msg.model if msg is not None else None) or self.reply.model,
            request_id=step.request_id,
            status=status,
            latency_s=record.latency_s,
            ttft_s=record.ttft_s,
            started_at=step.started_at,
            cache_miss_reason=getattr(diagnostics, "cache_miss_reason", None),
            client_miss_reason=step.client_reason,
        )
        self._release_budget()  # its cost is in the log now: the worst case need not be held

    def _release_budget(self) -> None:
        held, self._reservation = self._reservation, None
        if held is not None:
            held.release()

    def _log_retried(self, step: _Step, final: Any) -> None:
        """One record per attempt the SDK retried before ``final`` (no tokens: a refused call is not
        billed); the step's timing starts at the attempt that produced ``final``."""
        retried, last = _attempts.split(step.attempts, final)
        if last is not None:
            step.started, step.started_at = last.started, last.started_at
            step.request_id = last.request_id
        for a in retried:
            self._append_usage(
                None,
                step=step.index,
                model=self.reply.model,
                request_id=a.request_id,
                status=a.status,
                latency_s=a.latency_s,
                ttft_s=None,
                started_at=a.started_at,
            )

    def _append_usage(self, message: Any, arrived: int | None = None, **fields: Any) -> None:
        """Best effort: the answer is already in the history, and a log that fails never costs it.

        ``arrived``: for a call that failed or was interrupted without its final usage, the output tokens
        estimated from what arrived, so that its cost counts input, cache and that (never $0)."""
        log_ = self._chat.usage
        if log_ is None:
            return
        try:
            from ..usage import UsageRecord

            record = UsageRecord.from_message(message, chat_id=self._chat.name, turn=self.number, **fields)
            log_.append(_priced_partial(record, arrived) if arrived is not None else record)
        except Exception as exc:
            why = " ".join(str(exc).split())[:200]
            say_once(
                f"the usage log could not be written ({type(exc).__name__}: {why}); "
                "replies go on as usual, but their usage is not recorded there",
                key=f"usage-log-{id(log_)}",
            )


def _arrived_tokens(message: Any) -> int:
    """Output tokens that arrived before a stream broke, estimated at 4 characters a token (rounded up)."""
    chars = 0
    for block in getattr(message, "content", None) or []:
        for name in ("text", "thinking"):
            chars += len(getattr(block, name, None) or "")
        if getattr(block, "type", None) in ("tool_use", "server_tool_use"):
            chars += len(json.dumps(getattr(block, "input", None) or {}))
    return -(-chars // 4)


def _priced_partial(record: Any, arrived: int) -> Any:
    """``record`` with a cost for what is known: its input and cache counts, plus ``arrived`` output
    tokens. ``output_tokens`` stays missing (the service did not say), only the cost counts them."""
    from ..usage import get_prices
    from ..usage._record import costs_for

    if record.cost_usd is not None or record.input_tokens is None:
        return record
    price = get_prices().lookup(record.model)
    cost, no_cache = costs_for(
        price,
        input_tokens=record.input_tokens,
        output_tokens=arrived,
        cache_creation_input_tokens=record.cache_creation_input_tokens,
        cache_creation_5m_input_tokens=record.cache_creation_5m_input_tokens,
        cache_creation_1h_input_tokens=record.cache_creation_1h_input_tokens,
        cache_read_input_tokens=record.cache_read_input_tokens,
    )
    return dataclasses.replace(record, cost_usd=cost, cost_no_cache_usd=no_cache)


def _answer_dangling(history: History, prompt: list[dict[str, Any]] | None) -> None:
    """Answer earlier tool calls nobody answered, except those the prompt answers itself."""
    pending = history.pending_tool_uses()
    answers = [b.get("tool_use_id") for b in prompt or [] if b.get("type") == "tool_result"]
    given = set(answers)
    if len(given) < len(answers):
        twice = next(a for a in answers if answers.count(a) > 1)
        raise ConfigError(
            f"the prompt answers tool call {twice!r} more than once",
            hint="send one tool_result per tool_use",
        )
    unknown = given - {b["id"] for b in pending}
    if unknown:
        raise ConfigError(
            f"the prompt has a tool_result for {sorted(map(str, unknown))[0]!r}, which answers no "
            "pending tool call",
            hint="send results only for the tool calls of the last reply (reply.tool_calls)",
        )
    rest = [b for b in pending if b["id"] not in given]
    if rest:
        history.add_tool_results(
            [_result(b["id"], "This tool call was not run (the user moved on).", True) for b in rest]
        )


def _build(chat: TurnContext, history: History, settings: Settings) -> dict[str, Any]:
    try:
        return build_request(
            settings, history.to_params(), chat.toolset.params(), previous_message_id=chat.last_message_id
        )
    except ClaudekitError:
        raise
    except Exception as exc:
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ConfigError(f"could not build the request ({why})") from exc


def next_request(
    chat: TurnContext, prompt: list[dict[str, Any]] | None, settings: Settings
) -> dict[str, Any]:
    """The request the chat's next turn would send first for ``prompt``; the chat is left untouched."""
    history = copy.deepcopy(chat.history)
    _answer_dangling(history, prompt)
    if prompt is not None:
        history.add_user(prompt)
    elif not history.messages:
        raise ConfigError("nothing to send: the conversation is empty", hint="pass a prompt")
    return _build(chat, history, settings)


async def _within_budget(chat: TurnContext, body: dict[str, Any]) -> Reservation | None:
    """With a chat or session budget in force, estimate the call and refuse it if it could pass one;
    else hold its worst case against them (concurrent calls see it) until it is released."""
    from ..usage import estimate_request, expected_cache_read, get_budget
    from ..usage._budget import reserve_budget

    if chat.budget_usd is None and get_budget() is None:
        return None
    expected = expected_cache_read(chat.usage, body)
    estimate = await estimate_request(chat.client, body, expected_cache_read_tokens=expected)
    return reserve_budget(estimate, chat_budget=chat.budget_usd, chat_log=chat.usage)


def _result(tool_use_id: str, content: Any, is_error: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    if is_error:
        block["is_error"] = True
    return block


def _apply_result(reply: Reply, result: ToolResult) -> None:
    for call in reply.tool_calls:
        if call.id == result.id:
            call.result = result.content
            call.is_error = result.is_error
            call.decision = result.decision


def _valid_unicode(value: Any) -> Any:
    """Tool output with lone surrogates (e.g. undecodable file names) made sendable: U+FFFD instead."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_unicode(v) for v in value]
    return value

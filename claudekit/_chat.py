"""``Chat``: a conversation with Claude that streams typed events and keeps its history valid."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Generator
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import anthropic

from . import _attempts, _render
from ._client import ClientHandle, resolve_client
from ._content import Prompt, to_blocks
from ._errors import ClaudekitError, ConfigError, IncompleteStreamError, OutputFormatError, from_sdk_error
from ._events import (
    Event,
    ToolCallReady,
    ToolResult,
    Usage,
)
from ._history import History, replayable
from ._reply import Reply, Step, ToolCall
from ._settings import Settings, build_request
from ._stream import Accumulator, iterate
from ._tools import ToolSet

__all__ = ["Chat", "ReplyStream"]

_ids = itertools.count(1)
_INTERRUPTS = (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit)


class Chat:
    """A conversation with Claude.

    ``await chat("…")`` returns a :class:`Reply`; ``async for event in chat.stream("…")`` yields typed
    events as they arrive. Settings are keyword arguments (see :class:`Settings`); per-call overrides
    go to ``send``/``stream``. With no API key, the offline backend answers (and says so once).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        system: str | list[dict[str, Any]] | None = None,
        tools: list[Any] | None = None,
        approval: Any = None,
        max_steps: int = 10,
        client: anthropic.AsyncAnthropic | None = None,
        backend: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        offline: Any = None,
        cassette: str | os.PathLike[str] | None = None,
        cassette_mode: str | None = None,
        history: History | None = None,
        name: str | None = None,
        render: bool | None = None,
        usage_log: Any = None,
        **settings: Any,
    ) -> None:
        base = Settings()
        if model is not None:
            settings["model"] = model
        if system is not None:
            settings["system"] = system
        self.settings = base.replace(**settings)
        self.toolset = ToolSet(tools, approval=approval)
        self.settings.validate(self.toolset.names)
        if max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        self.max_steps = max_steps
        self.name = name or f"chat-{next(_ids)}"
        self.render = render
        self.history = history if history is not None else History()
        self._handle: ClientHandle = resolve_client(
            client=client,
            backend=backend,
            api_key=api_key,
            base_url=base_url,
            max_retries=self.settings.max_retries,
            timeout=self.settings.timeout,
            connect_timeout=self.settings.connect_timeout,
            offline=offline,
            cassette=cassette,
            cassette_mode=cassette_mode,
        )
        _attempts.install(self._handle.client)
        self.usage = _make_usage_log(usage_log)
        self._tracker = _make_tracker()
        self._last_message_id: str | None = None
        self._turn = 0
        self.last_reply: Reply | None = None

    # -- public API ----------------------------------------------------------------------------------

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        return self._handle.client

    @property
    def backend(self) -> str:
        return self._handle.backend

    @property
    def offline(self) -> Any:
        """The offline backend serving this chat, or None."""
        return self._handle.offline

    @property
    def system(self) -> str | list[dict[str, Any]] | None:
        return self.settings.system

    @system.setter
    def system(self, value: str | list[dict[str, Any]] | None) -> None:
        self.settings.system = value

    @property
    def model(self) -> str:
        return self.settings.model

    @model.setter
    def model(self, value: str) -> None:
        self.settings = self.settings.replace(model=value)

    @property
    def tools(self) -> list[Any]:
        """The chat's tools (:class:`claudekit.Tool` objects). Assign a list to change them."""
        return list(self.toolset.tools.values())

    @tools.setter
    def tools(self, tools: list[Any]) -> None:
        self.settings.validate(ToolSet(tools).names)  # check before changing anything
        self.toolset.replace_tools(tools)

    def stream(
        self, prompt: Prompt | None = None, *, render: bool | None = None, **overrides: Any
    ) -> ReplyStream:
        """Start a reply; iterate it for events or await it for the :class:`Reply`."""
        settings = self.settings.replace(**overrides) if overrides else self.settings
        settings.validate(self.toolset.names)
        blocks = to_blocks(prompt) if prompt is not None else None
        return ReplyStream(self, blocks, settings, self.render if render is None else render)

    async def send(self, prompt: Prompt | None = None, **overrides: Any) -> Reply:
        return await self.stream(prompt, **overrides)

    __call__ = send

    def reset(self) -> None:
        """Forget the conversation (settings, tools and the usage log stay)."""
        self.history = History()
        self._last_message_id = None
        self.last_reply = None

    async def aclose(self) -> None:
        await self._handle.aclose()

    async def __aenter__(self) -> Chat:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the conversation (and system prompt) as JSON."""
        self.history.system = self.settings.system
        self.history.save(path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the conversation with one saved by :meth:`save`."""
        hist = History.load(path)
        self.history = hist
        if hist.system is not None:
            self.settings.system = hist.system

    def __repr__(self) -> str:
        return (
            f"Chat(name={self.name!r}, model={self.settings.model!r}, backend={self.backend!r}, "
            f"turns={len(self.history)}, tools={self.toolset.names})"
        )

    # -- the turn --------------------------------------------------------------------------------------

    def _request(self, settings: Settings) -> dict[str, Any]:
        return build_request(
            settings,
            self.history.to_params(),
            self.toolset.params(),
            previous_message_id=self._last_message_id,
        )

    def _answer_dangling_tool_calls(self) -> None:
        """A tool_use nobody answered would make every later request invalid; answer it with an error."""
        pending = self.history.pending_tool_uses()
        if pending:
            self.history.add_tool_results(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": b["id"],
                        "content": "This tool call was not run (the user moved on).",
                        "is_error": True,
                    }
                    for b in pending
                ]
            )

    async def _turn_events(self, rs: ReplyStream) -> AsyncIterator[Event]:
        reply = rs.reply
        settings = rs.settings
        self._turn += 1
        turn = self._turn
        self._answer_dangling_tool_calls()
        mark = self.history.snapshot_len()
        if rs.prompt is not None:
            self.history.add_user(rs.prompt)
        elif not self.history.messages:
            raise ConfigError("nothing to send: the conversation is empty", hint="pass a prompt")
        for step_index in range(self.max_steps):
            started_at = datetime.now(timezone.utc)
            try:
                body = self._request(settings)
                client_reason = self._tracker.observe(body, started_at) if self._tracker else None
            except Exception as exc:
                # Nothing was sent: take the prompt back so that the history stays as it was.
                if step_index == 0:
                    self.history.restore(mark)
                if isinstance(exc, ClaudekitError):
                    raise
                why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                raise ConfigError(f"could not build the request ({why})") from exc
            acc = Accumulator(step_index)
            started = time.perf_counter()
            raw: Any = None
            request_id: str | None = None
            attempts: list[_attempts.Attempt] = []
            try:
                with _attempts.watching(attempts):
                    raw = await self.client.messages.create(**body, stream=True)
                if last := self._log_retried(attempts, raw.response, reply, turn, step_index):
                    started, started_at = last.started, last.started_at
                request_id = raw.response.headers.get("request-id")
                async for ev in iterate(raw, acc, started, request_id):
                    if isinstance(ev, ToolCallReady):
                        reply.tool_calls.append(
                            ToolCall(
                                ev.id, ev.name, ev.input, server=ev.server, error=ev.error, step=step_index
                            )
                        )
                    yield ev
                if not acc.stopped:
                    raise IncompleteStreamError("the response stream ended before message_stop")
            except BaseException as exc:
                if raw is not None:
                    await _close_quietly(raw)
                else:  # create() itself failed, after the SDK's retries
                    final = getattr(exc, "response", None)
                    if last := self._log_retried(attempts, final, reply, turn, step_index):
                        started, started_at = last.started, last.started_at
                for ev in acc.finish_open_blocks():
                    if isinstance(ev, ToolCallReady):
                        why = "interrupted" if isinstance(exc, _INTERRUPTS) else "the stream failed"
                        reply.tool_calls.append(
                            ToolCall(
                                ev.id,
                                ev.name,
                                ev.input,
                                server=ev.server,
                                error=ev.error or why,
                                step=step_index,
                            )
                        )
                interrupted = isinstance(exc, _INTERRUPTS)
                err = (
                    None if interrupted else (exc if isinstance(exc, ClaudekitError) else from_sdk_error(exc))
                )
                status = "interrupted" if interrupted else (getattr(err, "type", None) or type(err).__name__)
                self._finish_step(reply, acc, status, started, request_id, turn, started_at, client_reason)
                self._keep_partial(acc, mark if step_index == 0 else None)
                if interrupted:
                    reply.interrupted = True
                    raise
                assert err is not None
                err.reply = reply
                reply.error = err
                if err is exc:
                    raise
                raise err from exc
            message = acc.snapshot
            assert message is not None
            self._finish_step(reply, acc, "ok", started, request_id, turn, started_at, client_reason)
            self.history.add_assistant(message.content)
            self._last_message_id = message.id
            if settings.output_format is not None and message.stop_reason == "end_turn":
                try:
                    # The final message's text only: earlier steps of a tool loop may have said things.
                    final_text = "".join(b.text for b in message.content if b.type == "text")
                    reply.parsed = _parse_output(settings.output_format, final_text)
                except OutputFormatError as err:
                    # The step is complete and in the history: the next turn is valid as it is.
                    err.reply = reply
                    reply.error = err
                    raise
            stop = message.stop_reason
            if stop == "pause_turn":
                continue
            calls = [c for c in reply.tool_calls if c.step == step_index and not c.server]
            if stop != "tool_use" or not calls or not all(self.toolset.handles(c) for c in calls):
                return
            results: list[dict[str, Any]] = []
            try:
                async for tev in self.toolset.run(calls):
                    if isinstance(tev, ToolResult):
                        _apply_result(reply, tev)
                        results.append(_result_block(tev))
                    yield tev
            except BaseException as exc:
                # Every tool_use must get a result, or no later request would be valid.
                done = {r["tool_use_id"] for r in results}
                results += [
                    {
                        "type": "tool_result",
                        "tool_use_id": c.id,
                        "content": "Interrupted by the user before this tool call finished; no result.",
                        "is_error": True,
                    }
                    for c in calls
                    if c.id not in done
                ]
                self.history.add_tool_results(results)
                reply.interrupted = isinstance(exc, _INTERRUPTS)
                raise
            self.history.add_tool_results(results)
        reply.max_steps_reached = True
        logging.getLogger("claudekit.tools").warning(
            "claudekit: stopped after max_steps=%d API calls while the model was still calling tools "
            "(reply.max_steps_reached); send again to continue, or raise Chat(max_steps=...)",
            self.max_steps,
        )

    def _finish_step(
        self,
        reply: Reply,
        acc: Accumulator,
        status: str,
        started: float,
        request_id: str | None,
        turn: int,
        started_at: datetime,
        client_reason: str | None,
    ) -> None:
        latency = time.perf_counter() - started
        ttft = None if acc.first_token_at is None else acc.first_token_at - started
        usage = acc.usage if acc.snapshot is not None else Usage()
        if status != "ok" and not acc.final_usage:
            usage = dataclasses.replace(usage, output_tokens=None)  # message_start's is a placeholder
        reply.steps.append(Step(acc.step, acc.snapshot, usage, status, request_id, latency, ttft))
        if acc.snapshot is None and status == "ok":
            return
        _log_usage(
            self.usage,
            acc,
            chat_id=self.name,
            turn=turn,
            model=reply.model,
            request_id=request_id,
            status=status,
            latency=latency,
            ttft=ttft,
            started_at=started_at,
            client_reason=client_reason,
        )

    def _log_retried(
        self, attempts: list[_attempts.Attempt], final: Any, reply: Reply, turn: int, step: int
    ) -> _attempts.Attempt | None:
        """One record per attempt the SDK retried before ``final`` (no tokens: a refused call is not
        billed); returns the attempt that produced ``final``, if any."""
        retried, last = _attempts.split(attempts, final)
        if self.usage is None:
            return last
        from .usage import UsageRecord

        for a in retried:
            record = UsageRecord.from_message(
                None,
                chat_id=self.name,
                turn=turn,
                step=step,
                model=reply.model,
                request_id=a.request_id,
                status=a.status,
                latency_s=a.latency_s,
                ttft_s=None,
                started_at=a.started_at,
            )
            self.usage.append(record)
        return last

    def _keep_partial(self, acc: Accumulator, undo_mark: tuple[int, int] | None) -> None:
        """After an error or interrupt: keep what arrived in a form the API will accept next turn."""
        msg = acc.snapshot
        if msg is None:
            if undo_mark is not None:
                # Nothing came back: take the prompt out again so that re-sending it does not duplicate it.
                self.history.restore(undo_mark)
            return
        open_blocks = set(acc.open_block_indices())
        # Branch on .type, not isinstance: the SDK builds unknown blocks as whichever model fits.
        content: list[Any] = list(msg.content)
        result_ids = {getattr(b, "tool_use_id", None) for b in content}
        kept: list[Any] = []
        for i, block in enumerate(content):
            t = block.type
            if t == "text":
                if block.text:
                    kept.append(block)
            elif t == "thinking":
                if i not in open_blocks and block.signature:
                    kept.append(block)
            elif t == "redacted_thinking":
                kept.append(block)
            elif t in ("tool_use", "mcp_tool_use"):
                continue  # never ran, and would need a result
            elif t == "server_tool_use":
                if block.id in result_ids:
                    kept.append(block)
            elif i not in open_blocks and replayable(t):
                kept.append(block)
        # Thinking must not end an assistant turn that is followed by more turns without text or tools.
        while kept and kept[-1].type in ("thinking", "redacted_thinking"):
            kept.pop()
        if kept:
            self.history.add_assistant(kept)
        elif undo_mark is not None:
            self.history.restore(undo_mark)


class ReplyStream:
    """A reply in progress: an async iterator of events, awaitable for the final :class:`Reply`."""

    def __init__(
        self, chat: Chat, prompt: list[dict[str, Any]] | None, settings: Settings, render: bool | None
    ):
        self.chat = chat
        self.prompt = prompt
        self.settings = settings
        self.reply = Reply(settings.model)
        self._render = render
        self._renderer: _render.Renderer | None = None
        self._agen: AsyncIterator[Event] | None = None
        self._done = False
        self._consumer = "events"  # "reply" when awaited: a renderer then shows what the user does not

    def _events(self) -> AsyncIterator[Event]:
        if self._agen is None:
            self._agen = self._run()
        return self._agen

    async def _run(self) -> AsyncIterator[Event]:
        factory = _render.get_renderer_factory() if self._render is not False else None
        renderer = factory(self._render) if factory is not None else None
        self._renderer = renderer
        error: BaseException | None = None
        if renderer is not None:
            task = asyncio.current_task()
            loop = asyncio.get_running_loop()

            def stop() -> None:
                """Interrupt the reply from any thread (a Stop button), as a kernel interrupt does."""
                if task is not None and not self._done:
                    loop.call_soon_threadsafe(task.cancel)

            renderer.start(
                {
                    "model": self.settings.model,
                    "chat": self.chat.name,
                    "stop": stop,
                    "consumer": self._consumer,
                }
            )
        try:
            async for ev in self.chat._turn_events(self):
                if renderer is not None:
                    renderer.event(ev)
                yield ev
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._done = True
            self.chat.last_reply = self.reply
            if renderer is not None:
                renderer.finish(self.reply, error)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def collect(self) -> Reply:
        if self._agen is None:
            self._consumer = "reply"
        async for _ in self._events():
            pass
        return self.reply

    def __await__(self) -> Generator[Any, None, Reply]:
        return self.collect().__await__()

    async def aclose(self) -> None:
        agen = self._agen
        if agen is not None and hasattr(agen, "aclose"):
            await agen.aclose()

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def text(self) -> str:
        return self.reply.text


async def _close_quietly(raw: Any) -> None:
    # Best effort: the error that brought us here is the one to report.
    with contextlib.suppress(Exception):
        await asyncio.shield(raw.close())


def _apply_result(reply: Reply, result: ToolResult) -> None:
    for call in reply.tool_calls:
        if call.id == result.id:
            call.result = result.content
            call.is_error = result.is_error
            call.decision = result.decision


def _result_block(result: ToolResult) -> dict[str, Any]:
    content = _valid_unicode(result.content)
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.id, "content": content}
    if result.is_error:
        block["is_error"] = True
    return block


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


def _parse_output(fmt: Any, text: str) -> Any:
    """The answer as ``output_format`` asks: JSON, validated into the pydantic model when one was given."""
    what = getattr(fmt, "__name__", "the output_format schema")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputFormatError(f"the answer is not JSON for {what}: {exc}") from exc
    if isinstance(fmt, dict):
        return data
    validate = getattr(fmt, "model_validate", None)
    if validate is None:
        return data
    try:
        return validate(data)
    except ValueError as exc:  # pydantic's ValidationError
        first = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) or first[0]
        raise OutputFormatError(f"the answer does not match {what}: {detail}") from exc


def _make_usage_log(usage_log: Any) -> Any:
    try:
        from .usage import UsageLog, session_log
    except ImportError:  # the usage package is optional at this layer
        return None
    if usage_log is None:
        return UsageLog(parent=session_log())
    if isinstance(usage_log, UsageLog):
        return usage_log
    return UsageLog(path=usage_log, parent=session_log())


def _make_tracker() -> Any:
    try:
        from .usage import PrefixTracker
    except ImportError:
        return None
    return PrefixTracker()


def _log_usage(log: Any, acc: Accumulator, **kw: Any) -> None:
    if log is None:
        return
    from .usage import UsageRecord

    msg = acc.snapshot
    diagnostics = getattr(msg, "diagnostics", None) if msg is not None else None
    usage: Any = None
    if msg is not None and (acc.final_usage_missing or not acc.final_usage):
        # Record what is known and leave the rest missing (NA), never a stale or zero count:
        # without message_delta's usage, message_start's output count is only a placeholder.
        known = dataclasses.asdict(acc.usage).items()
        usage = {k: v for k, v in known if v is not None and k.endswith("_tokens") and k != "output_tokens"}
    record = UsageRecord.from_message(
        msg,
        usage=usage,
        chat_id=kw["chat_id"],
        turn=kw["turn"],
        step=acc.step,
        model=(msg.model if msg is not None else None) or kw["model"],
        request_id=kw["request_id"],
        status=kw["status"],
        latency_s=kw["latency"],
        ttft_s=kw["ttft"],
        started_at=kw["started_at"],
        cache_miss_reason=getattr(diagnostics, "cache_miss_reason", None),
        client_miss_reason=kw["client_reason"],
    )
    log.append(record)

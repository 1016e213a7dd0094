"""``Chat``: a conversation with Claude that streams typed events and keeps its history valid."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
from collections.abc import AsyncGenerator, Awaitable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anthropic

from .. import _seams as _render
from .._base._errors import BusyError, ConfigError
from .._base._events import Event
from .._base._reply import Reply
from .._request._content import Prompt, to_blocks
from .._request._documents import check_citations
from .._request._history import History
from .._request._settings import Settings
from .._tooling._tools import ToolSet
from ._client import ClientHandle, resolve_client
from ._files import upload_large
from ._threads import ThreadCursor
from ._turn import Turn, TurnContext, next_request

if TYPE_CHECKING:
    from ..usage import Estimate

__all__ = ["Chat", "ReplyStream"]

_ids = itertools.count(1)
# This kernel's (process's) mark in default chat names: every kernel counts from 1, so the number alone
# would repeat across kernels sharing one store; a fork gets its own mark and count.
_kernel_tag = secrets.token_hex(3)


def _new_kernel_tag() -> None:
    global _ids, _kernel_tag
    _ids, _kernel_tag = itertools.count(1), secrets.token_hex(3)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_new_kernel_tag)
_SERVICE_HOST = "api.anthropic.com"  # where threads are on by default


def _step_limits(max_steps: int, max_pauses: int) -> tuple[int, int]:
    if max_steps < 1:
        raise ConfigError("max_steps must be at least 1")
    if isinstance(max_pauses, bool) or not isinstance(max_pauses, int) or max_pauses < 0:
        raise ConfigError(
            f"max_pauses must be a whole number of continuations (0 or more), got {max_pauses!r}"
        )
    return max_steps, max_pauses


class Chat:
    """A conversation with Claude.

    ``await chat("…")`` returns a :class:`Reply`; ``async for event in chat.stream("…")`` yields typed
    events as they arrive. Settings are keyword arguments (see :class:`Settings`); per-call overrides
    go to ``send``/``stream``. With no API key, the offline backend answers (and says so once);
    ``offline=True`` asks for it even with a key, ``offline=<OfflineBackend>`` for a backend of your own.
    ``threads``: send only what is new each turn (message threads); default on for api.anthropic.com.
    ``max_pauses``: how many times a turn continues after the service paused it (``pause_turn``, long
    server-tool work); server tools are ``ck.web_search()``, ``ck.web_fetch()``, ``ck.code_execution()`` in
    ``tools=[…]``, and ``mcp_servers=[{"url": …, "name": …}]`` is the MCP connector.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        system: str | list[dict[str, Any]] | None = None,
        tools: list[Any] | None = None,
        approval: Any = None,
        max_steps: int = 10,
        max_pauses: int = 5,
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
        budget_usd: float | None = None,
        threads: bool | None = None,
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
        self.max_steps, self.max_pauses = _step_limits(max_steps, max_pauses)
        self.budget_usd = _budget(budget_usd)
        self.name = name or _default_name()
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
        self.usage = _make_usage_log(usage_log)
        self._tracker = _make_tracker()
        self._last_message_id: str | None = None
        self._threads = ThreadCursor()
        self._threads_on = threads  # None: on when claudekit built the client for the service itself
        self._turn = 0
        self._active: ReplyStream | None = None  # the reply in progress: one at a time
        self.last_reply: Reply | None = None
        self.store_id: str | None = None  # the chat's row in claudekit.store, when the store is on
        _store_link("attach", self)

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

    def _thread_cursor(self) -> ThreadCursor | None:
        """The chat's message thread when turns use one: ``threads=True``, or by default when claudekit built
        the client for the service itself. A client of your own, another ``base_url`` (a gateway may not
        know the beta), a cassette (it matches whole requests) or the offline backend: opt-in."""
        on = self._threads_on
        if on is None:
            handle = self._handle
            on = handle.backend == "anthropic" and handle.client.base_url.host == _SERVICE_HOST
        return self._threads if on else None

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
        """Start a reply; iterate it for events or await it for the :class:`Reply`.

        Awaited, the reply is drawn live (in a notebook) or printed (in a script); iterated, nothing is
        drawn or printed — you show the events — unless ``render=True``."""
        settings = self.settings.replace(**overrides) if overrides else self.settings
        settings.validate(self.toolset.names)
        blocks = to_blocks(prompt) if prompt is not None else None
        check_citations(self.history.messages, blocks or ())
        return ReplyStream(self, blocks, settings, self.render if render is None else render)

    async def send(self, prompt: Prompt | None = None, **overrides: Any) -> Reply:
        return await self.stream(prompt, **overrides)

    __call__ = send

    async def estimate(self, prompt: Prompt | None = None, **overrides: Any) -> Estimate:
        """Tokens and cost range of the request ``send(prompt)`` would make first, from the API's token
        counter; no message is sent and the chat is not changed (see :class:`claudekit.usage.Estimate`)."""
        from ..usage import estimate_request, expected_cache_read

        settings = self.settings.replace(**overrides) if overrides else self.settings
        settings.validate(self.toolset.names)
        body = next_request(self._turn_context(), to_blocks(prompt) if prompt is not None else None, settings)
        expected = expected_cache_read(self.usage, body)
        return await estimate_request(self.client, body, expected_cache_read_tokens=expected)

    @classmethod
    def resume(cls, name_or_id: str, **kwargs: Any) -> Chat:
        """The stored chat ``name_or_id`` (its id, or the one chat of that name: a name several stored
        chats carry is a :class:`ConfigError` listing them) with its settings and conversation, so that
        its next request is the one its old kernel would have sent.

        Pass what cannot be stored again: ``tools=[...]``, ``approval=``, a client or backend; any
        other keyword overrides a stored setting. See :func:`claudekit.chats` for what is stored."""
        resume = _render.store_hooks.get("resume")  # the store registers it: the core never imports it
        if resume is None:
            raise ConfigError(
                "Chat.resume reads claudekit's store, which is not loaded", hint="import claudekit"
            )
        chat: Chat = resume(cls, name_or_id, kwargs)
        return chat

    def reset(self) -> None:
        """Forget the conversation (settings, tools and the usage log stay)."""
        self._refuse_while_answering("reset()")
        self._forget(History())
        self.last_reply = None

    def _refuse_while_answering(self, what: str) -> None:
        # The running turn would write its answer into the new conversation (which would then start
        # with an assistant message, and be stored so).
        if self._active is not None:
            raise BusyError(
                f"chat.{what} was refused: this chat is still answering a prompt",
                hint="await the reply (or stop it: stream.stop() / await stream.aclose()) first",
            )

    def _forget(self, history: History) -> None:
        """A new conversation: the cache tracker and the previous message id start over with it."""
        self.history = history
        self._last_message_id = None
        self._threads.forget()
        self._tracker = _make_tracker()
        _store_link("attach", self)  # a new conversation in the store; the old one stays there

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
        self._refuse_while_answering("load()")
        hist = History.load(path)
        self._forget(hist)
        if hist.system is not None:
            self.settings.system = hist.system

    def __repr__(self) -> str:
        return (
            f"Chat(name={self.name!r}, model={self.settings.model!r}, backend={self.backend!r}, "
            f"turns={self.history.turns}, tools={self.toolset.names})"
        )

    # -- what the turn runner uses ------------------------------------------------------------------

    def _turn_context(self) -> TurnContext:
        """What a turn needs of this chat (taken when the turn starts, once it holds the chat)."""
        return TurnContext(
            self.history,
            self.toolset,
            self.client,
            self.usage,
            self.name,
            self.max_steps,
            self.budget_usd,
            self._tracker,
            self._last_message_id,
            threads=self._threads,
            threads_on=self._thread_cursor() is not None,
            next_turn=self._next_turn,
            keep_message_id=self._keep_message_id,
            max_pauses=self.max_pauses,
            prepare=self._prepare_prompt,
        )

    async def _prepare_prompt(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Large documents go by Files API id, where claudekit knows the service serves the Files API.
        if self._handle.backend not in ("anthropic", "offline"):
            return blocks
        return await upload_large(self._handle, blocks)

    def _next_turn(self) -> int:
        self._turn += 1
        return self._turn

    def _keep_message_id(self, message_id: str | None) -> None:
        self._last_message_id = message_id

    def _budget_info(self) -> dict[str, Any] | None:
        """What the view shows of the budget in force (the tighter of the chat's and the session's)."""
        try:
            from ..usage import get_budget, spent
        except ImportError:
            return None
        found = []
        if self.budget_usd is not None:
            found.append(("chat", self.budget_usd, spent(self.usage) if self.usage is not None else 0.0))
        if get_budget() is not None:
            found.append(("session", float(get_budget() or 0.0), spent()))
        if not found:
            return None
        scope, budget, used = min(found, key=lambda f: f[1] - f[2])
        return {"scope": scope, "budget_usd": budget, "spent_usd": used}


class ReplyStream:
    """A reply in progress: an async iterator of events, awaitable for the final :class:`Reply`.

    However the iteration ends — finished, ``break``, :meth:`aclose`, ``async with`` exiting, an
    exception in the loop body, an interrupt — the turn is finished at that moment: what arrived is in
    the chat's history and on :attr:`reply`, the HTTP response is closed, and the chat can take the next
    prompt. Iterate a stream once.

    One reply at a time per chat: starting a second while one is in progress raises
    :class:`~claudekit.BusyError` (it never waits, so it can never deadlock on a stream left half-read).
    """

    def __init__(
        self, chat: Chat, prompt: list[dict[str, Any]] | None, settings: Settings, render: bool | None
    ):
        self.chat = chat
        self.prompt = prompt
        self.settings = settings
        self.reply = Reply(settings.model)
        self._render = render
        self._renderer: _render.Renderer | None = None
        self._view = contextlib.ExitStack()  # holds the renderer from its start to its finish
        self._turn: Turn | None = None
        self._agen: AsyncGenerator[Event, None] | None = None
        self._consumer = "events"
        self._done = False
        self._claimed = False  # this stream holds the chat (one reply at a time)
        self._ended: asyncio.Event | None = None

    # -- driving the turn ------------------------------------------------------------------------------

    def _events(self) -> AsyncGenerator[Event, None]:
        if self._agen is None:
            self._turn = Turn(self.chat._turn_context, self.prompt, self.settings, self.reply, self)
            self._agen = self._turn.events()
        return self._agen

    def _begin(self) -> _render.Renderer | None:
        """Called by the turn before it does anything: claim the chat, start the view."""
        chat = self.chat
        if chat._active is not None:
            raise BusyError("this chat is still answering another prompt")
        chat._active = self
        self._claimed = True
        self._ended = asyncio.Event()
        try:
            # Iterating the events yourself means you show them: nothing is drawn unless render=True.
            drawn = self._render is True or (self._render is None and self._consumer == "reply")
            factory = _render.get_renderer_factory() if drawn else None
            renderer = factory(self._render) if factory is not None else None
            if renderer is not None:
                info = {"model": self.settings.model, "chat": chat.name, "consumer": self._consumer}
                renderer.start(
                    {**info, "stop": self.stop, "budget": chat._budget_info(), "reply": self.reply}
                )
                # Entered once started: _closed leaves it, and so does the stack's own end, whatever comes.
                self._view.enter_context(_render.showing(renderer, self.reply))
                self._renderer = renderer
        except BaseException:
            chat._active = None
            self._claimed = False
            raise
        return self._renderer

    def _closed(self, error: BaseException | None) -> None:
        """Called once by the turn, however it ended."""
        self._done = True
        if not self._claimed:  # refused before it began (BusyError): the chat is another stream's
            return
        self.chat.last_reply = self.reply
        if self.chat._active is self:
            self.chat._active = None
        _store_link("commit", self.chat)  # the conversation as the turn left it
        if self._ended is not None:
            self._ended.set()
        view, self._view = self._view, contextlib.ExitStack()
        try:
            view.__exit__(type(error) if error is not None else None, error, None)
        except Exception:
            logging.getLogger("claudekit").exception("claudekit: the reply's view failed to finish")

    def _abandoned(self) -> None:
        """The consumer dropped the iterator before the end: finish now, close the generator soon.

        Only a turn that has begun and is suspended between events can be abandoned: an iterator that
        dies before its first event is awaited (``await anext(aiter(stream))``) has stopped nothing.
        """
        turn, agen = self._turn, self._agen
        if turn is None or turn.closed or agen is None or not turn.started or _running(agen):
            return
        turn.fail(GeneratorExit())
        self._agen = _finished()  # iterating or awaiting the stream again yields nothing more
        try:
            task = asyncio.get_running_loop().create_task(agen.aclose())
        except RuntimeError:  # no loop (interpreter shutdown): nothing left to close politely
            return
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    def __aiter__(self) -> _EventIterator:
        return _EventIterator(self)

    async def collect(self) -> Reply:
        self._consumer = "reply"
        async with contextlib.aclosing(self._events()) as events:
            async for _ in events:
                pass
        return self.reply

    def __await__(self) -> Generator[Any, None, Reply]:
        return self.collect().__await__()

    async def aclose(self) -> None:
        """Stop the reply now (as an interrupt would): what arrived is kept, the response is closed.

        From another task than the one reading the stream, that task is interrupted (it sees
        ``CancelledError``, as with a kernel interrupt) and this returns once the turn has finished.
        """
        agen = self._agen
        if agen is None:
            return
        if _running(agen) and self._ended is not None:
            self.stop()
            await self._ended.wait()
            return
        await agen.aclose()

    def stop(self) -> None:
        """Interrupt the reply from anywhere, any thread (a Stop button): as a kernel interrupt does, it
        cancels the task that is running the reply."""
        turn = self._turn
        if turn is not None and not turn.closed and turn.task is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing is running any more
                turn.task.get_loop().call_soon_threadsafe(turn.task.cancel)

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- what has arrived so far -------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The answer so far, including the part still streaming (the whole answer once done)."""
        if self._done or self._turn is None:
            return self.reply.text
        step = self._turn.step
        partial = step.acc.partial_text() if step is not None else ""
        return "\n\n".join(p for p in (self.reply.text, partial) if p)

    @property
    def current_message_snapshot(self) -> anthropic.types.Message | None:
        """The API call in flight as received so far (text, thinking, tool arguments), like the SDK's."""
        step = self._turn.step if self._turn is not None else None
        if step is None:
            return self.reply.message
        return step.acc.current_snapshot()


class _EventIterator:
    """What ``async for`` holds. Dropping it before the end (``break``, an exception in the loop body)
    finishes the turn at once: CPython frees it the moment the loop is left."""

    __slots__ = ("_agen", "_stream")

    def __init__(self, stream: ReplyStream) -> None:
        self._stream = stream
        self._agen = stream._events()

    def __aiter__(self) -> _EventIterator:
        return self

    def __anext__(self) -> Awaitable[Event]:
        return self._agen.__anext__()  # no frame of our own per event

    def __del__(self) -> None:
        self._stream._abandoned()


_closing: set[asyncio.Task[None]] = set()


def _running(agen: AsyncGenerator[Event, None]) -> bool:
    """Whether some task is inside the generator right now (between its events it is not)."""
    return bool(getattr(agen, "ag_running", False))


async def _finished() -> AsyncGenerator[Event, None]:
    return
    yield  # an async generator that is already at its end


def _default_name() -> str:
    """The notebook's (or script's) name, a number and this kernel's mark, ``analysis-1-3fa9c2``; ``chat-…``
    when there is neither. Unique across kernels (a random 6-hex mark), so that a name resumes one chat."""
    import sys
    from pathlib import PurePath

    where = os.environ.get("JPY_SESSION_NAME") or ""  # the notebook's path, set by Jupyter Server
    if not where.endswith(".ipynb"):
        script = sys.argv[0] if sys.argv else ""
        where = script if script.endswith(".py") and "ipykernel" not in script else ""
    stem = PurePath(where).stem if where else ""
    if not stem or stem.startswith("_"):  # __main__.py of `python -m …`
        stem = "chat"
    return f"{stem}-{next(_ids)}-{_kernel_tag}"


def _make_usage_log(usage_log: Any) -> Any:
    try:
        from ..usage import UsageLog, session_log
    except ImportError:  # the usage package is optional at this layer
        return None
    if usage_log is None:
        return UsageLog(parent=session_log())
    if isinstance(usage_log, UsageLog):
        return usage_log
    return UsageLog(path=usage_log, parent=session_log())


def _budget(usd: float | None) -> float | None:
    if usd is None:
        return None
    if isinstance(usd, bool) or not isinstance(usd, int | float) or not usd >= 0 or usd == float("inf"):
        raise ConfigError(f"budget_usd must be a non-negative amount in USD, got {usd!r}")
    return float(usd)


def _store_link(action: str, chat: Chat) -> None:
    """Keep the chat in claudekit.store (attach at creation, commit after each turn); the store is
    optional and best effort: a failure is said once and never costs the conversation."""
    for listener in _render.chat_listeners:  # the store listens here
        try:
            listener(action, chat)
        except Exception as exc:
            from .._base._notes import say_once

            why = " ".join(str(exc).split())[:200]
            say_once(
                f"the store could not keep chat {chat.name!r} ({type(exc).__name__}: {why})",
                key=f"store-{action}",
            )


def _make_tracker() -> Any:
    try:
        from ..usage import PrefixTracker
    except ImportError:
        return None
    return PrefixTracker()

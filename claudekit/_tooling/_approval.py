"""Approval of tool calls: decisions, calls waiting for one, and the policies that decide.

A tool with ``approve=True`` never runs before a :class:`Decision` approves it. Who decides is the chat's
policy: ``"widget"`` (the notebook default: a person clicks Approve/Deny), ``"auto"``, ``"deny"``, a
callable, or :class:`ScriptedApproval` decisions for tests. Unattended runs (nbval, CI, scripts) choose
a policy with ``CLAUDEKIT_APPROVAL=auto|deny`` or :func:`set_default_approval`; with nothing configured
and nobody to click, calls are denied (and claudekit says so once).

Waiting never blocks the event loop and never spins: the widget resolves an asyncio future with
``loop.call_soon_threadsafe`` (clicks may arrive on a kernel subshell thread) and the policy awaits it.
See docs/approval.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from .. import _seams as _render
from .._base._errors import ConfigError
from .._base._notes import say_once as _say_once

if TYPE_CHECKING:
    from .._base._reply import ToolCall

__all__ = [
    "ApprovalPolicy",
    "Decision",
    "PendingCall",
    "PolicyLike",
    "ScriptedApproval",
    "WidgetApproval",
    "approve",
    "as_policy",
    "deny",
    "get_default_approval",
    "set_default_approval",
]

log = logging.getLogger("claudekit.tools")

ENV_VAR = "CLAUDEKIT_APPROVAL"
GRACE_ENV_VAR = "CLAUDEKIT_APPROVAL_GRACE"
DEFAULT_GRACE_S = 5.0
# The waiting loop wakes this often. ipykernel delivers an interrupt with a plain ``call_soon`` from its
# SIGINT handler, which does not wake a sleeping event loop: without a tick, an interrupt during a wait
# would only be noticed at the next kernel message. A wake-up every quarter second costs microseconds.
_TICK_S = 0.25


# -- decisions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What to do with a tool call. Make one with :func:`approve` or :func:`deny`.

    ``arguments`` replaces the model's arguments (they are validated again before the call);
    ``always`` approves this tool for the rest of the chat; ``by`` says who decided (shown in the card).
    """

    approved: bool
    reason: str | None = None
    arguments: dict[str, Any] | None = None
    always: bool = False
    by: str = "policy"

    def describe(self) -> str:
        """One line for people: ``approved by you``, ``denied by CLAUDEKIT_APPROVAL=deny: …``."""
        if self.by == "cancellation":
            return f"not run: {self.reason or 'cancelled'}"
        verb = "approved" if self.approved else "denied"
        who = "you" if self.by == "user" else self.by
        text = f"{verb} by {who}"
        if self.approved and self.arguments is not None:
            text += " (with edited arguments)"
        if self.approved and self.always:
            text += "; this tool is now always allowed in this chat"
        if self.reason:
            text += f": {self.reason}"
        return text


def approve(arguments: dict[str, Any] | None = None, *, always: bool = False, by: str = "policy") -> Decision:
    """Approve a tool call, optionally with edited ``arguments`` or for every later call of the tool."""
    if arguments is not None and not isinstance(arguments, dict):
        raise ConfigError("approve(arguments=...) takes a dict of the tool's arguments")
    return Decision(True, arguments=arguments, always=always, by=by)


def deny(reason: str | None = None, *, by: str = "policy") -> Decision:
    """Deny a tool call; the model is told it was denied, with ``reason`` when given."""
    return Decision(False, reason=reason or None, by=by)


def _coerce_decision(value: Any, by: str) -> Decision:
    """What a callable or a script returned, as a Decision (True/False and "approve"/"deny" are accepted)."""
    if isinstance(value, Decision):
        return value if value.by != "policy" else replace(value, by=by)
    if value is True or value == "approve":
        return Decision(True, by=by)
    if value is False or value == "deny":
        return Decision(False, by=by)
    raise ConfigError(
        f"an approval policy returned {value!r}",
        hint="return claudekit.approve(), claudekit.deny(reason) or approve(arguments={...})",
    )


# -- a call waiting for a decision ---------------------------------------------------------------------


class ToolSpec(Protocol):
    """What a pending call needs of its :class:`~claudekit.Tool` (``_tools`` imports this module)."""

    @property
    def description(self) -> str: ...

    @property
    def input_schema(self) -> dict[str, Any]: ...

    def check_arguments(self, arguments: Any, *, strict: bool = False) -> str | None: ...


class PendingCall:
    """A tool call that needs a decision: what :class:`~claudekit.ApprovalRequest` carries.

    A renderer that can show it calls :meth:`claim` (then a person decides through the widget);
    anything may decide with :meth:`approve` / :meth:`deny` / :meth:`decide`, from any thread.
    The first decision wins; later ones are ignored.
    """

    def __init__(self, call: ToolCall, tool: ToolSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.call = call
        self.tool = tool
        self.id = call.id
        self.name = call.name
        self.arguments: dict[str, Any] = copy.deepcopy(call.input)
        self.group: tuple[PendingCall, ...] = (self,)
        self._loop = loop
        self._future: asyncio.Future[Decision] = loop.create_future()
        self._lock = threading.Lock()
        self._decision: Decision | None = None
        self._claimed = False
        self._tracked = False
        self._views = 0
        self._max_views = 0
        self._seen: asyncio.Future[None] = loop.create_future()
        # Set (with why) when a page reconnected and no view of this call came back: nobody can decide.
        self._lost: asyncio.Future[str] = loop.create_future()
        self._listeners: list[Callable[[PendingCall], None]] = []

    @property
    def input(self) -> dict[str, Any]:
        """The arguments the model asked for (same as :attr:`arguments`, named like ``ToolCall.input``)."""
        return self.arguments

    # what a view needs
    @property
    def description(self) -> str:
        return self.tool.description

    @property
    def schema(self) -> dict[str, Any]:
        return self.tool.input_schema

    @property
    def decision(self) -> Decision | None:
        return self._decision

    @property
    def done(self) -> bool:
        return self._decision is not None

    @property
    def claimed(self) -> bool:
        return self._claimed

    def claim(self) -> bool:
        """Take responsibility for deciding (a renderer showing the widget). False if already claimed."""
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def validate(self, arguments: Any) -> str | None:
        """Why ``arguments`` (a person's edit) would be rejected, or None when they are valid.

        Strictly: ``"force": "yes"`` for a boolean is a problem, not ``True`` (what you typed is what runs).
        """
        return self.tool.check_arguments(arguments, strict=True)

    # deciding
    def decide(self, decision: Decision) -> bool:
        """Record a decision (thread-safe). Returns False when the call was already decided."""
        with self._lock:
            if self._decision is not None:
                return False
            self._decision = decision
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._resolve, decision)
        return True

    def approve(self, arguments: dict[str, Any] | None = None, *, always: bool = False) -> bool:
        return self.decide(approve(arguments, always=always, by="user"))

    def deny(self, reason: str | None = None) -> bool:
        return self.decide(deny(reason, by="user"))

    def on_decided(self, callback: Callable[[PendingCall], None]) -> None:
        """Call ``callback(self)`` on the event loop once decided (at once if it already is)."""
        if self._future.done():
            callback(self)
        else:
            self._listeners.append(callback)

    def _resolve(self, decision: Decision) -> None:
        if not self._future.done():
            self._future.set_result(decision)
        listeners, self._listeners = self._listeners, []
        for cb in listeners:
            try:
                cb(self)
            except Exception:  # a broken view must not break the tool loop
                log.exception("approval listener failed")

    # what the widget reports about its views in the frontend
    def track_views(self) -> None:
        """A widget that reports its frontend views (``_view_count``) shows this call."""
        self._tracked = True

    def views_changed(self, count: int) -> None:
        """The frontend shows ``count`` views of the widget (thread-safe)."""
        with self._lock:
            self._views = count
            self._max_views = max(self._max_views, count)
            closed = count == 0 and self._max_views > 0
        try:
            if count > 0:
                self._loop.call_soon_threadsafe(_set_once, self._seen)
        except RuntimeError:
            return
        if closed:
            self.decide(
                deny("the approval prompt was closed (cell re-run or output cleared)", by="closed prompt")
            )

    def page_reconnected(self, grace: float | None = None) -> None:
        """A page reconnected (a reload): forget the views; if none comes back within ``grace`` seconds,
        the wait ends and the policy's unattended fallback decides (thread-safe)."""
        wait = reconnect_grace() if grace is None else grace
        with self._lock:
            self._views = 0
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._loop.call_later, wait, self._check_lost, wait)

    def _check_lost(self, grace: float) -> None:
        with self._lock:
            gone = self._views == 0 and self._decision is None
        if gone and not self._lost.done():
            self._lost.set_result(
                f"the page was reloaded and the approval card did not come back within {grace:g} s"
            )

    def _cancel(self, why: str) -> None:
        """The turn ends without a decision (interrupt, re-run): deny so that the view updates."""
        self.decide(Decision(False, reason=why, by="cancellation"))

    def __repr__(self) -> str:
        state = self._decision.describe() if self._decision else "pending"
        return f"PendingCall({self.name!r}, {self.arguments!r}, {state})"


def _set_once(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _wait(fut: asyncio.Future[Any], timeout: float | None = None, *, also: Any = None) -> bool:
    """Wait for ``fut`` (or ``also``) without spinning; True when one is done. Cancellable; wakes every
    _TICK_S (see there)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    futures = [fut] if also is None else [fut, also]
    while not any(f.done() for f in futures):
        step = _TICK_S if deadline is None else min(_TICK_S, deadline - loop.time())
        if step <= 0:
            return False
        await asyncio.wait(futures, timeout=step, return_when=asyncio.FIRST_COMPLETED)
    return True


def reconnect_grace() -> float:
    """How long a reconnected page has to show a waiting card again (``CLAUDEKIT_APPROVAL_GRACE``)."""
    env = os.environ.get(GRACE_ENV_VAR, "").strip()
    try:
        return float(env) if env else DEFAULT_GRACE_S
    except ValueError:
        return DEFAULT_GRACE_S


# -- policies ------------------------------------------------------------------------------------------


class ApprovalPolicy:
    """Decides tool calls that need approval. Subclass and override :meth:`decide`, or pass a callable."""

    interactive = False
    label = "policy"

    async def prepare(self, pending: tuple[PendingCall, ...]) -> None:
        """Called once for the calls of one step, after renderers had the chance to claim them."""

    async def decide(self, pending: PendingCall) -> Decision:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<approval policy {self.label}>"


class _Auto(ApprovalPolicy):
    def __init__(self, source: str = "auto") -> None:
        self.label = source

    async def decide(self, pending: PendingCall) -> Decision:
        return Decision(True, by=self.label)


class _Deny(ApprovalPolicy):
    def __init__(self, source: str = "deny", reason: str | None = None) -> None:
        self.label = source
        self.reason = reason

    async def decide(self, pending: PendingCall) -> Decision:
        return Decision(False, reason=self.reason, by=self.label)


class _Callable(ApprovalPolicy):
    def __init__(self, fn: Callable[[PendingCall], Any]) -> None:
        self.fn = fn
        self.label = getattr(fn, "__name__", "callable policy")

    async def decide(self, pending: PendingCall) -> Decision:
        out = self.fn(pending)
        if inspect.isawaitable(out):
            out = await out
        return _coerce_decision(out, self.label)


class ScriptedApproval(ApprovalPolicy):
    """Decisions from a queue, in order, for tests: ``ScriptedApproval([approve(), deny("no"), True])``.

    ``asked`` lists every call it was asked about. When the queue runs out, calls are denied.
    """

    label = "script"

    def __init__(self, decisions: Iterable[Decision | bool | str]) -> None:
        self.queue: list[Decision | bool | str] = list(decisions)
        self.asked: list[PendingCall] = []

    async def decide(self, pending: PendingCall) -> Decision:
        self.asked.append(pending)
        if not self.queue:
            log.warning("approval script ran out of decisions: denying %s", pending.name)
            return Decision(False, reason="the approval script ran out of decisions", by=self.label)
        return _coerce_decision(self.queue.pop(0), self.label)


class WidgetApproval(ApprovalPolicy):
    """A person decides in the notebook; nobody there (no widget frontend) means the ``fallback`` decides.

    A view of the approval widget that reaches a frontend reports itself (ipywidgets' ``_view_count``);
    if none does within ``grace`` seconds the frontend is taken to be absent (nbval, a script) and the
    fallback decides. ``grace=None`` waits for a person forever (still cancellable by an interrupt).
    ``fallback`` is ``"deny"`` unless ``CLAUDEKIT_APPROVAL`` says ``auto``.
    """

    interactive = True
    label = "widget"

    def __init__(self, *, grace: float | None = -1.0, fallback: PolicyLike | None = None) -> None:
        if grace is not None and grace < 0:
            env = os.environ.get(GRACE_ENV_VAR, "").strip()
            try:
                grace = float(env) if env else DEFAULT_GRACE_S
            except ValueError:
                raise ConfigError(f"{GRACE_ENV_VAR}={env!r} is not a number of seconds") from None
        self.grace = grace
        self._fallback = None if fallback is None else as_policy(fallback)
        if isinstance(self._fallback, WidgetApproval):
            raise ConfigError("the widget policy's fallback cannot be the widget policy")

    def fallback(self) -> ApprovalPolicy:
        if self._fallback is not None:
            return self._fallback
        env = os.environ.get(ENV_VAR, "").strip().lower()
        if env in ("auto", "deny"):
            return as_policy(env, source=f"{ENV_VAR}={env}")
        default = _default
        if default is not None and not isinstance(default, WidgetApproval):
            return default
        return _Deny(_UNATTENDED)

    async def prepare(self, pending: tuple[PendingCall, ...]) -> None:
        """Hand the calls no renderer claimed to the registered presenter (the notebook's card), if any."""
        unclaimed = tuple(p for p in pending if not p.claimed)
        presenter = _render.get_approval_presenter()
        if unclaimed and presenter is not None:
            presenter(unclaimed)

    async def decide(self, pending: PendingCall) -> Decision:
        """Wait for the person when a widget shows the call; else (or when no view appears) the fallback."""
        if pending.claimed:
            tracked = pending._tracked and self.grace is not None
            if tracked and not await _wait(pending._seen, self.grace) and not pending.done:
                return await self._fall_back(
                    pending, f"no widget frontend showed the prompt within {self.grace:g} s"
                )
            await _wait(pending._future, also=pending._lost)
            if pending._future.done() or pending.done:
                await _wait(pending._future)
                return pending._future.result()
            return await self._fall_back(pending, pending._lost.result(), tell=True)
        return await self._fall_back(pending, "no widget frontend")

    async def _fall_back(self, pending: PendingCall, why: str, *, tell: bool = False) -> Decision:
        """The fallback's decision, said once; ``tell``: the card and the model also get ``why``."""
        policy = self.fallback()
        decision = await policy.decide(pending)
        verb = "approving" if decision.approved else "denying"
        # The default says how to change it: nobody chose it, so nobody may know the knobs.
        how = f' (to run them: Chat(approval="auto") or {ENV_VAR}=auto)'
        how = how if policy.label == _UNATTENDED else ""
        say_once(f"{why}: {verb} tool calls by {policy.label}{how}", key=why)
        if tell and not decision.reason:
            decision = replace(decision, reason=why)
        return decision


PolicyLike: TypeAlias = (
    "str | ApprovalPolicy | Callable[[PendingCall], Decision | bool | Awaitable[Decision | bool]]"
)

_NAMES = ("widget", "auto", "deny")
_UNATTENDED = "the unattended default"
_default: ApprovalPolicy | None = None


def say_once(message: str, *, key: str | None = None) -> None:
    _say_once(message, key=key, logger=log)


def as_policy(value: PolicyLike, *, source: str | None = None) -> ApprovalPolicy:
    """``"widget"``, ``"auto"``, ``"deny"``, an :class:`ApprovalPolicy` or a callable, as a policy."""
    if isinstance(value, ApprovalPolicy):
        return value
    if isinstance(value, str):
        name = value.strip().lower()
        if name == "auto":
            return _Auto(source or "auto")
        if name == "deny":
            return _Deny(source or "deny")
        if name == "widget":
            return WidgetApproval()
        raise ConfigError(
            f"unknown approval policy {value!r}",
            hint=f"use one of {', '.join(_NAMES)}, a callable, or claudekit.ScriptedApproval([...])",
        )
    if callable(value):
        return _Callable(value)
    raise ConfigError(
        f"cannot use {value!r} as an approval policy", hint="pass 'widget', 'auto', 'deny' or a callable"
    )


def set_default_approval(policy: PolicyLike | None) -> None:
    """The approval policy of chats created without ``approval=`` (None: back to the environment/widget)."""
    global _default
    _default = None if policy is None else as_policy(policy, source="set_default_approval")


def get_default_approval() -> ApprovalPolicy:
    """The policy for chats without ``approval=``: set_default_approval, CLAUDEKIT_APPROVAL, else widget."""
    if _default is not None:
        return _default
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        policy = as_policy(env, source=f"{ENV_VAR}={env.lower()}")
        if not isinstance(policy, WidgetApproval):
            say_once(
                f"{'approving' if isinstance(policy, _Auto) else 'denying'} tool calls by {ENV_VAR}={env}"
            )
        return policy
    return WidgetApproval()


def resolve_policy(value: PolicyLike | None) -> ApprovalPolicy:
    return get_default_approval() if value is None else as_policy(value)

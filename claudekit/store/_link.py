"""How a :class:`claudekit.Chat` is kept in the store and brought back.

The chat calls :func:`attach` once and :func:`commit` at the end of each turn; :func:`restore` builds the
keyword arguments and state of a chat from its stored row so that its next request is the one the old kernel
would have sent: the same settings, the same messages (JSON round-trips keep key order), the same
``diagnostics.previous_message_id``. Python objects cannot be stored: tools and the approval policy are
passed again to ``Chat.resume``; a pydantic ``output_format`` comes back as the JSON schema it was sent as.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from .._base._secrets import remember_client
from . import _context
from ._open import get_store
from ._paths import mode
from ._query import AmbiguousChatError, StoredChat, load_chat
from ._store import ChatState

if TYPE_CHECKING:
    from .._runner._chat import Chat

__all__ = ["attach", "chat_state", "commit", "keep_call", "on_chat", "restore_settings", "resume"]

_log = logging.getLogger("claudekit.store")
# Settings that are Python objects or transport options rather than part of what is sent.
_OBJECT_SETTINGS = ("output_format",)


def _store() -> Any:
    return get_store()


def on_chat(action: str, chat: Chat) -> None:
    """The chat's lifecycle, heard through claudekit._seams: "attach" at a new conversation, "commit" after
    each turn."""
    {"attach": attach, "commit": commit}[action](chat)


def keep_call(record: Any) -> None:
    """Every usage record of the session goes to the store too (unless CLAUDEKIT_STORE=off)."""
    store = get_store()
    if store is not None:
        store.add_call(record)


def resume(cls: type[Chat], name_or_id: str, overrides: dict[str, Any]) -> Chat:
    """``Chat.resume``: the stored chat with its settings and conversation (see its docstring)."""
    from .._request._history import History

    stored = load(name_or_id)
    chat = cls(**restore_settings(stored, overrides))
    chat.history = History(stored.messages, system=chat.settings.system)
    chat._last_message_id = stored.state.get("last_message_id")
    chat._turn = int(stored.state.get("turn") or 0)
    attach(chat, stored.id)
    check_tools(stored, chat)
    return chat


def attach(chat: Chat, store_id: str | None = None) -> None:
    """Give the chat its store id and link its usage records to it; remember its client's key to redact."""
    chat.store_id = store_id or uuid.uuid4().hex[:16]
    remember_client(chat.client)
    store = _store()
    if store is not None:
        store.register_chat(chat.name, chat.store_id)


def settings_dict(chat: Chat) -> dict[str, Any]:
    """The chat's settings as JSON values (a pydantic output_format as the schema it is sent as)."""
    from .._request._settings import output_schema

    out: dict[str, Any] = {}
    for f in dataclasses.fields(chat.settings):
        value = getattr(chat.settings, f.name)
        if f.name == "output_format" and value is not None:
            value = output_schema(value)
        out[f.name] = value
    return out


def chat_state(chat: Chat, *, with_messages: bool = True) -> ChatState:
    """What the store keeps of ``chat`` now."""
    assert chat.store_id is not None, "attach() the chat first"
    messages = None
    if with_messages:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
        messages = tuple(dumps(m) for m in chat.history.messages)
    return ChatState(
        id=chat.store_id,
        name=chat.name,
        model=chat.settings.model,
        settings=settings_dict(chat),
        tools=chat.toolset.params(),
        state={
            "turn": chat._turn,
            "last_message_id": chat._last_message_id,
            "max_steps": chat.max_steps,
            "budget_usd": chat.budget_usd,
            "backend": chat.backend,
        },
        messages=messages,
        cell=_context.cell(),
    )


def commit(chat: Chat) -> None:
    """Queue the chat's state for writing (cheap: the messages are serialised here, written elsewhere)."""
    store = _store()
    if store is None or chat.store_id is None:
        return
    store.register_chat(chat.name, chat.store_id)
    try:
        state = chat_state(chat, with_messages=store.keep_content)
    except (TypeError, ValueError) as exc:  # something in the history that JSON cannot hold
        _log.warning("claudekit.store: chat %r not saved (%s)", chat.name, exc)
        return
    store.save_chat(state)


def restore_settings(stored: StoredChat, overrides: dict[str, Any]) -> dict[str, Any]:
    """Chat keyword arguments for ``stored``, with ``overrides`` (what the caller passed) winning."""
    from .._request._settings import Settings

    known = {f.name for f in dataclasses.fields(Settings)}
    kwargs = {k: v for k, v in (stored.settings or {}).items() if k in known}
    for name in _OBJECT_SETTINGS:
        if name in overrides:
            kwargs.pop(name, None)
    state = stored.state
    if state.get("max_steps") is not None:
        kwargs["max_steps"] = state["max_steps"]
    if state.get("budget_usd") is not None:
        kwargs["budget_usd"] = state["budget_usd"]
    kwargs.update(overrides)
    kwargs.setdefault("name", stored.name)
    return kwargs


def load(name_or_id: str) -> StoredChat:
    """The stored chat, with a one-line error saying what to do when it cannot be resumed."""
    from .._base._errors import ConfigError

    try:
        stored = load_chat(name_or_id)
    except AmbiguousChatError as exc:
        raise ConfigError(str(exc), hint="resume one by its id: Chat.resume(ID)") from None
    except LookupError as exc:
        off = mode() == "off"
        hint = "set CLAUDEKIT_STORE=on (or unset it) to keep chats from now on" if off else ""
        raise ConfigError(str(exc), hint=hint or "claudekit.chats() lists the stored chats") from None
    if stored.settings is None:
        raise ConfigError(
            f"chat {stored.name!r} was stored without its conversation (CLAUDEKIT_STORE=usage)",
            hint="only chats stored with CLAUDEKIT_STORE=on can be resumed",
        )
    return stored


def check_tools(stored: StoredChat, chat: Chat) -> None:
    """Warn once when the resumed chat's tools are not the stored ones (its requests would differ)."""
    before = stored.tools or []
    now = chat.toolset.params()
    if _canonical(before) == _canonical(now):
        return
    names = ", ".join(str(t.get("name")) for t in before) or "none"
    _log.warning(
        "claudekit: chat %r was stored with tools (%s) that differ from the ones given now; pass "
        "tools=[...] to Chat.resume for the same requests",
        stored.name,
        names,
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)

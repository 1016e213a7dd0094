"""A local SQLite store of usage and conversations, shared by every kernel on the machine.

On by default: one file, ``$CLAUDEKIT_HOME/claudekit.db`` (default: the user's data directory, e.g.
``~/.local/share/claudekit``). ``CLAUDEKIT_STORE=usage`` keeps usage without any content (no prompts,
answers, system prompts or tool definitions); ``CLAUDEKIT_STORE=off`` keeps nothing.

Tables (schema version in ``PRAGMA user_version``, migrations in ``_migrations``): ``sessions`` (one per
kernel), ``chats`` (name, model, settings, tools), ``messages`` (each chat's history as Messages API
params, in order, searchable with FTS5), ``calls`` (one row per usage record, with the notebook path
from ``JPY_SESSION_NAME`` and the cell's execution count). API keys and key-shaped strings are replaced
by ``[redacted]`` before anything is written. ``uploads`` (outside the migrations, see ``_uploads``) remembers
Files API uploads by content hash and base URL, with the store fully on.

Layer: above ``_runner`` and usage, which never import it: on import it registers itself with
``claudekit._seams`` (a chat's attach/commit, each usage record, ``Chat.resume``, ``usage.history()``).
"""

from __future__ import annotations

from .. import _seams
from ._link import keep_call, on_chat, resume
from ._open import flush, get_store
from ._paths import DB_NAME, db_path, default_home, home, mode
from ._query import StoredChat, chats, load_chat, query_calls, search
from ._schema import SCHEMA_VERSION, migrate
from ._scrub import REDACTED, add_secret, scrub
from ._store import ChatState, Store, StoreError, StoreWarning
from ._uploads import forget as _forget_upload
from ._uploads import listing as _list_uploads
from ._uploads import recall as _recall_upload
from ._uploads import remember as _remember_upload

__all__ = [
    "DB_NAME",
    "REDACTED",
    "SCHEMA_VERSION",
    "ChatState",
    "Store",
    "StoreError",
    "StoreWarning",
    "StoredChat",
    "add_secret",
    "chats",
    "db_path",
    "default_home",
    "flush",
    "get_store",
    "home",
    "load_chat",
    "migrate",
    "mode",
    "query_calls",
    "scrub",
    "search",
]

# The store listens to the core through the seams; the core never imports it.
_seams.chat_listeners.append(on_chat)
_seams.usage_listeners.append(keep_call)
_seams.store_hooks.update(resume=resume, query_calls=query_calls)
_seams.store_hooks.update(
    upload_recall=_recall_upload,
    upload_remember=_remember_upload,
    upload_forget=_forget_upload,
    upload_list=_list_uploads,
)

"""claudekit: Claude in the notebook.

Typed streaming on the official ``anthropic`` SDK, live widgets, tool approval, usage and cache
analytics, and an offline backend so that everything runs without an API key.

Layers, each importing only those below it (``lint-imports`` checks it; README "Layout")::

    notebook > frame > store > _runner > usage > _tooling > _request > offline > _base > _seams

This module only re-exports the public API.
"""

from __future__ import annotations

# Public subpackages; importing notebook registers the live renderer with the core (cheap: no ipywidgets).
from . import _base, mcp, notebook, store, usage
from ._base import _excepthook
from ._base._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    BusyError,
    CassetteMissError,
    ClaudekitError,
    ConfigError,
    IncompleteStreamError,
    MalformedStreamError,
    MissingAPIKeyError,
    NetworkError,
    OutputFormatError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamError,
    TimeoutError,
)
from ._base._events import (
    ApprovalRequest,
    Citation,
    Event,
    MessageDone,
    MessageStart,
    RedactedThinking,
    ServerToolBlock,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallReady,
    ToolCallStart,
    ToolResult,
    UnknownEvent,
    Usage,
    UsageUpdate,
)
from ._base._reply import Reply, Step, ToolCall
from ._request._content import Image
from ._request._documents import Document
from ._request._history import History
from ._request._search import SearchResult
from ._request._settings import DEFAULT_MODEL, Settings
from ._runner._chat import Chat, ReplyStream
from ._runner._files import File, files, upload
from ._tooling._approval import (
    ApprovalPolicy,
    Decision,
    PendingCall,
    ScriptedApproval,
    WidgetApproval,
    approve,
    deny,
    get_default_approval,
    set_default_approval,
)
from ._tooling._server_tools import code_execution, web_fetch, web_search
from ._tooling._tools import Tool, ToolError, tool
from .frame import BatchJob, batch, map
from .notebook import configure as configure_rendering
from .notebook import load_ipython_extension, unload_ipython_extension
from .store import chats, search

_excepthook.install()  # a script ended by a claudekit error: its one line first

__version__ = _base.__version__

__all__ = [
    "DEFAULT_MODEL",
    "APIError",
    "ApprovalPolicy",
    "ApprovalRequest",
    "AuthenticationError",
    "BadRequestError",
    "BatchJob",
    "BudgetExceededError",
    "BusyError",
    "CassetteMissError",
    "Chat",
    "Citation",
    "ClaudekitError",
    "ConfigError",
    "Decision",
    "Document",
    "Event",
    "File",
    "History",
    "Image",
    "IncompleteStreamError",
    "MalformedStreamError",
    "MessageDone",
    "MessageStart",
    "MissingAPIKeyError",
    "NetworkError",
    "OutputFormatError",
    "OverloadedError",
    "PendingCall",
    "RateLimitError",
    "RedactedThinking",
    "Reply",
    "ReplyStream",
    "ScriptedApproval",
    "SearchResult",
    "ServerError",
    "ServerToolBlock",
    "Settings",
    "Step",
    "StreamError",
    "TextDelta",
    "ThinkingDelta",
    "ThinkingSignature",
    "TimeoutError",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallReady",
    "ToolCallStart",
    "ToolError",
    "ToolResult",
    "UnknownEvent",
    "Usage",
    "UsageUpdate",
    "WidgetApproval",
    "approve",
    "batch",
    "chats",
    "code_execution",
    "configure_rendering",
    "deny",
    "files",
    "get_default_approval",
    "load_ipython_extension",
    "map",
    "mcp",
    "notebook",
    "search",
    "set_default_approval",
    "store",
    "tool",
    "unload_ipython_extension",
    "upload",
    "usage",
    "web_fetch",
    "web_search",
]

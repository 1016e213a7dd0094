"""One line for a failed or interrupted reply in a cell, instead of a wall of traceback.

:func:`install` registers an IPython custom exception handler (``shell.set_custom_exc``) for
claudekit's errors and for interrupts that stopped a claudekit reply. It shows one line — what
happened, what to do, and "``%tb`` for details" — under the reply's saved copy, and keeps the full
traceback for ``%tb`` (``sys.last_*``). Other exceptions are shown as IPython always shows them. It is
installed by ``%load_ext claudekit`` and by the first live view in a kernel, unless the user has a
custom handler of their own; then (:func:`hook_active` is False) the saved copy carries the error line.

claudekit's log lines (a tool that raised, a policy that decided for nobody) reach the cell through
:class:`OneLineLog` instead of logging's last-resort handler: one line each, and a tool's traceback for
``%tb`` instead of in the cell. It is only added when nobody configured logging.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from types import TracebackType
from typing import Any

from .._base._errors import ClaudekitError

__all__ = ["OneLineLog", "hook_active", "install", "one_line", "uninstall"]

_RED = "\x1b[0;31m"
_RESET = "\x1b[0m"
_TYPES: tuple[type[BaseException], ...] = (ClaudekitError, asyncio.CancelledError, KeyboardInterrupt)


def _from_claudekit(tb: TracebackType | None) -> bool:
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("claudekit."):
            return True
        tb = tb.tb_next
    return False


def one_line(value: BaseException) -> str:
    """The line shown for a claudekit error or an interrupted reply."""
    if isinstance(value, ClaudekitError):
        what = " ".join(str(value).split()) or type(value).__name__
        return f"{_RED}{type(value).__name__}{_RESET}: {what} · %tb for details"
    return (
        f"{_RED}Interrupted{_RESET}: the reply stopped; the partial answer is kept (chat.last_reply) "
        "and the conversation continues · %tb for details"
    )


def _handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: Any = None,
) -> list[str]:
    if not isinstance(value, ClaudekitError) and not _from_claudekit(tb):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return []
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # what %tb shows
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    stb = [one_line(value)]
    shell._showtraceback(etype, value, stb)
    return []


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


class OneLineLog(logging.Handler):
    """claudekit's warnings and errors as one line on stderr; a traceback is kept for ``%tb``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split())
            if record.exc_info and record.exc_info[1] is not None:
                etype, value, tb = record.exc_info
                sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
                # The exception's own message may span lines (a tool's error): still one line here.
                text += f": {' '.join(str(value).split())} (the model was told) · %tb for details"
            if not text.startswith("claudekit"):
                text = f"claudekit: {text}"
            sys.stderr.write(text + "\n")
        except Exception:
            self.handleError(record)


def _quiet_logs() -> None:
    logger = logging.getLogger("claudekit")
    if logger.handlers or logging.getLogger().handlers:
        return  # logging is configured: leave it alone
    logger.addHandler(OneLineLog())


def install(shell: Any = None) -> bool:
    """Register the handler on ``shell`` (the running one by default); False when another is set."""
    shell = shell if shell is not None else _shell()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    _quiet_logs()
    if getattr(shell, "_claudekit_exc", False):
        return True
    if tuple(getattr(shell, "custom_exceptions", ()) or ()):
        return False  # the user's own handler stays
    shell.set_custom_exc(_TYPES, _handler)
    shell._claudekit_exc = True
    return True


def uninstall(shell: Any) -> None:
    if getattr(shell, "_claudekit_exc", False):
        shell.set_custom_exc((), None)
        shell._claudekit_exc = False


def hook_active() -> bool:
    """True when the running shell shows claudekit's errors as one line (the saved copy then omits them)."""
    shell = _shell()
    return bool(
        shell is not None
        and getattr(shell, "_claudekit_exc", False)
        and tuple(getattr(shell, "custom_exceptions", ()) or ()) == _TYPES
    )

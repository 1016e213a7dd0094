"""One plain line before the traceback a script ends with, when a claudekit error is what ended it.

Python prints a traceback for an uncaught exception; for a claudekit error the line that says what
happened and what to do would come last, under frames of claudekit's insides. :func:`install` wraps
``sys.excepthook`` (keeping whatever hook was there) so that ``claudekit: Type: message`` comes first;
an error the script catches prints nothing. IPython shows cell errors its own way and never calls it.
"""

from __future__ import annotations

import sys
from types import TracebackType

from ._errors import ClaudekitError

__all__ = ["install", "mark_said"]

_SAID = "_claudekit_said"  # set on an error whose line was already printed (a script's text view)


def mark_said(error: BaseException) -> None:
    """The error's one line is on stderr already: the hook does not print it again."""
    setattr(error, _SAID, True)


def install() -> None:
    """Wrap the current ``sys.excepthook`` once per process."""
    previous = sys.excepthook
    if getattr(previous, _SAID, False):
        return

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if isinstance(error, ClaudekitError) and not getattr(error, _SAID, False):
            try:
                sys.stderr.write(f"claudekit: {kind.__name__}: {' '.join(str(error).split())}\n")
                sys.stderr.flush()
            except Exception:  # a closed stderr: the traceback below is still Python's to try
                pass
        previous(kind, error, tb)

    setattr(hook, _SAID, True)  # marks the hook as claudekit's, so a second install is a no-op
    sys.excepthook = hook

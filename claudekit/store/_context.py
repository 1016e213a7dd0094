"""Where a record comes from: this process's session, the notebook, the cell being run."""

from __future__ import annotations

import os
import sys
import uuid

__all__ = ["SESSION_ID", "cell", "notebook"]

#: One id per process (kernel), written with every row.
SESSION_ID = uuid.uuid4().hex[:16]


def notebook() -> str | None:
    """The notebook's path when the kernel knows it: Jupyter Server sets ``JPY_SESSION_NAME``."""
    return os.environ.get("JPY_SESSION_NAME") or None


def cell() -> int | None:
    """The execution count of the cell running now (IPython's ``In[n]``), or None outside IPython.

    IPython is never imported here: if nobody imported it, this is not a notebook."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    count = getattr(shell, "execution_count", None) if shell is not None else None
    # IPython counts the cell as run when it starts: while In[n] runs, execution_count is already n + 1
    # (ipykernel replies with execution_count - 1 for the same reason).
    return count - 1 if isinstance(count, int) and count > 1 else None

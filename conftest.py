"""Loaded by pytest for every test path (tests/ and the nbval notebooks in notebooks/).

The store is on by default: this points it at a temporary directory for this process and for everything
that inherits its environment (real kernels, nbval's kernels, nbconvert subprocesses), before claudekit is
imported, so that no test writes to the user's data directory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_home = tempfile.mkdtemp(prefix="claudekit-test-home-")
os.environ["CLAUDEKIT_HOME"] = _home
os.environ.pop("CLAUDEKIT_STORE", None)
atexit.register(shutil.rmtree, _home, ignore_errors=True)

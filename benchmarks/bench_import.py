"""Import cost: ``import claudekit`` against ``import anthropic`` (which it needs), side by side.

Each import runs in a fresh interpreter, interleaved, and the bare interpreter's start-up is taken off
both. Target: claudekit <= 1.2x anthropic (pandas, matplotlib and ipywidgets load on first use).

Run: python benchmarks/bench_import.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(__file__), "..")
HEAVY = ("pandas", "matplotlib", "numpy", "ipywidgets", "IPython")


def cpu_seconds(code: str) -> float:
    """CPU time of a fresh interpreter running ``code`` (user + system, so neighbours do not count)."""
    before = os.times()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main(runs: int = 9) -> None:
    samples: dict[str, list[float]] = {"pass": [], "import anthropic": [], "import claudekit": []}
    for _ in range(runs):
        for code in samples:
            samples[code].append(cpu_seconds(code))
    bare, sdk, ours = (min(samples[c]) for c in samples)
    ratio = (ours - bare) / (sdk - bare)
    print(f"bare interpreter {bare:.3f} s; import anthropic {sdk - bare:.3f} s; ", end="")
    print(f"import claudekit {ours - bare:.3f} s")
    print(f"claudekit/anthropic {ratio:.2f}x (target <= 1.2x), best of {runs} CPU-time runs each")
    probe = f"import sys, claudekit; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, cwd=ROOT, capture_output=True, text=True
    )
    print(f"heavy modules loaded by `import claudekit`: {loaded.stdout.strip() or 'none'}")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import claudekit; claudekit.Chat(backend='offline').usage.df"],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    print(f"first use of the usage DataFrame (pandas loads then): {time.perf_counter() - started:.2f} s wall")


if __name__ == "__main__":
    main()

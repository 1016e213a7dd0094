"""Benchmark of claudekit._base._markup: the cost of making an answer safe HTML (once per reply, when the live
view becomes the saved copy, and per display of a Reply), beside the floor of escaping it as plain text.

Run: python benchmarks/bench_markup.py
Target: a typical answer (a few KB) costs well under the time it took to stream (tens of ms at least);
printed per answer size: markdown_html, then html.escape (no Markdown at all), and their ratio.
"""

from __future__ import annotations

import html
import statistics
import time

from claudekit._base._markup import markdown_html

UNIT = (
    "Some **bold** text with `code` and a [link](https://example.org).\n\n- one\n- two\n\n"
    "```python\nprint('x')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
)


def median_s(fn: object, arg: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(arg)  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    markdown_html(UNIT)  # parser and sanitiser built once per process
    print(f"{'answer':>10} {'markdown_html':>14} {'html.escape':>12} {'ratio':>7}")
    for kb in (1, 5, 20, 60):
        text = (UNIT * (kb * 1024 // len(UNIT) + 1))[: kb * 1024]
        runs = 20 if kb <= 5 else 5
        safe = median_s(markdown_html, text, runs)
        floor = median_s(html.escape, text, runs)
        print(f"{kb:>7} KB {safe * 1000:>11.2f} ms {floor * 1000:>9.3f} ms {safe / floor:>6.0f}x")


if __name__ == "__main__":
    main()

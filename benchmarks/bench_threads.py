"""Benchmark message threads in ``Chat``: bytes sent per turn and time to first token over a 50-turn tool
session against the offline server (loopback HTTP, thread expiry on the backend's clock), with and without
threads. Run: ``python benchmarks/bench_threads.py``. Prints figures side by side; asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Mapping
from typing import Any

import claudekit as ck
from claudekit.offline import OfflineBackend

TURNS = 50
SYSTEM = "You are a careful analyst of a long notebook session. " * 60


def lookup(term: str) -> str:
    """Look a term up in the notebook's glossary."""
    return f"{term}: a glossary entry of some length, " * 8


class _Counting(OfflineBackend):
    """Counts the bytes of each /v1/messages request as it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        if method == "POST" and path.startswith("/v1/messages") and "count_tokens" not in path:
            self.sent.append(len(body))
        return super().handle(method, path, headers, body)


async def _session(threads: bool, *, expire_at: int | None = None) -> tuple[list[int], list[float], int]:
    """(bytes per turn, ttft per step in ms, requests) of one session."""
    backend = _Counting()
    per_turn: list[int] = []
    ttfts: list[float] = []
    with backend.serve() as server:
        chat = ck.Chat(
            api_key="offline",
            base_url=server.base_url,
            render=False,
            system=SYSTEM,
            tools=[lookup],
            threads=threads,
        )
        for turn in range(1, TURNS + 1):
            if expire_at == turn:
                backend.advance(301)  # the thread expires: that turn goes out in full once
            before = sum(backend.sent)
            reply = await chat(f'Use lookup for term "t{turn}", then summarise')
            per_turn.append(sum(backend.sent) - before)
            ttfts += [s.ttft_s * 1000 for s in reply.steps if s.ttft_s is not None]
        await chat.aclose()
    return per_turn, ttfts, len(backend.sent)


async def main() -> None:
    full, full_ttft, full_n = await _session(False)
    thr, thr_ttft, thr_n = await _session(True)
    exp, exp_ttft, exp_n = await _session(True, expire_at=25)
    print(f"== {TURNS}-turn tool session (2 requests a turn), loopback offline server")
    print(f"{'turn':>6} {'full history':>14} {'threads':>10} {'threads, expiry at 25':>22}   bytes sent")
    for t in (1, 2, 10, 25, 26, 50):
        print(f"{t:>6} {full[t - 1]:>14,} {thr[t - 1]:>10,} {exp[t - 1]:>22,}")
    ratio = sum(full) / sum(thr)
    print(f"{'total':>6} {sum(full):>14,} {sum(thr):>10,} {sum(exp):>22,}   ({ratio:.1f}x less with threads)")
    print(f"{'reqs':>6} {full_n:>14} {thr_n:>10} {exp_n:>22}")
    med = statistics.median
    print(
        f"time to first token, median ms: full {med(full_ttft):.2f}   threads {med(thr_ttft):.2f}   "
        f"with expiry {med(exp_ttft):.2f}"
    )
    last = slice(-20, None)
    print(f"... over the last 10 turns: full {med(full_ttft[last]):.2f}   threads {med(thr_ttft[last]):.2f}")


if __name__ == "__main__":
    asyncio.run(main())

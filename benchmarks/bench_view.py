"""Benchmark of the live notebook view: comm traffic and wall-time overhead, in a real kernel.

Run: ``python benchmarks/bench_view.py`` (from the repo root, in the venv). It starts an ipykernel with
jupyter_client and, for streams of 100, 1,000 and 10,000 text deltas served by a scripted in-memory SDK
transport, reports:

- the widget ``comm_msg`` updates the kernel sent on iopub during the cell (and per second of the cell),
  for a stream delivered as fast as possible and for a paced stream (~3 s long);
- the wall time of ``await chat(...)`` with the live view against ``render=False`` (kernel-side, median of
  several runs), i.e. the rendering overhead.

Targets: at most 20 updates/s whatever the delta count; overhead at most 1.10x.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.notebook.kernel import Kernel  # noqa: E402

SETUP = r"""
import asyncio, os, time
import httpx2
import claudekit, claudekit.notebook as nb
from tests.notebook.helpers import delta_body, delta_chat
from tests.conftest import sdk_client
os.environ.pop("CLAUDEKIT_RENDER", None)

def paced_chat(n, seconds):
    body = delta_body(n)
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    delay = seconds / len(events)

    async def handler(request):
        async def gen():
            for e in events:
                await asyncio.sleep(delay)
                yield e
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=gen())

    return claudekit.Chat(client=sdk_client(httpx2.MockTransport(handler)))

async def timed(chat, render, repeat):
    out = []
    for _ in range(repeat):
        chat.reset()
        t = time.perf_counter()
        await chat.stream("go", render=render)
        out.append(time.perf_counter() - t)
    return out
"""

REPEAT = 7


def comm_updates(run: object) -> int:
    return len(run.comm_updates())  # type: ignore[attr-defined]


def main() -> None:
    k = Kernel()
    try:
        k.ok(SETUP)
        print(
            f"{'deltas':>7} | {'mode':<7} | {'cell s':>7} | {'updates':>7} | {'upd/s':>6} | {'comm_open':>9}"
        )
        print("-" * 60)
        for n in (100, 1_000, 10_000):
            k.ok(f"c = delta_chat({n})")
            run = k.ok("r = await c('go')")
            ups = comm_updates(run)
            print(
                f"{n:>7} | {'instant':<7} | {run.seconds:7.3f} | {ups:>7} | {ups / run.seconds:6.1f} | "
                f"{len(run.of_type('comm_open')):>9}"
            )
            k.ok(f"p = paced_chat({n}, 3.0)")
            run = k.ok("r = await p('go')")
            ups = comm_updates(run)
            print(
                f"{n:>7} | {'paced':<7} | {run.seconds:7.3f} | {ups:>7} | {ups / run.seconds:6.1f} | "
                f"{len(run.of_type('comm_open')):>9}"
            )
        print()
        print(f"overhead of the live view: kernel-side time of `await chat.stream(...)`, median of {REPEAT},")
        print("stream delivered as fast as the SDK parses it (no network)")
        print(f"{'deltas':>7} | {'no view s':>9} | {'view s':>7} | {'ratio':>6} | {'extra ms':>8}")
        print("-" * 52)
        extra: dict[int, float] = {}
        for n in (100, 1_000, 10_000):
            k.ok(f"c = delta_chat({n})")
            k.ok("await timed(c, False, 2); await timed(c, None, 2)")  # warm up
            plain_times: list[float] = []
            view_times: list[float] = []
            for _ in range(REPEAT):  # interleaved, so that drift hits both alike
                plain_times.append(float(k.ok("(await timed(c, False, 1))[0]").results[0]["text/plain"]))
                view_times.append(float(k.ok("(await timed(c, None, 1))[0]").results[0]["text/plain"]))
            plain = statistics.median(plain_times)
            view = statistics.median(view_times)
            extra[n] = view - plain
            print(f"{n:>7} | {plain:9.4f} | {view:7.4f} | {view / plain:6.3f} | {1e3 * (view - plain):8.2f}")
        per_delta = (extra[10_000] - extra[100]) / 9_900
        fixed = extra[100] - 100 * per_delta
        print(
            f"=> fixed cost per reply ~{1e3 * fixed:.1f} ms (build, display, static output, close); "
            f"per delta ~{1e6 * per_delta:.2f} us"
        )
    finally:
        k.shutdown()


if __name__ == "__main__":
    main()

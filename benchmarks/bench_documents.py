"""Benchmark prompt caching over a 10-question chat about one PDF (issue 25): the share of input tokens
read from the cache, per turn and over the session, with the chat's default cache breakpoints.

Against the offline backend in process (its cache follows the service's rules: prefix hashing, minimum
cacheable length, 5-minute TTL; PDF tokens = text tokens + one page image estimate per page, see
docs/offline.md). Run: ``python benchmarks/bench_documents.py [PDF]`` (default: the notebooks' 3-page
report). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
from pathlib import Path

import pypdf

import claudekit as ck
from claudekit.offline import OfflineBackend

REPORT = Path(__file__).resolve().parent.parent / "notebooks" / "data" / "q3-report.pdf"
QUESTIONS = [
    "What was revenue growth in the third quarter?",
    "What is the main risk?",
    "How much of the currency exposure is hedged?",
    "What happened to costs?",
    "Which region grew fastest?",
    "What does the outlook say?",
    "Who approved the budget?",
    "When is the next board meeting?",
    "What are the capital expenditures?",
    "Summarise the report in one sentence.",
]


async def session(pdf: bytes) -> list[ck.Usage]:
    chat = ck.Chat(offline=OfflineBackend(), render=False)
    usages = []
    for n, question in enumerate(QUESTIONS):
        prompt = [ck.Document(pdf, title="q3-report.pdf"), question] if n == 0 else question
        reply = await chat(prompt)
        usages.append(reply.usage)
    return usages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pdf", nargs="?", default=str(REPORT), help="the PDF to ask about")
    args = parser.parse_args()
    os.environ.setdefault("CLAUDEKIT_HOME", tempfile.mkdtemp())  # keep the benchmark out of your store
    pdf = Path(args.pdf).read_bytes()
    pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    usages = asyncio.run(session(pdf))
    print(f"10 questions about one {pages}-page PDF (offline backend, default cache breakpoints)")
    print("turn  input  cache_write  cache_read  cached share")
    for n, u in enumerate(usages, 1):
        print(
            f"{n:>4}  {u.input_tokens or 0:>5}  {u.cache_creation_input_tokens or 0:>11}  "
            f"{u.cache_read_input_tokens or 0:>10}  {u.cache_hit_rate or 0.0:>11.1%}"
        )
    whole = ck.Usage.total(usages)
    print(
        f"session: {whole.cache_hit_rate or 0.0:.1%} of {whole.total_input_tokens:,} input tokens "
        f"read from the cache ({whole.cache_read_input_tokens or 0:,})"
    )


if __name__ == "__main__":
    main()

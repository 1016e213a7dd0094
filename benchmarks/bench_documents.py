"""Benchmark prompt caching over a 10-question chat about one PDF (issue 25): the share of input tokens
read from the cache, per turn and over the session, with the chat's default cache breakpoints.

Against the offline backend in process (its cache follows the service's rules: prefix hashing, minimum
cacheable length, 5-minute TTL; PDF tokens = text tokens + one page image estimate per page, see
docs/offline.md). Run: ``python benchmarks/bench_documents.py [--pages N]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

import claudekit as ck
from claudekit.offline import OfflineBackend

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


def make_pdf(pages: list[str]) -> bytes:
    """A PDF whose page i shows ``pages[i]`` as extractable Helvetica text (pypdf's own objects)."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 11 Tf 40 740 Td ({text}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def session(pages: int) -> list[ck.Usage]:
    lines = [
        "Revenue grew 12 percent in the third quarter. Costs were flat.",
        "The main risk is currency exposure in Europe. Hedging covers half of it.",
        "Asia grew fastest. The outlook is cautious. Capital expenditures were 40 million.",
        "The board approved the budget. The next board meeting is in March.",
    ]
    pdf = make_pdf([lines[i % len(lines)] for i in range(pages)])
    chat = ck.Chat(offline=OfflineBackend(), render=False)
    usages = []
    for n, question in enumerate(QUESTIONS):
        prompt = [ck.Document(pdf, title="q3-report.pdf"), question] if n == 0 else question
        reply = await chat(prompt)
        usages.append(reply.usage)
    return usages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("CLAUDEKIT_HOME", tempfile.mkdtemp())  # keep the benchmark out of your store
    usages = asyncio.run(session(args.pages))
    print(f"10 questions about one {args.pages}-page PDF (offline backend, default cache breakpoints)")
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

"""The Files API: the offline backend through the installed SDK over real HTTP, and claudekit.upload.

Expected values come from what the test uploaded (bytes, names, how many), never from the output.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pandas as pd
import pypdf
import pytest

import claudekit as ck
from claudekit.offline import OfflineBackend
from tests.documents.pdfs import make_pdf

MODEL = "claude-sonnet-4-6"
PAGES = ["Revenue grew 12 percent in the third quarter.", "The main risk is currency exposure in Europe."]


@pytest.fixture
def served() -> Iterator[tuple[OfflineBackend, anthropic.Anthropic]]:
    backend = OfflineBackend()
    server = backend.serve()
    try:
        yield backend, anthropic.Anthropic(api_key="offline", base_url=server.base_url, max_retries=0)
    finally:
        server.close()


def test_sdk_files_round_trip_over_http(served: tuple[OfflineBackend, anthropic.Anthropic]) -> None:
    backend, client = served
    pdf = make_pdf(PAGES)
    meta = client.beta.files.upload(file=("dir/q3.pdf", pdf, "application/pdf"))
    assert (meta.filename, meta.size_bytes, meta.mime_type, meta.downloadable) == (
        "q3.pdf",
        len(pdf),
        "application/pdf",
        False,
    )
    assert client.beta.files.retrieve_metadata(meta.id).size_bytes == len(pdf)
    with pytest.raises(anthropic.types.FileNotDownloadableError):
        client.beta.files.download(meta.id)
    made = backend.files.add_generated("chart.png", b"\x89PNG\r\n\x1a\n" + b"x" * 40)
    assert client.beta.files.download(made.id).read() == b"\x89PNG\r\n\x1a\n" + b"x" * 40
    assert client.beta.files.delete(meta.id).type == "file_deleted"
    for call in (client.beta.files.retrieve_metadata, client.beta.files.delete, client.beta.files.download):
        with pytest.raises(anthropic.NotFoundError):
            call(meta.id)
    assert [f.id for f in client.files.list()] == [made.id]


def test_list_pages_in_both_shapes(served: tuple[OfflineBackend, anthropic.Anthropic]) -> None:
    _, client = served
    ids = [client.files.upload(file=(f"n{i}.txt", f"note {i}".encode(), "text/plain")).id for i in range(5)]
    newest_first = ids[::-1]
    first = client.files.list(limit=2)
    assert [f.id for f in first.data] == newest_first[:2] and first.next_page
    assert [f.id for f in client.files.list(limit=2)] == newest_first  # the SDK follows next_page
    assert [f.id for f in client.files.list(ids=[ids[0], ids[3], "file_nope"])] == [ids[3], ids[0]]
    with pytest.raises(anthropic.BadRequestError, match="before_id"):
        client.files.list(extra_query={"after_id": ids[4]})
    # With the files beta header: the beta list shape, paged by after_id / before_id.
    beta = ["files-api-2025-04-14"]
    page = client.beta.files.list(limit=2, betas=beta, extra_query={"after_id": newest_first[1]}).model_dump()
    assert [f["id"] for f in page["data"]] == newest_first[2:4]
    assert (page["has_more"], page["first_id"], page["last_id"]) == (True, newest_first[2], newest_first[3])
    back = client.beta.files.list(betas=beta, extra_query={"before_id": newest_first[2]}).model_dump()
    assert [f["id"] for f in back["data"]] == newest_first[:2] and back["has_more"] is False


def _cited_pages(message: anthropic.types.Message) -> list[tuple[str, int, int, str | None]]:
    return [
        (c.cited_text, c.start_page_number, c.end_page_number, c.file_id)
        for b in message.content
        for c in getattr(b, "citations", None) or []
        if c.type == "page_location"
    ]


def test_file_sources_resolve_to_the_uploaded_bytes(
    served: tuple[OfflineBackend, anthropic.Anthropic],
) -> None:
    _, client = served
    pdf = make_pdf(PAGES)
    fid = client.files.upload(file=("q3.pdf", pdf, "application/pdf")).id
    by_file = {"type": "document", "source": {"type": "file", "file_id": fid}, "citations": {"enabled": True}}
    inline = {
        **by_file,
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()},
    }
    question = {"type": "text", "text": "What is the main risk in Europe?"}
    answers = [
        client.messages.create(
            model=MODEL, max_tokens=400, messages=[{"role": "user", "content": [doc, question]}]
        )
        for doc in (by_file, inline)
    ]
    cited = _cited_pages(answers[0])
    assert cited and [c[:3] for c in cited] == [c[:3] for c in _cited_pages(answers[1])]
    texts = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    for text, start, _end, file_id in cited:
        assert text in texts[start - 1] and file_id == fid
    assert {c[3] for c in _cited_pages(answers[1])} == {None}
    counts = [
        client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": [doc, question]}])
        for doc in (by_file, inline)
    ]
    assert counts[0].input_tokens == counts[1].input_tokens
    txt = client.files.upload(file=("m.txt", b"The board met. The budget passed.", "text/plain")).id
    image = {"type": "image", "source": {"type": "file", "file_id": txt}}
    with pytest.raises(anthropic.BadRequestError, match="text/plain"):
        client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": [image, question]}]
        )
    gone = {**by_file, "source": {"type": "file", "file_id": "file_011Cunknown"}}
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": [gone, question]}]
        )


def test_upload_is_remembered_and_documents_go_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEKIT_HOME", str(tmp_path))
    backend = OfflineBackend()
    (tmp_path / "q3.pdf").write_bytes(make_pdf(PAGES))

    async def run() -> None:
        first = await ck.upload(tmp_path / "q3.pdf", offline=backend)
        again = await ck.upload(tmp_path / "q3.pdf", offline=backend)
        assert again.id == first.id and backend.files.uploads == 1
        chat = ck.Chat(offline=backend, render=False)
        reply = await chat(["What is the main risk?", ck.Document(first)])
        sent = backend.requests[-1]["messages"][0]["content"]
        assert [b["source"] for b in sent if b["type"] == "document"] == [
            {"type": "file", "file_id": first.id}
        ]
        assert set(reply.citations["document_title"]) == {"q3.pdf"}
        with pytest.raises(ck.ConfigError, match="citations are on"):
            chat.stream(["and?", ck.Document.from_text("Other notes.", citations=False)])
        assert list(ck.files()["file_id"]) == [first.id]
        await first.delete()
        assert ck.files().empty
        with pytest.raises(anthropic.NotFoundError):
            await chat.client.files.retrieve_metadata(first.id)

    asyncio.run(run())


def test_a_rerun_in_a_new_process_uploads_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "claudekit.offline", "--port", str(port)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None and str(port) in server.stdout.readline().decode()
        base_url = f"http://127.0.0.1:{port}"
        (tmp_path / "q3.pdf").write_bytes(make_pdf(PAGES))
        script = (
            "import asyncio, claudekit as ck\n"
            f"f = asyncio.run(ck.upload({str(tmp_path / 'q3.pdf')!r}, base_url={base_url!r}))\n"
            "print(f.id)\n"
        )
        env = {**os.environ, "CLAUDEKIT_HOME": str(tmp_path / "home"), "ANTHROPIC_API_KEY": "offline"}
        ids = [
            subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
            ).stdout.strip()
            for _ in range(2)
        ]
        assert ids[0] == ids[1] and ids[0].startswith("file_")
        client = anthropic.Anthropic(api_key="offline", base_url=base_url, max_retries=0)
        assert [f.id for f in client.files.list()] == [ids[0]]  # one upload reached the server
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_large_documents_and_shared_batch_documents_go_by_file_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudekit._runner import _files

    monkeypatch.setenv("CLAUDEKIT_HOME", str(tmp_path))
    big, small = make_pdf(PAGES), make_pdf(["A short note about the budget."])
    monkeypatch.setattr(_files, "UPLOAD_ABOVE", (len(big) + len(small)) // 2)  # big is over, small under
    backend = OfflineBackend()

    async def run() -> None:
        chat = ck.Chat(offline=backend, render=False)
        reply = await chat(["What is the main risk?", ck.Document(big, title="big.pdf"), ck.Document(small)])
        sources = [
            b["source"]["type"] for b in backend.requests[-1]["messages"][0]["content"] if "source" in b
        ]
        assert sources == ["file", "base64"] and backend.files.uploads == 1
        assert "big.pdf" in set(reply.citations["document_title"])
        # A batch whose rows all send the same (small) report and their own note: the report goes up once.
        rows = pd.DataFrame({"note": ["Costs were flat.", "Asia grew fastest.", "The board met."]})
        job = await ck.batch(
            rows,
            lambda row: [
                ck.Document(small, title="report"),
                ck.Document.from_text(row["note"]),
                "Summarise.",
            ],
            offline=backend,
            max_tokens=100,
            progress=False,
        )
        done = await job
        assert list(done["claude_status"]) == ["ok"] * 3 and backend.files.uploads == 2
        uploaded = backend.files.lookup(ck.files()["file_id"].iloc[0])
        assert uploaded.data == small
        for body in list(backend.requests)[-3:]:
            docs = [b for b in body["messages"][0]["content"] if b["type"] == "document"]
            assert [d["source"].get("file_id") for d in docs] == [uploaded.id, None]
        # ck.map too: the shared report goes up once and every live request names it.
        mapped = await ck.map(rows.head(2), lambda row: [ck.Document(small), row["note"]], offline=backend)
        assert list(mapped["claude_status"]) == ["ok"] * 2 and backend.files.uploads == 3
        sources = [b["messages"][0]["content"][0]["source"] for b in list(backend.requests)[-2:]]
        assert sources[0] == sources[1] and sources[0]["type"] == "file"

    asyncio.run(run())

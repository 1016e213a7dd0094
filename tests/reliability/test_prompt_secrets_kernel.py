"""Secrets and magic lines in a real kernel: IPython's own ``{expr}`` expansion never runs first.

When ``%claude`` does not go through claudekit's input transformer (``run_line_magic`` from code, a
``%claude`` line in the middle of a cell, ``run_cell_magic`` from code, ``%autoawait off``), IPython
would expand ``{expr}`` in the line by evaluating it. Each path here writes a sentinel file if anything
was evaluated; then ``%%claude`` cells try every way to the key the issue lists. The kernel's key is a
gateway's (not ``sk-ant-…``-shaped); no output may hold it and the backend must receive nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from claudekit.offline import OfflineBackend, OfflineServer, Turn
from tests.notebook.kernel import Kernel

GATEWAY = "gw-" + secrets.token_hex(24)


@pytest.fixture(scope="module")
def backend() -> OfflineBackend:
    return OfflineBackend(lambda req: Turn(text="answered"), signing_key=b"kernel-secrets")


@pytest.fixture(scope="module")
def server(backend: OfflineBackend) -> Iterator[OfflineServer]:
    with backend.serve() as srv:
        yield srv


@pytest.fixture(scope="module")
def kernel(server: OfflineServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(
        env={
            "ANTHROPIC_API_KEY": GATEWAY,
            "ANTHROPIC_BASE_URL": server.base_url,
            "CLAUDEKIT_RENDER": "text",
            "CLAUDEKIT_HOME": str(tmp_path_factory.mktemp("store")),
        }
    )
    try:
        k.ok("%load_ext claudekit.notebook")
        k.ok(
            "import os, claudekit as ck\n"
            "from claudekit.notebook import get_chat\n"
            "chat = get_chat()\n"
            "def _gen():\n    yield 1\n"
            "g = _gen()\n"
            "key = os.environ['ANTHROPIC_API_KEY']\n"
            "x = 3\n"
        )
        yield k
    finally:
        k.shutdown()


def _text(run: object) -> str:
    return json.dumps([m["content"] for m in run.messages], ensure_ascii=False)  # type: ignore[attr-defined]


def _posts(backend: OfflineBackend) -> int:
    return sum(1 for method, path in backend.http_log if method == "POST" and path.startswith("/v1/messages"))


@pytest.mark.parametrize(
    "cell",
    [
        "get_ipython().run_line_magic('claude', {payload!r})",
        "y = 1\n%claude {payload}\n",
        "get_ipython().run_cell_magic('claude', {payload!r}, 'hello')",
        "%autoawait off\n",  # then the one-line cell below runs without the transformer
    ],
    ids=["run_line_magic", "mid-cell", "run_cell_magic", "autoawait-off"],
)
def test_magic_lines_are_never_evaluated(
    kernel: Kernel, backend: OfflineBackend, tmp_path: Path, cell: str
) -> None:
    sentinel = tmp_path / "evaluated"
    payload = "{open(" + repr(str(sentinel)) + ", 'w').write('x')}"
    before = _posts(backend)
    if cell == "%autoawait off\n":
        kernel.ok("%autoawait off")
        try:
            run = kernel.execute(f"%claude {payload}")
            env_run = kernel.execute("%claude {os.environ}")
        finally:
            kernel.ok("%autoawait on")
        assert env_run.status == "error" and GATEWAY not in _text(env_run)
    else:
        run = kernel.execute(cell.format(payload=payload))
    assert not sentinel.exists(), "IPython evaluated the magic line"
    assert run.status == "error", run.messages  # refused (cannot send from here / not a name), one line
    assert GATEWAY not in _text(run)
    assert _posts(backend) == before


@pytest.mark.parametrize(
    "field",
    [
        "{os.environ}",
        "{chat.client.api_key}",
        "{ck._client.os.environ[ANTHROPIC_API_KEY]}",
        "{g.gi_frame.f_globals}",
        "{x:{os.environ[ANTHROPIC_API_KEY]}}",
        "{key}",
    ],
)
def test_cells_cannot_send_the_key(kernel: Kernel, backend: OfflineBackend, field: str) -> None:
    before = _posts(backend)
    run = kernel.execute(f"%%claude\nPlease repeat {field}")
    assert run.status == "error"
    shown = _text(run)
    assert GATEWAY not in shown and GATEWAY[3:20] not in shown
    assert field in shown  # the error quotes the template
    tracebacks = [line for e in run.errors for line in e["traceback"]]
    assert len(tracebacks) == 1, tracebacks  # one line, not a wall of traceback
    assert _posts(backend) == before  # nothing was sent


def test_an_ordinary_field_still_goes_out(kernel: Kernel, backend: OfflineBackend) -> None:
    before = _posts(backend)
    run = kernel.execute("%%claude\nWhat is {x}?")
    assert run.status == "ok", run.errors
    assert "answered" in run.stdout
    assert _posts(backend) == before + 1

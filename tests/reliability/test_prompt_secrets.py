"""Secrets into prompts and files: each path of issue 21's "other direction".

A gateway's key (``gw-…``, not shaped like ``sk-ant-…``) is the key in use. Template fields must not reach
it (through the environment, the client, a module, a frame, a nested format spec, or a value that holds
it), errors quote the template and never the value, and every file claudekit writes (cassette, a batch
job's state file, a usage log, a saved conversation) redacts it as the store does. The kernel paths
(IPython's own ``{expr}`` expansion of magic lines) are in test_prompt_secrets_kernel.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pandas as pd
import pytest

import claudekit as ck
from claudekit._request._template import PromptFieldError, format_prompt
from claudekit.offline import OfflineBackend, OfflineServer, RecordingTransport, Turn

GATEWAY = "gw-" + secrets.token_hex(24)  # a gateway's key: nothing about its shape says "key"


def echo(req: Any) -> Turn:
    """Says back what it was asked, and the key it was sent: the worst a model (or a proxy) can do."""
    return Turn(text=f"you said: {req.last_user_text}; and by the way: {GATEWAY}")


@pytest.fixture(scope="module")
def server() -> Iterator[OfflineServer]:
    with OfflineBackend(echo, signing_key=b"prompt-secrets").serve() as srv:
        yield srv


@pytest.fixture
def chat(server: OfflineServer) -> Iterator[ck.Chat]:
    c = ck.Chat(api_key=GATEWAY, base_url=server.base_url, render=False)
    assert c.client.api_key == GATEWAY  # the gateway key really is the key in use
    yield c


def _gen() -> Iterator[int]:
    yield 1


def _refused(template: str, ns: dict[str, Any], why: str) -> str:
    with pytest.raises(PromptFieldError) as info:
        format_prompt(template, ns)
    message = str(info.value) + str(getattr(info.value, "hint", ""))
    assert GATEWAY not in message and GATEWAY[3:15] not in message, message
    assert why in message, message
    return message


def test_fields_cannot_reach_the_key(chat: ck.Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", GATEWAY)
    g = _gen()
    ns: dict[str, Any] = {
        "os": os,
        "ck": ck,
        "chat": chat,
        "client": chat.client,
        "g": g,
        "env": os.environ,
        "copy": dict(os.environ),
        "key": GATEWAY,
        "note": f"my key is {GATEWAY}",
        "x": 3,
        "messages": chat.client.messages,
    }
    _refused("{os.environ}", ns, "module")
    _refused("{env}", ns, "the environment")
    _refused("{env[ANTHROPIC_API_KEY]}", ns, "the environment")
    _refused("{chat.client.api_key}", ns, "API client")
    _refused("{chat}", ns, "API client")
    _refused("{client.api_key}", ns, "API client")
    _refused("{messages}", ns, "API client")  # a resource holds its client
    _refused("{ck._client.os.environ[ANTHROPIC_API_KEY]}", ns, "module")
    _refused("{holder._key}", {**ns, "holder": type("Holder", (), {"_key": GATEWAY})()}, "private")
    _refused("{g.gi_frame.f_globals}", ns, "generator")
    _refused("{x:{os.environ[ANTHROPIC_API_KEY]}}", ns, "nested")
    _refused("{x:{key}}", ns, "nested")
    # Values that hold the key in use: refused, not sent, and the error does not quote them.
    _refused("{key}", ns, "holds an API key")
    _refused("{note!r}", ns, "holds an API key")
    _refused("{copy}", ns, "holds an API key")
    _refused(f"a literal {GATEWAY}", ns, "holds an API key")
    # A key cut short (a precision, pandas' cell width) still gives away all but its last characters.
    _refused(f"{{key:.{len(GATEWAY) - 1}}}", ns, "holds an API key")
    _refused("{key!r:.30}", ns, "holds an API key")
    wide = pd.DataFrame({"who": ["gateway"], "key": [GATEWAY + "0123456789" * 4]})
    _refused("{df}", {**ns, "df": wide}, "holds an API key")
    # What a prompt does need still works.
    ns["settings"] = chat.settings
    assert format_prompt("{x:03d} {settings.model}", ns) == f"003 {chat.model}"


def test_pieces_of_a_key_and_other_providers_keys_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    from claudekit._base._secrets import scrub

    monkeypatch.setenv("ANTHROPIC_API_KEY", GATEWAY)
    cut = f"head {GATEWAY[:-1]} middle {GATEWAY[5:30]} tail"
    assert scrub(cut) == "head [redacted] middle [redacted] tail"
    assert scrub(f"short run {GATEWAY[:10]} stays") == f"short run {GATEWAY[:10]} stays"
    for key in (
        "sk-proj-Ab3_dE5fGhIjKlMnOpQrStUvWxyz0123456789-abcdefghij",
        "sk-svcacct-Ab3dE5fGhIjKlMnOpQrStUvWxyz0123456789",
        "sk-or-v1-0123456789abcdef0123456789abcdef",
    ):
        assert scrub(f"key={key} end") == "key=[redacted] end", key
    for prose in ("sk-learn-compatible-estimators", "risk-averse task-list"):
        assert scrub(prose) == prose


def test_format_errors_quote_the_template_not_the_value() -> None:
    class Loud:
        def __format__(self, spec: str) -> str:
            raise ValueError(f"cannot format {GATEWAY}")

    message = _refused("{v:>10}", {"v": Loud()}, "{v:>10}")
    assert "does not apply to a Loud" in message
    # A mapping's keys are listed to help; they are data, so they are redacted too.
    message = _refused("{d[other]}", {"d": {GATEWAY: 1}}, "no such key")
    assert "[redacted]" in message


async def test_a_cassette_redacts_a_gateway_key(server: OfflineServer, tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    rec = RecordingTransport(path, mode="all", inner=httpx2.AsyncHTTPTransport())
    client = anthropic.AsyncAnthropic(
        api_key=GATEWAY,
        base_url=server.base_url,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=rec),
    )
    reply = await client.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hello"}]
    )
    await client.close()
    assert GATEWAY in reply.content[0].text  # type: ignore[union-attr]  # the answer did carry it
    text = path.read_text()
    assert "hello" in text and GATEWAY not in text and "[redacted]" in text


async def test_files_claudekit_writes_redact_the_key(chat: ck.Chat, tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    chat.usage.path = log
    reply = await chat("hello")
    assert GATEWAY in reply.text  # the model's answer holds it (in memory, as it came)
    saved = tmp_path / "chat.json"
    chat.save(saved)
    text = saved.read_text()
    assert "you said: hello" in text and GATEWAY not in text
    chat.usage.save(tmp_path / "usage-saved.jsonl")
    for f in tmp_path.iterdir():
        assert GATEWAY not in f.read_text(), f.name


async def test_a_batch_state_file_never_holds_the_key(server: OfflineServer, tmp_path: Path) -> None:
    state = tmp_path / "job.jsonl"
    df = pd.DataFrame({"id": ["a", "b"]})
    # A function prompt is the user's code: what it returns is sent, but the file still redacts.
    job = await ck.batch(
        df,
        lambda row: f"row {row['id']} with {GATEWAY}",
        state=state,
        api_key=GATEWAY,
        base_url=server.base_url,
        poll_interval=0.01,
        progress=False,
    )
    out = await job
    assert list(out["claude_status"]) == ["ok", "ok"]
    text = state.read_text()
    assert '"t":"req"' in text and '"t":"res"' in text and "row a with [redacted]" in text
    assert GATEWAY not in text


async def test_a_template_row_holding_the_key_is_not_sent(server: OfflineServer) -> None:
    df = pd.DataFrame({"note": ["fine", f"key {GATEWAY}"]})
    out = await ck.map(df, "{note}", api_key=GATEWAY, base_url=server.base_url, progress=False)
    assert list(out["claude_status"]) == ["ok", "prompt_error"]
    assert "holds an API key" in out["claude_error"].iloc[1]
    assert GATEWAY not in out["claude_error"].iloc[1]
    with pytest.raises(ck.ConfigError, match="nested"):
        await ck.map(df, "{note:{note}}", api_key=GATEWAY, base_url=server.base_url, progress=False)

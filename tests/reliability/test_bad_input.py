"""Bad user input through the public API: each gives a clear one-line error, and nothing is lost.

Empty prompts, a 5 MB prompt, bytes that are not an image, a tool with an annotation that cannot
become JSON schema, text that is not valid Unicode (lone surrogates) wherever a user can put text,
and saved chats that are corrupted in many ways. After each: the history is what it was (or valid)
and the next prompt is accepted by the offline backend's validator.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import claudekit as ck
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn

from ._support import count, size


def one_line(err: BaseException) -> str:
    text = str(err)
    assert text and "\n" not in text and len(text) < 600, repr(text)
    return text


@pytest.fixture
def backend() -> OfflineBackend:
    return OfflineBackend(signing_key=b"bad-input")


async def converse(chat: ck.Chat) -> None:
    """One good turn so that there is something to lose."""
    reply = await chat("Hello there")
    assert reply.text


async def still_fine(chat: ck.Chat, before: list[dict[str, Any]]) -> None:
    assert chat.history.messages == before, "a rejected input changed the history"
    assert chat.history.problems() == []
    reply = await chat("And now a normal question")
    assert reply.text and chat.history.problems() == []
    count("bad input", "next turn accepted")


@pytest.mark.parametrize("prompt", ["", "   \n\t ", [], ["", "  "]])
async def test_empty_prompts(prompt: Any, backend: OfflineBackend) -> None:
    chat = ck.Chat(offline=backend, render=False)
    await converse(chat)
    before = copy.deepcopy(chat.history.messages)
    with pytest.raises(ck.ConfigError) as info:
        await chat(prompt)
    assert "empty" in one_line(info.value)
    await still_fine(chat, before)
    count("bad input", "empty prompt rejected")


async def test_a_5mb_prompt_is_sent_or_refused_cleanly(backend: OfflineBackend) -> None:
    chat = ck.Chat(offline=backend, render=False)
    await converse(chat)
    before = copy.deepcopy(chat.history.messages)
    big = ("All work and no play makes Jack a dull boy. " * 120_000)[:5_000_000]
    try:
        reply = await asyncio.wait_for(chat(big), timeout=60)
    except ck.ClaudekitError as err:
        one_line(err)
        assert chat.history.messages == before
        count("bad input", f"5 MB prompt: {type(err).__name__}")
    else:
        assert reply.text
        sent = backend.requests[-1]["messages"][-1]["content"]
        assert sent[0]["text"] == big  # the whole prompt went, unchanged
        count("bad input", "5 MB prompt: answered")
    assert chat.history.problems() == []
    assert (await chat("short one")).text


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: ck.Image.from_bytes(b"GIF but not really, just text"),
        lambda tmp: ck.Image.from_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, media_type="image/jpeg"),
        lambda tmp: ck.Image.from_base64("this is not base64!!"),
        lambda tmp: ck.Image.from_path(tmp / "notes.png"),
        lambda tmp: ck.Image.from_path(tmp / "missing.png"),
        lambda tmp: ck.Image.from_url("file:///etc/passwd"),
    ],
    ids=["bytes", "wrong-media-type", "base64", "text-file-named-png", "missing-file", "file-url"],
)
def test_an_image_that_is_not_an_image(make: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("shopping list: eggs")
    with pytest.raises(ck.ConfigError) as info:
        make(tmp_path)
    one_line(info.value)
    count("bad input", "non-image rejected")


async def test_raw_bytes_in_a_prompt_and_a_hand_made_image_block(backend: OfflineBackend) -> None:
    chat = ck.Chat(offline=backend, render=False)
    await converse(chat)
    before = copy.deepcopy(chat.history.messages)
    with pytest.raises(ck.ConfigError) as info:
        await chat(["What is in this picture?", b"plain bytes, no image"])
    one_line(info.value)
    await still_fine(chat, before)
    before = copy.deepcopy(chat.history.messages)
    fake = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"},
    }
    with pytest.raises(ck.BadRequestError) as info2:  # the service checks what claudekit cannot
        await chat([fake, "What is this?"])
    one_line(info2.value)
    await still_fine(chat, before)


class Opaque:
    """A type pydantic cannot describe as JSON schema."""


def _unsupported(sock: socket.socket, n: int) -> str:
    return "never"


def _arbitrary(thing: Opaque) -> str:
    return "never"


@pytest.mark.parametrize("fn", [_unsupported, _arbitrary])
async def test_a_tool_with_unsupported_annotations(fn: Any, backend: OfflineBackend) -> None:
    with pytest.raises(ck.ConfigError) as info:
        ck.tool(fn)
    msg = one_line(info.value)
    assert "sock" in msg or "thing" in msg  # names the parameter
    with pytest.raises(ck.ConfigError):
        ck.Chat(offline=backend, render=False, tools=[fn])
    count("bad input", "bad tool annotation rejected")


_BAD = "caf\udce9 \ud800"  # lone surrogates: what os.fsdecode / surrogateescape leave in a str


@pytest.mark.parametrize(
    ("where", "call"),
    [
        ("prompt", lambda chat: chat(_BAD)),
        ("prompt list", lambda chat: chat(["fine", _BAD])),
        ("content block", lambda chat: chat([{"type": "text", "text": _BAD}])),
        ("system", lambda chat: chat("hi", system=_BAD)),
        ("metadata", lambda chat: chat("hi", metadata={"user_id": _BAD})),
        ("stop sequence", lambda chat: chat("hi", stop_sequences=[_BAD])),
        ("extra body", lambda chat: chat("hi", extra_body={"note": _BAD})),
    ],
)
async def test_text_that_is_not_valid_unicode(where: str, call: Any, backend: OfflineBackend) -> None:
    chat = ck.Chat(offline=backend, render=False)
    await converse(chat)
    before = copy.deepcopy(chat.history.messages)
    with pytest.raises(ck.ConfigError) as info:
        await call(chat)
    assert "Unicode" in one_line(info.value)
    await still_fine(chat, before)
    count("bad input", "invalid Unicode rejected")


async def test_a_tool_returning_invalid_unicode_does_not_poison_the_chat(backend: OfflineBackend) -> None:
    @ck.tool
    def read_name() -> str:
        """Read a file name from disk."""
        return "report-\udce9.txt"

    backend.responder = Script([Turn(tool_calls=[ToolCall("read_name", {})]), Turn(text="Got it."), "Fine."])
    chat = ck.Chat(offline=backend, render=False, tools=[read_name])
    reply = await chat("read the name")
    assert reply.text == "Got it."
    sent = backend.requests[1]["messages"][-1]["content"][0]
    assert sent["type"] == "tool_result" and "report-" in json.dumps(sent) and ".txt" in json.dumps(sent)
    assert chat.history.problems() == []
    assert (await chat("next")).text == "Fine."


# -- saved chats, corrupted ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real saved conversation with text, thinking and a tool round trip."""
    backend = OfflineBackend(signing_key=b"bad-input")

    @ck.tool
    def get_weather(city: str) -> str:
        """Weather.

        Args:
            city: The city.
        """
        return f"{city}: rain"

    async def make() -> dict[str, Any]:
        chat = ck.Chat(offline=backend, render=False, tools=[get_weather], thinking=2048, system="Be brief.")
        await chat("What is the weather in Paris? use get_weather")
        path = tmp_path_factory.mktemp("saved") / "chat.json"
        chat.save(path)
        return json.loads(path.read_text())

    yield asyncio.run(make())


_garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just("\ud800"),
)


@st.composite
def corrupted(draw: Any, data: dict[str, Any]) -> bytes:
    doc = copy.deepcopy(data)
    kind = draw(st.sampled_from(["truncate", "bytes", "replace", "delete", "reorder"]))
    if kind in ("truncate", "bytes"):
        raw = json.dumps(doc).encode()
        if kind == "truncate":
            return raw[: draw(st.integers(0, len(raw) - 1))]
        pos = draw(st.integers(0, len(raw) - 1))
        return raw[:pos] + draw(st.binary(min_size=1, max_size=4)) + raw[pos + 1 :]
    # Walk to a random node and damage it.
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(doc, [])
    path = draw(st.sampled_from(paths[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if kind == "replace":
        parent[last] = draw(_garbage)
    elif kind == "delete":
        del parent[last]
    elif isinstance(parent, list) and len(parent) > 1:
        j = draw(st.integers(0, len(parent) - 1))
        parent[last], parent[j] = parent[j], parent[last]
    else:
        parent[last] = draw(_garbage)
    return json.dumps(doc).encode()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def test_a_chat_loaded_from_a_corrupted_file(
    saved: dict[str, Any], tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    backend = OfflineBackend(signing_key=b"bad-input")

    @ck.tool
    def get_weather(city: str) -> str:
        """Weather.

        Args:
            city: The city.
        """
        return f"{city}: rain"

    @settings(
        max_examples=size(60, 1000),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(raw=corrupted(saved))
    def check(raw: bytes) -> None:
        path = tmp_path / "corrupt.json"
        path.write_bytes(raw)
        chat = ck.Chat(offline=backend, render=False, tools=[get_weather], thinking=2048)
        loop.run_until_complete(chat("Start a conversation"))
        before = copy.deepcopy(chat.history.messages)
        system_before = chat.settings.system
        try:
            chat.load(path)
        except ck.ConfigError as err:
            one_line(err)
            assert chat.history.messages == before and chat.settings.system == system_before
            count("corrupted files", "rejected with ConfigError")
            return
        except Exception as err:
            pytest.fail(f"load raised {type(err).__name__}: {err}")
        assert chat.history.problems() == []
        try:
            reply = loop.run_until_complete(chat("And now?"))
        except ck.ClaudekitError as err:
            one_line(err)
            count("corrupted files", f"loaded, next turn: {type(err).__name__}")
            assert chat.history.problems() == []
            return
        except Exception as err:
            pytest.fail(f"the turn after loading raised {type(err).__name__}: {err}")
        assert reply.text and chat.history.problems() == []
        count("corrupted files", "loaded, still valid")

    check()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"messages": "no"}',
        b'{"version": 1, "messages": [1, 2]}',
        b'{"messages": [{"role": "robot", "content": "first"}]}',
        b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}',
    ],
)
async def test_obviously_broken_files(raw: bytes, tmp_path: Path, backend: OfflineBackend) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(raw)
    chat = ck.Chat(offline=backend, render=False)
    await converse(chat)
    before = copy.deepcopy(chat.history.messages)
    with pytest.raises(ck.ConfigError) as info:
        chat.load(path)
    one_line(info.value)
    await still_fine(chat, before)

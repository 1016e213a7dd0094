"""Helpers for the notebook tests: event streams from the offline backend and from recorded SSE."""

from __future__ import annotations

from typing import Any

import claudekit as ck
from claudekit._events import Event, _JsonBuffer
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn
from tests.conftest import SSE_DIR, sdk_client, sse_transport


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def offline_chat(turns: list[Turn], **kw: Any) -> ck.Chat:
    kw.setdefault("render", False)
    return ck.Chat(offline=OfflineBackend(responder=Script(turns)), **kw)


def tool_chat(**kw: Any) -> ck.Chat:
    turns = [
        Turn(text="Let me check.", tool_calls=[ToolCall("weather", {"city": "Paris"})]),
        Turn(text="It is **sunny** in Paris."),
    ]
    return offline_chat(turns, tools=[weather], **kw)


async def collect(stream: ck.ReplyStream) -> list[Event]:
    return [ev async for ev in stream]


def recorded_chat(name: str, **kw: Any) -> ck.Chat:
    body = (SSE_DIR / name).read_bytes()
    kw.setdefault("render", False)
    return ck.Chat(client=sdk_client(sse_transport(body)), **kw)


def tool_deltas(call_id: str, fragments: list[str], index: int = 0) -> list[ck.ToolCallDelta]:
    buf = _JsonBuffer()
    out = []
    for frag in fragments:
        buf.parts.append(frag)
        out.append(ck.ToolCallDelta(index, call_id, frag, buf, len(buf.parts)))
    return out


def delta_body(n: int, msg_id: str = "msg_many") -> bytes:
    """An SSE body whose answer arrives as exactly ``n`` text deltas."""
    from tests.sse import body, message_end, message_start, text_block

    return body(
        message_start(msg_id), text_block(0, [f"w{i} " for i in range(n)]), message_end(output_tokens=n)
    )


def delta_chat(n: int, **kw: Any) -> ck.Chat:
    """A chat whose every reply streams ``n`` text deltas as fast as the SDK parses them."""
    kw.setdefault("render", None)
    return ck.Chat(client=sdk_client(sse_transport(delta_body(n))), **kw)

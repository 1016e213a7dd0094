"""Helpers for the notebook tests: event streams from the offline backend and from recorded SSE."""

from __future__ import annotations

from typing import Any

import claudekit as ck
from claudekit._base._events import Event, _JsonBuffer
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


class FakeWidget:
    """Stands in for the front-end widget: records what the kernel pushes; ``page`` applies it as
    claudekit's JavaScript does (so a test can read what a page would show)."""

    def __init__(self, on_message: Any) -> None:
        self.on_message = on_message
        self.pushed: list[list[list[Any]]] = []
        self.model_id = "fake-model"
        self.closed = False

    def push(self, ops: list[list[Any]]) -> None:
        self.pushed.append(ops)

    def close(self) -> None:
        self.closed = True

    def say(self, **content: Any) -> None:
        """A custom message from the page (what view.js sends)."""
        self.on_message(content)

    @property
    def page(self) -> Page:
        return Page([op for batch in self.pushed for op in batch])


class Page:
    """What the page holds after applying ops (mirrors ``apply`` in claudekit/notebook/_js/view.js)."""

    def __init__(self, ops: list[list[Any]]) -> None:
        self.status = "waiting"
        self.thinking = ""
        self.parts: list[dict[str, Any]] = []
        self.cards: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, tuple[Any, Any]] = {}
        self.foot = self.error = self.extras = ""
        self.final = False
        self.can_insert = True
        self.sources: dict[int, dict[str, str]] = {}
        for op in ops:
            self.apply(op)

    def _grow(self, i: int) -> None:
        while len(self.parts) <= i:
            self.parts.append({"kind": "text", "text": ""})

    def apply(self, op: list[Any]) -> None:
        kind = op[0]
        if kind == "status":
            self.status = op[1]
        elif kind == "think":
            self.thinking += op[1]
        elif kind == "text":
            self._grow(op[1])
            self.parts[op[1]]["text"] += op[2]
        elif kind == "tool":
            self._grow(op[1])
            self.parts[op[1]] = {"kind": "tool", "id": op[2]["id"]}
            raw = "" if op[2]["args"] else self.cards.get(op[2]["id"], {}).get("raw", "")
            self.cards[op[2]["id"]] = {**op[2], "raw": raw}
        elif kind == "targs":
            self.cards[op[1]]["raw"] += op[2]
        elif kind == "problem":
            self.problems[op[1]] = (op[2], op[3])
        elif kind in ("foot", "error", "extras"):
            setattr(self, kind, op[1])
        elif kind == "final":
            self.final, self.status, self.foot = True, op[1], op[2]
        elif kind == "caps":
            self.can_insert = op[1].get("insert") is not False
        elif kind == "cites":
            self._grow(op[1])
            self.parts[op[1]]["cites"] = op[2]
        elif kind == "source":
            self.sources[op[1]] = op[2]

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p["kind"] == "text")

    def order(self) -> list[str]:
        """Each part as ``text:…`` or ``tool:NAME``."""
        return [
            f"text:{p['text']}" if p["kind"] == "text" else f"tool:{self.cards[p['id']]['name']}"
            for p in self.parts
        ]


# A chat whose tool asks for approval through the card (kernel tests of the approval flow).
APPROVAL_SETUP = """
@claudekit.tool(approve=True)
def remove(path: str) -> str:
    "Delete a file."
    return "removed " + path

def approval_chat():
    return claudekit.Chat(offline=OfflineBackend(responder=Script([
        Turn(text="Deleting.", tool_calls=[ToolCall("remove", {"path": "/tmp/x"})]),
        Turn(text="Finished."),
    ])), tools=[remove], approval="widget")
"""

"""Tools from functions: schemas, options, validation, results and truncation."""

from __future__ import annotations

import base64
import enum
import socket
from typing import Any, Literal, Optional

import anthropic
import pydantic
import pytest

import claudekit
from claudekit._base._errors import ConfigError
from claudekit._tooling._tools import Tool, ToolSet, as_tool, to_content, tool, truncate

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Point(pydantic.BaseModel):
    x: int
    y: int = 0


def weather(
    city: str,
    unit: Literal["c", "f"] = "c",
    color: Optional[Color] = None,  # noqa: UP045 - Optional is part of what is tested
    points: list[Point] | None = None,
    days: int = 3,
) -> str:
    """Get the weather.

    Longer explanation.

    Args:
        city: The city name.
        unit: Temperature unit.
        points: Places to look at.
    """
    return f"{city} {unit} {color} {points} {days}"


def test_schema_from_hints_and_docstring() -> None:
    t = tool(weather)
    assert t.name == "weather"
    assert t.description.startswith("Get the weather.")
    assert "Args" not in t.description
    s = t.input_schema
    assert s["type"] == "object" and s["required"] == ["city"]
    assert s["additionalProperties"] is False
    props = s["properties"]
    assert props["city"] == {"description": "The city name.", "title": "City", "type": "string"}
    assert props["unit"]["enum"] == ["c", "f"] and props["unit"]["default"] == "c"
    assert props["points"]["description"] == "Places to look at."
    assert props["days"]["default"] == 3
    assert s["$defs"]["Color"]["enum"] == ["red", "blue"]
    assert s["$defs"]["Point"]["required"] == ["x"]
    param = t.to_param()
    assert set(param) == {"name", "description", "input_schema"}


def test_options_and_decorator_forms() -> None:
    @tool(name="rm", description="Remove a file.", approve=True, strict=True)
    def remove(path: str) -> str:
        return path

    assert isinstance(remove, Tool)
    assert remove.name == "rm" and remove.approve and remove.strict
    assert remove.to_param()["strict"] is True
    assert remove.to_param()["description"] == "Remove a file."
    assert remove("x") == "x"  # still callable

    @tool
    async def fetch(url: str) -> str:
        """Fetch."""
        return url

    assert fetch.approve is False
    strict_copy = tool(fetch, approve=True)
    assert strict_copy.approve and not fetch.approve
    assert fetch.with_options(max_output=500).max_output == 500


def test_plain_function_in_a_chat() -> None:
    chat = claudekit.Chat(
        client=_dummy_client(), tools=[weather, {"name": "raw", "input_schema": {"type": "object"}}]
    )
    assert chat.toolset.names == ["weather", "raw"]
    assert chat.toolset.tools["raw"].to_param() == {"name": "raw", "input_schema": {"type": "object"}}


def _dummy_client() -> anthropic.AsyncAnthropic:
    from .helpers import ScriptedAPI

    return ScriptedAPI([]).client()


def test_unsupported_annotation_names_the_parameter() -> None:
    def bad(a: int, sock: socket.socket) -> str:
        return ""

    with pytest.raises(ConfigError, match=r"parameter 'sock'.*socket"):
        tool(bad)


def test_unresolvable_annotation_names_the_parameter() -> None:
    def bad(a: int, b: NotDefinedAnywhere) -> str:  # type: ignore[name-defined]  # noqa: F821
        return ""

    with pytest.raises(ConfigError, match="parameter 'b'"):
        tool(bad)


@pytest.mark.parametrize(
    ("src", "match"),
    [
        ("def f(*args): pass", r"'args' is \*args"),
        ("def f(a, **kw): pass", r"'kw' is \*\*kwargs"),
        ("def f(a, /, b): pass", "positional-only"),
        ("def f():\n    yield 1", "generator"),
    ],
)
def test_rejected_signatures(src: str, match: str) -> None:
    ns: dict[str, Any] = {}
    exec(src, ns)
    with pytest.raises(ConfigError, match=match):
        tool(ns["f"])


def test_bad_names_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="invalid tool name"):
        tool(weather, name="has space")
    with pytest.raises(ConfigError, match="two tools"):
        ToolSet([weather, weather])
    with pytest.raises(ConfigError, match="cannot use"):
        as_tool(42)
    with pytest.raises(ConfigError, match="unknown approval policy"):
        ToolSet([weather], approval="sometimes")


def test_validation_coerces_and_reports() -> None:
    t = tool(weather)
    args, kwargs = t.validate({"city": "Paris", "color": "red", "points": [{"x": 1}]})
    assert args == ()
    assert kwargs["color"] is Color.red and kwargs["points"] == [Point(x=1)] and kwargs["days"] == 3
    msg = t.check_arguments({"city": 3, "unit": "k", "extra": 1})
    assert msg is not None
    assert msg.splitlines()[0] == "Invalid arguments for weather:"
    assert "- city: Input should be a valid string" in msg
    assert "- unit: Input should be 'c' or 'f'" in msg
    assert "- extra: Unexpected keyword argument" in msg
    assert "Missing required argument" in (t.check_arguments({}) or "")
    assert "expected a JSON object" in (t.check_arguments([1]) or "")


def test_to_content() -> None:
    assert to_content("hi") == "hi"
    assert to_content({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert to_content([1, "x"]) == '[1, "x"]'
    assert to_content(Point(x=1)) == '{"x":1,"y":0}'
    assert to_content(None) == "(the tool returned nothing)"
    img = to_content(PNG)
    assert isinstance(img, list) and img[0]["type"] == "image"
    assert img[0]["source"]["media_type"] == "image/png"
    assert to_content(claudekit.Image.from_bytes(PNG)) == img
    mixed = to_content(["caption", claudekit.Image.from_bytes(PNG)])
    assert isinstance(mixed, list) and [b["type"] for b in mixed] == ["text", "image"]
    assert to_content({"type": "text", "text": "block"}) == [{"type": "text", "text": "block"}]
    assert to_content(b"plain") == "plain"
    assert "not text or an image" in str(to_content(b"\xff\xfe\x00"))
    assert to_content({1, 2}) in ("[1,2]", "[2,1]")  # not plain JSON: pydantic serialises it


def test_truncate() -> None:
    out = truncate("x" * 500, 100)
    assert isinstance(out, str) and out.startswith("x" * 100) and "first 100 of 500 characters" in out
    assert truncate("short", 100) == "short"
    blocks = truncate([{"type": "text", "text": "a" * 80}, {"type": "text", "text": "b" * 80}], 100)
    assert isinstance(blocks, list)
    assert blocks[0]["text"] == "a" * 80 and blocks[1]["text"] == "b" * 20
    assert "truncated" in blocks[-1]["text"]

"""Shared constants and helpers for the offline backend tests."""

from __future__ import annotations

from typing import Any

MODEL = "claude-sonnet-4-6"

WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}

TIME_TOOL: dict[str, Any] = {
    "name": "get_time",
    "description": "Get the local time in a timezone",
    "input_schema": {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    },
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}

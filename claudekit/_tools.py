"""Tools: functions the model may call, and running the calls of one turn.

(Minimal first version: functions with JSON schemas from type hints, run concurrently, auto-approved.
The approval policies and the widget come with the tools issue.)
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from ._errors import ConfigError
from ._events import ToolResult
from ._reply import ToolCall

__all__ = ["Tool", "ToolSet", "as_tool", "tool"]


@dataclass
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    fn: Callable[..., Any] | None = None
    approve: bool = False

    def to_param(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    async def call(self, args: dict[str, Any]) -> Any:
        assert self.fn is not None
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**args)
        return await asyncio.to_thread(self.fn, **args)


def tool(fn: Callable[..., Any]) -> Tool:
    return as_tool(fn)


def as_tool(obj: Any) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, dict) and "name" in obj:
        return Tool(obj["name"], obj.get("description", ""), obj.get("input_schema", {"type": "object"}))
    if callable(obj):
        sig = inspect.signature(obj)
        fields: dict[str, Any] = {}
        for pname, p in sig.parameters.items():
            ann = p.annotation if p.annotation is not inspect.Parameter.empty else Any
            fields[pname] = (ann, ... if p.default is inspect.Parameter.empty else p.default)
        model = pydantic.create_model(f"{obj.__name__}_args", **fields)
        schema = model.model_json_schema()
        schema.pop("title", None)
        return Tool(obj.__name__, inspect.getdoc(obj) or obj.__name__, schema, fn=obj)
    raise ConfigError(f"cannot use {obj!r} as a tool", hint="pass a function or a tool dict")


class ToolSet:
    def __init__(self, tools: list[Any] | None = None, approval: Any = None) -> None:
        self.tools = {t.name: t for t in (as_tool(x) for x in (tools or []))}
        self.approval = approval

    def params(self) -> list[dict[str, Any]]:
        return [t.to_param() for t in self.tools.values()]

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def handles(self, call: ToolCall) -> bool:
        t = self.tools.get(call.name)
        return t is not None and t.fn is not None

    async def run(self, calls: list[ToolCall]) -> AsyncIterator[ToolResult]:
        async def one(call: ToolCall) -> ToolResult:
            if call.error:
                return ToolResult(call.id, call.name, f"Error: {call.error}", True, "invalid")
            t = self.tools[call.name]
            try:
                out = await t.call(call.input)
            except Exception as exc:
                return ToolResult(call.id, call.name, f"Error: {type(exc).__name__}: {exc}", True, "auto")
            content = out if isinstance(out, str) else json.dumps(out, default=str)
            return ToolResult(call.id, call.name, content, False, "auto")

        results = await asyncio.gather(*(one(c) for c in calls))
        for r in results:
            yield r

"""The service's own tools, simulated: web search over a fixture corpus, web fetch of fixture pages,
code execution as a scripted result (no code ever runs), and MCP connector calls as scripted blocks.

Shapes follow the SDK's types (``WebSearchResultBlock``, ``WebFetchBlock``, ``CodeExecutionResultBlock``,
``CitationsWebSearchResultLocation``, ``BetaMCPToolUseBlock``). A prompt holding ``[pause_turn]`` (or
``[pause_turn:N]``) makes the model pause after each server call, N times, with ``stop_reason:
"pause_turn"``; the client continues by sending the conversation back with the paused content last.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._sse import CALL_KINDS, Block

__all__ = ["CORPUS", "PAGES", "ServerPlan", "plan_server_turn", "server_blocks"]

#: The search corpus: (url, title, page_age, text). Searches rank it by words shared with the query.
CORPUS: tuple[tuple[str, str, str, str], ...] = (
    (
        "https://jupyter.org/about",
        "About Project Jupyter",
        "April 2, 2026",
        "Project Jupyter develops open-source software, open standards and services for "
        "interactive computing.",
    ),
    (
        "https://docs.python.org/3/tutorial/",
        "The Python Tutorial",
        "October 1, 2026",
        "Python is an easy to learn, powerful programming language with efficient "
        "high-level data structures.",
    ),
    (
        "https://en.wikipedia.org/wiki/Model_Context_Protocol",
        "Model Context Protocol - Wikipedia",
        "3 weeks ago",
        "The Model Context Protocol is an open standard for connecting AI assistants to tools and data.",
    ),
    (
        "https://www.example.org/weather/paris",
        "Paris weather today",
        "2 hours ago",
        "Paris is mild and cloudy today, 14 degrees Celsius, with light rain expected in the evening.",
    ),
    (
        "https://pandas.pydata.org/about/",
        "About pandas",
        "May 5, 2026",
        "pandas is a fast, powerful and flexible open source data analysis and manipulation tool for Python.",
    ),
)
#: Pages web fetch can read: url -> (title, text). Search results are fetchable too.
PAGES: dict[str, tuple[str, str]] = {url: (title, text) for url, title, _, text in CORPUS}
PAGES["https://example.com/"] = (
    "Example Domain",
    "This domain is for use in illustrative examples in documents.",
)

_PAUSE = re.compile(r"\[pause_turn(?::(\d+))?\]")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_SEARCH_WORDS = re.compile(r"\b(search|web|look up|latest|news|current|today)\b", re.IGNORECASE)
_CODE_WORDS = re.compile(r"\b(code|compute|calculate|run|execute|python)\b", re.IGNORECASE)


@dataclass
class ServerPlan:
    """One response: server blocks (raw, in order), the answer's text blocks, counts and stop reason."""

    blocks: list[dict[str, Any]]
    answer: list[tuple[str, list[dict[str, Any]]]]
    usage: dict[str, int]
    stop_reason: str


def _enc(*parts: str) -> str:
    """An opaque token in the service's style (base64), stable for the same inputs."""
    return base64.b64encode(hashlib.sha256("\x00".join(parts).encode()).digest() * 2).decode()


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def _search(query: str, tool: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    allowed = [str(d) for d in tool.get("allowed_domains") or []]
    blocked = [str(d) for d in tool.get("blocked_domains") or []]

    def host_ok(url: str) -> bool:
        host = url.split("/")[2]
        if allowed and not any(host == d or host.endswith("." + d) for d in allowed):
            return False
        return not any(host == d or host.endswith("." + d) for d in blocked)

    q = {w for w in _words(query) if len(w) > 3}  # "the", "for": every page has them
    rows = [row for row in CORPUS if host_ok(row[0])]
    scored = sorted(((len(q & _words(r[1] + " " + r[3])), i) for i, r in enumerate(rows)), reverse=True)
    hits = [rows[i] for score, i in scored if score > 0]
    return hits[:3] or rows[:1]  # a search always finds something


def _tools(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Declared server tools by family (web_search, web_fetch, code_execution)."""
    out: dict[str, Mapping[str, Any]] = {}
    for t in body.get("tools") or []:
        kind = str(t.get("type") or "") if isinstance(t, Mapping) else ""
        for family in ("web_search", "web_fetch", "code_execution"):
            if kind.startswith(family + "_"):
                out[family] = t
    return out


def _calls(body: Mapping[str, Any], prompt: str) -> list[tuple[str, Any]]:
    """What the prompt asks of the declared server tools, in order: (family, argument)."""
    tools = _tools(body)
    clean = _PAUSE.sub("", prompt).strip()
    urls = _URL.findall(clean)
    calls: list[tuple[str, Any]] = []
    if "web_fetch" in tools and urls:
        calls.extend(("web_fetch", u) for u in urls[:2])
    if "web_search" in tools and _SEARCH_WORDS.search(clean) and not (urls and "web_fetch" in tools):
        calls.append(("web_search", " ".join(clean.split()[:12]) or "news"))
    if "code_execution" in tools and _CODE_WORDS.search(clean):
        calls.append(("code_execution", clean))
    for server in body.get("mcp_servers") or []:
        if isinstance(server, Mapping) and str(server.get("name", "")).lower() in clean.lower():
            calls.append(("mcp", server))
    return calls


def _trailing_assistant(body: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    if not messages or messages[-1].get("role") != "assistant":
        return None
    content = messages[-1].get("content")
    return [b for b in content if isinstance(b, Mapping)] if isinstance(content, list) else []


def _prompt(body: Mapping[str, Any]) -> str:
    for m in reversed([m for m in body.get("messages") or [] if isinstance(m, Mapping)]):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content
        texts = [
            str(b.get("text", ""))
            for b in content or []
            if isinstance(b, Mapping) and b.get("type") == "text"
        ]
        if texts:
            return "\n".join(texts)
        return ""
    return ""


def plan_server_turn(body: Mapping[str, Any]) -> ServerPlan | None:
    """The response when the request declares server tools the last prompt asks for, else None."""
    prompt = _prompt(body)
    msg_id = f"{len(body.get('messages') or [])}:{prompt}"  # call ids: stable, distinct per turn
    calls = _calls(body, prompt)
    if not calls:
        return None
    paused = _trailing_assistant(body)
    done = sum(1 for b in paused or [] if b.get("type") in ("server_tool_use", "mcp_tool_use"))
    if paused is None and _last_user_is_results(body):
        return None  # a client tool loop: the default responder answers the results
    marker = _PAUSE.search(prompt)
    pauses = int(marker.group(1) or 1) if marker else 0
    if done < pauses:
        todo, stop = [calls[done % len(calls)]], "pause_turn"
    else:
        todo, stop = calls[done:], "end_turn"
    blocks: list[dict[str, Any]] = []
    answer: list[tuple[str, list[dict[str, Any]]]] = []
    usage = {"web_search_requests": 0, "web_fetch_requests": 0}
    for i, (family, arg) in enumerate(todo):
        call_id = f"{msg_id}:{done + i}"
        blocks.extend(_simulate(family, arg, call_id, _tools(body).get(family, {}), answer))
        if family in ("web_search", "web_fetch"):
            usage[f"{family}_requests"] += 1
    answer = []  # the answer (final step only) cites what every step found, the paused ones included
    if stop == "end_turn":
        for i, (family, arg) in enumerate(calls):
            _simulate(family, arg, f"{msg_id}:{i}", _tools(body).get(family, {}), answer)
        answer = [(t + "\n", c) for t, c in answer]
        answer.insert(0, ("(offline) Here is what the service's tools found:\n", []))
    return ServerPlan(blocks, answer, usage, stop)


def _last_user_is_results(body: Mapping[str, Any]) -> bool:
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    content = messages[-1].get("content") if messages else None
    return isinstance(content, list) and any(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
    )


def _id(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _simulate(
    family: str, arg: Any, seed: str, tool: Mapping[str, Any], answer: list[tuple[str, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    if family == "mcp":
        return _connector(arg, seed, answer)
    tid = _id("srvtoolu_", seed)
    if family == "web_search":
        rows = _search(str(arg), tool)
        results = [
            {
                "type": "web_search_result",
                "url": u,
                "title": t,
                "encrypted_content": _enc(u, t),
                "page_age": age,
            }
            for u, t, age, _ in rows
        ]
        for u, t, _, text in rows[:2]:
            cite = {"type": "web_search_result_location", "url": u, "title": t, "cited_text": text[:150]}
            cite["encrypted_index"] = _enc("index", u)
            answer.append((text, [cite]))
        return [
            _use(tid, "web_search", {"query": str(arg)}),
            {"type": "web_search_tool_result", "tool_use_id": tid, "content": results},
        ]
    if family == "web_fetch":
        return [_use(tid, "web_fetch", {"url": str(arg)}), _fetched(tid, str(arg), answer)]
    code = "print(sum(range(10)))"
    answer.append(("The code printed 45.", []))
    result = {
        "type": "code_execution_result",
        "stdout": "45\n",
        "stderr": "",
        "return_code": 0,
        "content": [],
    }
    return [
        _use(tid, "code_execution", {"code": code}),
        {"type": "code_execution_tool_result", "tool_use_id": tid, "content": result},
    ]


def _use(tid: str, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "server_tool_use",
        "id": tid,
        "name": name,
        "input": dict(args),
        "caller": {"type": "direct"},
    }


def _fetched(tid: str, url: str, answer: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    page = PAGES.get(url) or PAGES.get(url.rstrip("/") + "/")
    if page is None:
        content: dict[str, Any] = {"type": "web_fetch_tool_result_error", "error_code": "url_not_accessible"}
        answer.append((f"The page {url} could not be fetched.", []))
    else:
        title, text = page
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
            "title": title,
        }
        content = {"type": "web_fetch_result", "url": url, "retrieved_at": "2026-12-01T00:00:00Z"}
        content["content"] = document
        answer.append((f"“{title}” says: {text}", []))
    return {"type": "web_fetch_tool_result", "tool_use_id": tid, "content": content}


def _connector(
    server: Mapping[str, Any], seed: str, answer: list[tuple[str, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    name = str(server.get("name"))
    allowed = (server.get("tool_configuration") or {}).get("allowed_tools") or []
    tool = str(allowed[0]) if allowed else "search"
    tid = _id("mcptoolu_", seed)
    text = f"(offline) {name}.{tool} would run on {server.get('url')}; the offline backend reaches no server."
    answer.append((f"The {name} server answered.", []))
    use = {
        "type": "mcp_tool_use",
        "id": tid,
        "name": tool,
        "server_name": name,
        "input": {"query": "offline"},
    }
    result = {"type": "mcp_tool_result", "tool_use_id": tid, "is_error": False}
    result["content"] = [{"type": "text", "text": text}]
    return [use, result]


def server_blocks(raw: Sequence[Mapping[str, Any]]) -> list[Block]:
    """Planned blocks for the SSE shaper: calls stream their input as JSON deltas, results come whole."""
    out: list[Block] = []
    for b in raw:
        kind = str(b["type"])
        if kind in CALL_KINDS:
            extra = {k: v for k, v in b.items() if k not in ("type", "id", "name", "input")}
            text = json.dumps(b.get("input") or {}, ensure_ascii=False)
            out.append(Block(kind, text=text, tool_id=str(b["id"]), name=str(b["name"]), extra=extra))
        else:
            out.append(Block(kind, extra={k: v for k, v in b.items() if k != "type"}))
    return out

"""The static rendering of a finished reply, for saved notebooks (no kernel, no widget state).

:func:`static_bundle` turns a :class:`~claudekit.Reply` into a ``{"text/markdown", "text/plain"}``
mimebundle: the reasoning collapsed in ``<details>``, one collapsed summary per tool call, the answer as
Markdown (code, tables and math render as Jupyter renders Markdown; nbconvert and GitHub render it too),
and a one-line usage footer (tokens, cache, cost, latency). Apart from the footer's latency it is
deterministic for a given reply: no ids, no timestamps (``timings=False`` drops the latency too). The
footer's token counts and cost vary between real API runs; for strict nbval comparisons sanitize it
with the regex ``<sub[^>]*>claudekit · [^<]*</sub>`` (or just its timings, as notebooks/ does).
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import TYPE_CHECKING, Any

from .._errors import INTERRUPTS
from ._state import citation_text, preview, server_block_summary

if TYPE_CHECKING:
    from .._events import Usage
    from .._reply import Reply

__all__ = ["FOOTER_SANITIZE_REGEX", "footer_line", "reply_record", "static_bundle", "static_markdown"]

FOOTER_SANITIZE_REGEX = r"<sub[^>]*>claudekit · [^<]*</sub>"
# claudekit's own text (reasoning, tool results, the footer) is literal: "$0.01 (saved $0.02)" must not be
# typeset as math. The entity keeps Markdown renderers from pairing dollars; the class keeps MathJax out
# of the rendered element. The answer itself is the model's Markdown and renders as Jupyter renders it.
NO_MATH = 'class="tex2jax_ignore mathjax_ignore"'

_ARGS_LIMIT = 4000


def _esc(text: str) -> str:
    # No backtick survives, so no code span forms and every entity is decoded ("$" shown, not "&#36;").
    return escape(text, quote=False).replace("$", "&#36;").replace("`", "&#96;")


def _html_text(text: str) -> str:
    """Literal multi-line text for an HTML block: no blank line (which would end the block and let
    Markdown in), no leading spaces (an indented code block); line breaks and indentation kept."""
    lines = []
    for line in text.splitlines():
        e = _esc(line)
        body = e.lstrip(" ")
        lines.append("&#160;" * (len(e) - len(body)) + body)
    return "<br>\n".join(lines)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _usage_record(usage: Usage, model: str, status: str, step: int = 0) -> Any:
    from ..usage import UsageRecord

    return UsageRecord(
        timestamp=_EPOCH,
        chat_id="-",
        turn=0,
        step=step,
        model=model,
        status=status,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_creation_5m_input_tokens=usage.cache_creation_5m,
        cache_creation_1h_input_tokens=usage.cache_creation_1h,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        thinking_tokens=usage.thinking_tokens,
    ).priced()


_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "thinking_tokens",
)


def _records(calls: list[tuple[Usage, str, str, int]]) -> list[Any] | None:
    """Priced records, one per call ``(usage, model, status, step)``; None without the usage package
    or with counts it refuses."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unknown price is reported once by the usage log
            return [_usage_record(*call) for call in calls]
    except (ImportError, ValueError, TypeError):
        return None


def _combined(records: list[Any], **fields: Any) -> Any:
    """One record for several calls: counts summed, and each call priced on its own (long-prompt tiers
    and cache-write TTLs are per request) before the costs are added."""
    import dataclasses

    def total(name: str) -> Any:
        vals = [getattr(r, name) for r in records if getattr(r, name) is not None]
        return sum(vals) if vals else None

    def cost(name: str) -> float | None:
        vals = [getattr(r, name) for r in records]
        return sum(v for v in vals if v is not None) if all(v is not None for v in vals) else None

    return dataclasses.replace(
        records[0],
        cost_usd=cost("cost_usd"),
        cost_no_cache_usd=cost("cost_no_cache_usd"),
        **{name: total(name) for name in _COUNTS},
        **fields,
    )


def usage_so_far(usages: list[Usage], model: str) -> Any:
    """One priced record for the calls of a reply still streaming; None when it cannot be priced."""
    records = _records([(u, model, "ok", i) for i, u in enumerate(usages)]) if usages else None
    return _combined(records) if records else None


def _status_of(reply: Reply) -> str:
    if reply.interrupted:
        return "interrupted"
    if reply.error is not None:
        return "error"
    return "ok"


def reply_record(reply: Reply, *, timings: bool = True) -> Any:
    """One :class:`claudekit.usage.UsageRecord` summing the reply's API calls (cost priced per call).

    ``timings=False`` leaves latency out (for deterministic static output). None when the usage
    package is unavailable or nothing was reported.
    """
    steps = [s for s in reply.steps if s.message is not None]
    records = _records(
        [(s.usage, s.message.model if s.message else reply.model, s.status, s.index) for s in steps]
    )
    if not records:
        return None
    return _combined(
        records,
        status=_status_of(reply),
        latency_s=reply.latency_s if timings else None,
        ttft_s=reply.ttft_s if timings else None,
    )


def footer_line(reply: Reply, *, timings: bool = True) -> str:
    """``model · 1.2k in · 310 out · cache 80% · $0.0042`` (plus latency when ``timings``)."""
    record = reply_record(reply, timings=timings)
    model = reply.message.model if reply.message is not None else reply.model
    if record is not None:
        from ..usage import footer_text

        return f"{model} · {footer_text(record)}"
    u = reply.usage
    parts = [model]
    if u.input_tokens is not None:
        parts.append(f"{u.total_input_tokens} in")
    if u.output_tokens is not None:
        parts.append(f"{u.output_tokens} out")
    if u.cache_hit_rate is not None:
        parts.append(f"cache {u.cache_hit_rate:.0%}")
    if timings and reply.latency_s is not None:
        parts.append(f"{reply.latency_s:.1f} s")
    return " · ".join(parts)


def _blocks(reply: Reply) -> list[Any]:
    return [b for m in reply.messages for b in m.content]


def _tool_lines(reply: Reply) -> list[tuple[str, str, str, str]]:
    """(name, status, arguments JSON, result preview) per tool call, client and server, in order."""
    out: list[tuple[str, str, str, str]] = []
    server_results: dict[str, str] = {}
    for b in _blocks(reply):
        tid = getattr(b, "tool_use_id", None)
        if tid is not None and b.type.endswith("_tool_result"):
            server_results[str(tid)] = server_block_summary(b.type, b)
    for call in reply.tool_calls:
        try:
            args = json.dumps(call.input, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            args = repr(call.input)
        if len(args) > _ARGS_LIMIT:
            args = args[: _ARGS_LIMIT - 1] + "…"
        if call.server:
            result = server_results.get(call.id, "")
            status = "error" if result.startswith("error:") else ("done" if result else "no result")
        elif call.error:
            status, result = "invalid", call.error
        elif call.result is not None:
            decision = (call.decision or "").lower()
            status = (
                "denied" if decision.startswith(("den", "reject")) else ("error" if call.is_error else "done")
            )
            result = preview(call.result)
        else:
            status = "interrupted" if reply.interrupted else "not run"
            result = ""
        out.append((call.name, status, args, result))
    return out


def _thinking_notes(reply: Reply) -> list[str]:
    redacted = sum(1 for b in _blocks(reply) if b.type == "redacted_thinking")
    omitted = sum(1 for b in _blocks(reply) if b.type == "thinking" and not b.thinking and b.signature)
    notes = []
    if redacted:
        notes.append("hidden reasoning" + (f" ×{redacted}" if redacted > 1 else ""))
    if omitted:
        notes.append("thinking omitted" + (f" ×{omitted}" if omitted > 1 else ""))
    return notes


def _citations(reply: Reply) -> list[str]:
    seen: list[str] = []
    for b in _blocks(reply):
        for c in getattr(b, "citations", None) or []:
            text = citation_text(c)
            if text not in seen:
                seen.append(text)
    return seen


def _error_text(reply: Reply, error: BaseException | None) -> str | None:
    err: BaseException | None = error if error is not None and not isinstance(error, INTERRUPTS) else None
    if err is None:
        err = reply.error
    return (str(err) or type(err).__name__) if err is not None else None


def static_markdown(
    reply: Reply, error: BaseException | None = None, *, footer: bool = True, timings: bool = True
) -> str:
    """The reply as Markdown (with ``<details>`` for reasoning and tool calls).

    Deterministic for a given reply except the footer's latency; ``timings=False`` leaves it out.
    """
    parts: list[str] = []
    interrupted = reply.interrupted or isinstance(error, INTERRUPTS)
    thinking = reply.thinking
    notes = _thinking_notes(reply)
    if thinking or notes:
        label = "Thinking" + (f" ({', '.join(notes)})" if notes else "")
        # Reasoning, results and errors are claudekit's text, not Markdown: HTML blocks, shown literally.
        body = _html_text(thinking) if thinking else "<i>(" + ", ".join(notes) + ")</i>"
        parts.append(
            f"<details {NO_MATH}><summary>{label}</summary>\n<blockquote>{body}</blockquote>\n</details>"
        )
    for name, status, args, result in _tool_lines(reply):
        summary = f"🔧 {_esc(name)} — {status}"
        if result:
            summary += f": {_esc(preview(result, 100))}"
        fence = _fence(args)
        body = f"{fence}json\n{args}\n{fence}"
        if result:
            body += f"\n\n<div><b>Result:</b> {_html_text(result)}</div>"
        parts.append(f"<details {NO_MATH}><summary>{summary}</summary>\n\n{body}\n\n</details>")
    if interrupted:
        parts.append("> ⏹ **interrupted** — the partial answer is kept")
    err = _error_text(reply, error)
    if err is not None and not interrupted:
        parts.append(f"<blockquote {NO_MATH}>⚠ <b>error:</b> {_html_text(err)}</blockquote>")
    text = reply.text
    if text:
        parts.append(text)
    elif not interrupted and err is None:
        parts.append(f"*(no text; stop reason: {reply.stop_reason})*")
    cites = _citations(reply)
    if cites:
        items = "".join(f"<li>{_html_text(c)}</li>" for c in cites)
        parts.append(f"<div {NO_MATH}><b>Sources:</b><ol>{items}</ol></div>")
    if footer and reply.steps:
        parts.append(f"<sub {NO_MATH}>claudekit · {_esc(footer_line(reply, timings=timings))}</sub>")
    return "\n\n".join(parts) + "\n"


def static_plain(reply: Reply, error: BaseException | None = None) -> str:
    lines: list[str] = []
    notes = _thinking_notes(reply)
    if reply.thinking or notes:
        what = f"{len(reply.thinking)} chars" if reply.thinking else ", ".join(notes)
        lines.append(f"[thinking: {what}]")
    for name, status, _args, result in _tool_lines(reply):
        lines.append(f"[tool {name}: {status}{' — ' + preview(result, 80) if result else ''}]")
    if reply.text:
        lines.append(reply.text)
    if reply.interrupted or isinstance(error, INTERRUPTS):
        lines.append("[interrupted]")
    else:
        err = _error_text(reply, error)
        if err is not None:
            lines.append(f"[error: {err}]")
    return "\n".join(lines)


def static_bundle(
    reply: Reply, error: BaseException | None = None, *, timings: bool = True
) -> dict[str, str]:
    """``{"text/markdown": …, "text/plain": …}`` for ``IPython.display.display(bundle, raw=True)``."""
    return {
        "text/markdown": static_markdown(reply, error, timings=timings),
        "text/plain": static_plain(reply, error),
    }


def _epoch() -> Any:
    from datetime import datetime, timezone

    return datetime(1970, 1, 1, tzinfo=timezone.utc)


_EPOCH = _epoch()

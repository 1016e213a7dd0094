"""The static rendering of a finished reply, for saved notebooks (no kernel, no widget state).

:func:`static_bundle` turns a :class:`~claudekit.Reply` into a ``{"text/html", "text/plain"}``
mimebundle: the reasoning collapsed in ``<details>``, one collapsed summary per tool call, the answer's
Markdown made HTML by :mod:`claudekit._base._markup` (code, tables and math render; raw HTML in the answer
is shown as text, remote images become links, and nothing in it runs or loads in JupyterLab, nbconvert
or GitHub), a line when ``max_tokens`` cut the answer off, and a one-line usage footer (tokens, cache,
cost, latency). Apart from the footer's latency it is deterministic for a given reply: no ids, no
timestamps (``timings=False`` drops the latency too). The footer's token counts and cost vary between
real API runs; for strict nbval comparisons sanitize it with the regex
``<sub[^>]*>claudekit · [^<]*</sub>`` (or just its timings, as notebooks/ does).
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from .._base._errors import INTERRUPTS
from .._base._markup import NO_MATH as _NO_MATH_CLASSES
from .._base._markup import clean, markdown_html, text_html
from ._approval import card_result
from ._state import citation_key, preview, server_block_details, server_block_summary

if TYPE_CHECKING:
    from .._base._events import Usage
    from .._base._reply import Reply

__all__ = [
    "FOOTER_SANITIZE_REGEX",
    "cut_note",
    "footer_line",
    "reply_record",
    "static_bundle",
    "static_html",
]

FOOTER_SANITIZE_REGEX = r"<sub[^>]*>claudekit · [^<]*</sub>"
# claudekit's own text (reasoning, tool results, the footer) is literal: "$0.01 (saved $0.02)" must not be
# typeset as math; the class keeps MathJax out of the element. The answer is the model's Markdown, made
# HTML by claudekit._base._markup (the one way model text reaches the page), typeset only when math is on.
NO_MATH = f'class="{_NO_MATH_CLASSES}"'

_ARGS_LIMIT = 4000


def _esc(text: str) -> str:
    return escape(text, quote=False)


def _usage_record(usage: Usage, model: str, status: str, step: int = 0, message: Any = None) -> Any:
    from ..usage import UsageRecord
    from ..usage._record import code_runs

    server = usage.server_tool_use

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
        # The server tools' fees belong in the footer's cost as in the usage log's.
        web_search_requests=server.get("web_search_requests"),
        web_fetch_requests=server.get("web_fetch_requests"),
        code_execution_requests=code_runs(message),
    ).priced()


_COUNTS = (
    "web_search_requests",
    "web_fetch_requests",
    "code_execution_requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "thinking_tokens",
)


def _records(calls: list[tuple[Any, ...]]) -> list[Any] | None:
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


def refusal_note(reply: Reply) -> str | None:
    """One line for a refused prompt (the turn runner took it back out of the conversation)."""
    if not reply.refused:
        return None
    details = reply.stop_details
    why = ": ".join(
        str(v) for v in (getattr(details, "category", None), getattr(details, "explanation", None)) if v
    )
    return (
        f"Claude declined this prompt{f' ({why})' if why else ''}; it was taken out of the conversation, "
        "so rephrase it or ask something else"
    )


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
        [
            (s.usage, s.message.model if s.message else reply.model, s.status, s.index, s.message)
            for s in steps
        ]
    )
    if not records:
        return None
    return _combined(
        records,
        status=_status_of(reply),
        latency_s=reply.latency_s if timings else None,
        ttft_s=reply.ttft_s if timings else None,
    )


_cache_note: list[Any] = []  # a weak reference to the reply whose footer explains "cache 0%" (once)


def _footer_notes(record: Any, model: str, reply: Reply) -> str:
    """What a reader needs to make sense of the numbers: no price known, a prompt too short to cache."""
    notes = ""
    if record.cost_usd is None and record.input_tokens is not None:
        from ..usage import get_prices

        if get_prices().lookup(model) is None:
            notes += f" (no price known for {model}: claudekit.usage.set_prices)"
    short = (
        record.hit_rate == 0 and not record.cache_creation_input_tokens and (record.prompt_tokens or 0) < 4096
    )
    if short and (not _cache_note or _cache_note[0]() is reply):
        import weakref

        _cache_note[:] = [weakref.ref(reply)]
        notes += " · short prompts (under the model's 512-4,096-token minimum) are not cached"
    return notes


def footer_line(reply: Reply, *, timings: bool = True) -> str:
    """``model · 1.2k in · 310 out · cache 80% · $0.0042`` (plus latency when ``timings``)."""
    record = reply_record(reply, timings=timings)
    model = reply.message.model if reply.message is not None else reply.model
    if record is not None:
        from ..usage import footer_text

        # With client tools the turn also waited for them (and maybe for a person): the time shown is the
        # API's, which is not the elapsed time the live view counted.
        label = "API " if any(not c.server for c in reply.tool_calls) else ""
        cut = " · cut off at max_tokens" if reply.stop_reason == "max_tokens" else ""
        notes = _footer_notes(record, model, reply)
        return f"{model} · {footer_text(record, latency_label=label)}{cut}{notes}"
    u = reply.usage
    parts = [model]
    if reply.interrupted:
        parts.append("interrupted")
    if u.input_tokens is not None:
        parts.append(f"{u.total_input_tokens} in")
    if u.output_tokens is not None:
        parts.append(f"{u.output_tokens} out")
    if u.cache_hit_rate is not None:
        parts.append(f"cache {u.cache_hit_rate:.0%}")
    if reply.stop_reason == "max_tokens":
        parts.append("cut off at max_tokens")
    if timings and reply.latency_s is not None:
        parts.append(f"{reply.latency_s:.1f} s")
    return " · ".join(parts)


def _blocks(reply: Reply) -> list[Any]:
    return [b for m in reply.messages for b in m.content]


Decisions = dict[str, tuple[str | None, Any]]  # call id -> (who decided what, the arguments that ran)


def _tool_card(
    call: Any, reply: Reply, server_results: dict[str, str], decisions: Decisions
) -> tuple[str, str, str, str, str]:
    """(name, status, arguments JSON, result preview, decision) of one tool call."""
    decided, ran = decisions.get(call.id, (None, None))
    try:
        args = json.dumps(ran if ran is not None else call.input, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        args = repr(call.input)
    if len(args) > _ARGS_LIMIT:
        args = args[: _ARGS_LIMIT - 1] + "…"
    if call.server:
        result = server_results.get(call.id, "")
        status = "error" if result.startswith("error:") else ("done" if result else "no result")
    elif call.error:
        status, result = "invalid", preview(call.error)
    elif call.result is not None:
        decision = (call.decision or "").lower()
        status = (
            "denied" if decision.startswith(("den", "reject")) else ("error" if call.is_error else "done")
        )
        result = preview(call.result)
    else:
        status = "interrupted" if reply.interrupted else "not run"
        result = ""
    return call.name, status, args, card_result(status, result, decided), decided or ""


def _server_details(reply: Reply) -> dict[str, list[str]]:
    """The lines each server call's result shows (search titles and hosts, stdout…), by call id."""
    out: dict[str, list[str]] = {}
    for b in _blocks(reply):
        tid = getattr(b, "tool_use_id", None)
        if tid is not None and b.type.endswith("_tool_result"):
            out[str(tid)] = server_block_details(b.type, b)
    return out


def _server_results(reply: Reply) -> dict[str, str]:
    out: dict[str, str] = {}
    for b in _blocks(reply):
        tid = getattr(b, "tool_use_id", None)
        if tid is not None and b.type.endswith("_tool_result"):
            out[str(tid)] = server_block_summary(b.type, b)
    return out


def _tool_lines(reply: Reply, decisions: Decisions | None = None) -> list[tuple[str, str, str, str, str]]:
    """One card per tool call, client and server, in call order."""
    server = _server_results(reply)
    return [_tool_card(c, reply, server, decisions or {}) for c in reply.tool_calls]


def _parts(reply: Reply) -> list[str | Any]:
    """The answer's text runs (str) and tool calls (ToolCall) in the order the model produced them."""
    calls = {c.id: c for c in reply.tool_calls}
    placed: set[str] = set()
    parts: list[str | Any] = []
    for message in reply.messages:
        run: list[str] = []
        for block in message.content:
            if block.type == "text":
                run.append(block.text)
            elif (bid := str(getattr(block, "id", ""))) in calls and block.type.endswith("tool_use"):
                if any(run):
                    parts.append("".join(run))
                run = []
                parts.append(calls[bid])
                placed.add(bid)
        if any(run):
            parts.append("".join(run))
    parts += [c for c in reply.tool_calls if c.id not in placed]
    return parts


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
    """The numbered sources, one per cited passage: numbered as the live view numbers its markers."""
    seen: dict[tuple[str, str], str] = {}
    for b in _blocks(reply):
        for c in getattr(b, "citations", None) or []:
            key = citation_key(c)
            seen.setdefault(key, key[0])
    return list(seen.values())


def _error_text(reply: Reply, error: BaseException | None) -> str | None:
    err: BaseException | None = error if error is not None and not isinstance(error, INTERRUPTS) else None
    if err is None:
        err = reply.error
    return (str(err) or type(err).__name__) if err is not None else None


def _card_html(
    name: str,
    status: str,
    args: str,
    result: str,
    decided: str,
    server_name: str | None = None,
    details: list[str] | None = None,
) -> str:
    on = f" · {_esc(server_name)}" if server_name else ""
    summary = f"🔧 {_esc(name)}{on} — {status}"
    if result:
        summary += f": {_esc(preview(result, 100))}"
    if decided:
        summary += f" · {_esc(decided)}"
    body = ""
    if args and args != "{}":
        body = f'\n<pre><code class="language-json">{_esc(args)}</code></pre>'
    if server_name:
        body += f"\n<div><b>Server:</b> {_esc(server_name)}</div>"
    if result:
        body += f"\n<div><b>Result:</b> {text_html(result)}</div>"
    if details:
        items = "".join(f"<li>{text_html(line)}</li>" for line in details)
        body += f"\n<ul>{items}</ul>"
    return f"<details {NO_MATH}><summary>{summary}</summary>{body}\n</details>"


def cut_note(reply: Reply) -> str | None:
    """One line for an answer the ``max_tokens`` limit cut off (the text just stops otherwise)."""
    if reply.stop_reason != "max_tokens":
        return None
    return "cut off: the answer reached max_tokens; raise Chat(max_tokens=…) or ask Claude to go on"


def _thinking_html(reply: Reply) -> str | None:
    """The reasoning in a closed ``<details>`` (or why there is none to show), None without any."""
    thinking = reply.thinking
    notes = _thinking_notes(reply)
    if not thinking and not notes:
        return None
    label = "Thinking" + (f" ({', '.join(notes)})" if notes else "")
    # Reasoning, results and errors are shown literally, never as Markdown.
    body = text_html(thinking) if thinking else "<i>(" + ", ".join(notes) + ")</i>"
    return f"<details {NO_MATH}><summary>{label}</summary>\n<blockquote>{body}</blockquote>\n</details>"


def static_html(
    reply: Reply,
    error: BaseException | None = None,
    *,
    footer: bool = True,
    timings: bool = True,
    decisions: Decisions | None = None,
    show_error: bool = True,
    math: bool = False,
) -> str:
    """The reply as HTML: reasoning and tool calls in ``<details>``, text and tools in the order
    they happened, the footer last — the layout of the live view.

    Deterministic for a given reply except the footer's latency; ``timings=False`` leaves it out.
    ``decisions`` (from the live view) says who decided each approved call and with which arguments;
    ``show_error=False`` leaves the error line out (the cell shows it, see ``_errors``); ``math=True``
    lets ``$…$`` in the answer be typeset.
    """
    parts: list[str] = []
    interrupted = reply.interrupted or isinstance(error, INTERRUPTS)
    thinking = _thinking_html(reply)
    if thinking is not None:
        parts.append(thinking)
    server = _server_results(reply)
    details = _server_details(reply)
    any_text = False
    for part in _parts(reply):
        if isinstance(part, str):
            any_text = True
            text = markdown_html(part, math=math)
            # MathJax scans the rendered page for $…$ too: keep it out of the answer unless asked for.
            parts.append(f'<div class="ck-text">\n{text}</div>' if math else f"<div {NO_MATH}>\n{text}</div>")
        else:
            card = _tool_card(part, reply, server, decisions or {})
            parts.append(_card_html(*card, part.server_name, details.get(part.id)))
    if interrupted:
        what = "the partial answer is kept" if any_text or reply.tool_calls else "nothing had arrived yet"
        parts.append(f"<blockquote {NO_MATH}>⏹ <b>interrupted</b> — {what}</blockquote>")
    err = _error_text(reply, error)
    if err is not None and not interrupted and show_error:
        parts.append(f"<blockquote {NO_MATH}>⚠ <b>error:</b> {text_html(err)}</blockquote>")
    refused = refusal_note(reply)
    if refused is not None:
        parts.append(f"<blockquote {NO_MATH}>🚫 <b>refused</b> — {text_html(refused)}</blockquote>")
    elif not any_text and not interrupted and err is None:
        parts.append(f"<p><i>(no text; stop reason: {_esc(str(reply.stop_reason))})</i></p>")
    cut = cut_note(reply)
    if cut is not None and not interrupted:
        parts.append(f"<blockquote {NO_MATH}>✂ <b>{_esc(cut)}</b></blockquote>")
    cites = _citations(reply)
    if cites:
        items = "".join(f"<li>{text_html(c)}</li>" for c in cites)
        parts.append(f"<div {NO_MATH}><b>Sources:</b><ol>{items}</ol></div>")
    if footer and reply.steps:
        parts.append(f"<sub {NO_MATH}>claudekit · {_esc(footer_line(reply, timings=timings))}</sub>")
    # The allow-list once more over the whole copy: whatever went wrong above, no script reaches the page.
    return clean("\n".join(parts) + "\n")


_PLAIN_LIMIT = 2000


def static_plain(reply: Reply, error: BaseException | None = None, *, show_error: bool = True) -> str:
    """A short text version (frontends show the Markdown; this is for consoles and diffs)."""
    lines: list[str] = []
    notes = _thinking_notes(reply)
    if reply.thinking or notes:
        what = f"{len(reply.thinking)} chars" if reply.thinking else ", ".join(notes)
        lines.append(f"[thinking: {what}]")
    for name, status, _args, result, _decided in _tool_lines(reply):
        lines.append(f"[tool {name}: {status}{' — ' + preview(result, 80) if result else ''}]")
    text = reply.text
    if len(text) > _PLAIN_LIMIT:
        text = text[:_PLAIN_LIMIT] + f"… [{len(reply.text) - _PLAIN_LIMIT:,} more characters]"
    if text:
        lines.append(text)
    refused = refusal_note(reply)
    if refused is not None:
        lines.append(f"[refused — {refused}]")
    if reply.interrupted or isinstance(error, INTERRUPTS):
        lines.append("[interrupted]")
    elif show_error:  # else the cell's one-line error says it: not twice
        err = _error_text(reply, error)
        if err is not None:
            lines.append(f"[error: {err}]")
    return "\n".join(lines)


def static_bundle(
    reply: Reply,
    error: BaseException | None = None,
    *,
    timings: bool = True,
    decisions: Decisions | None = None,
    show_error: bool = True,
    math: bool = False,
) -> dict[str, str]:
    """``{"text/html": …, "text/plain": …}`` for ``IPython.display.display(bundle, raw=True)``.

    HTML, not Markdown: a trusted output is rendered as it is (JupyterLab, nbconvert, GitHub), so the
    copy is made safe here, by one parser and one allow-list, not by each viewer's Markdown rules."""
    page = static_html(reply, error, timings=timings, decisions=decisions, show_error=show_error, math=math)
    return {"text/html": page, "text/plain": static_plain(reply, error, show_error=show_error)}


def _epoch() -> Any:
    from datetime import datetime, timezone

    return datetime(1970, 1, 1, tzinfo=timezone.utc)


_EPOCH = _epoch()

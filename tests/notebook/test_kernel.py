"""The live view and the magics in a real ipykernel, observed on its iopub channel (one kernel per module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.notebook.helpers import APPROVAL_SETUP
from tests.notebook.kernel import CellRun, Kernel, started_kernel, value

WIDGET = "application/vnd.jupyter.widget-view+json"

SETUP = """
%load_ext claudekit.notebook
import os, sys
import claudekit, claudekit.notebook as nb
from claudekit.offline import OfflineBackend, Script, Turn, ToolCall
from tests.notebook.helpers import delta_chat, weather

os.environ["ANTHROPIC_API_KEY"] = "sk-ant-secret-never-print"   # must never be shown by %claude config
chat = nb.use_chat(claudekit.Chat(offline=OfflineBackend()))     # the default responder echoes the prompt
city = "Paris"
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with started_kernel(SETUP) as k:
        yield k


def static_of(run: CellRun) -> dict[str, str]:
    statics = [d for d in run.displays if "text/html" in d]
    assert len(statics) == 1, run.displays
    return statics[0]


def test_cell_magic_renders_live_then_static(kernel: Kernel) -> None:
    run = kernel.execute("%%claude\nWhat is the weather in {city}?\n")
    assert run.status == "ok", (run.errors, run.stderr)
    displays = run.displays
    assert list(displays[0]) == [WIDGET]  # the live view alone: nbval compares this output as nothing
    # The view, whatever the reply holds; the first view of a kernel also opens the shared layout and
    # the model with the front-end code (once per kernel: the view itself carries only a loader).
    states = [m["content"]["data"]["state"] for m in run.of_type("comm_open")]
    views = [st for st in states if st.get("_anywidget_id") == "claudekit.notebook.DocWidget"]
    assert len(views) == 1 and len(views[0]["_esm"]) < 2_000 and views[0]["init"]["seq"] == 1
    others = sorted(st["_model_name"] for st in states if st not in views)
    assert others in ([], ["LayoutModel", "WidgetModel"])
    assert all("markedLib" in st["code"] for st in states if st["_model_name"] == "WidgetModel")
    updates = run.of_type("update_display_data")
    # No page showed the view (no frontend here): it is emptied and the saved copy follows it.
    assert [u["content"]["data"] for u in updates] == [{}]
    assert run.of_type("comm_close")
    static = static_of(run)
    text = value(kernel, "_claude.text")
    assert isinstance(text, str) and "What is the weather in Paris?" in text  # {city} was filled
    assert text in static["text/html"] and text in static["text/plain"]
    assert run.results == []  # the Reply's repr is not printed too


def test_conversation_continues_across_cells_and_chats(kernel: Kernel) -> None:
    kernel.ok("%claude reset")
    assert value(kernel, "len(chat.history)") == 0
    kernel.ok("%%claude\nfirst\n")
    kernel.ok("%%claude -o second\nsecond\n")
    assert value(kernel, "len(chat.history)") == 4
    assert value(kernel, "second is _claude, second.status") == (True, "ok")
    kernel.ok("nb.use_chat(claudekit.Chat(offline=OfflineBackend()), 'other')")
    kernel.ok("%%claude --chat other\nelsewhere\n")
    assert value(kernel, "len(nb.chats['other'].history), len(chat.history)") == (2, 4)
    kernel.ok("%%claude --new\nstart over\n")
    assert value(kernel, "len(chat.history)") == 2
    kernel.ok("mine = claudekit.Chat(offline=OfflineBackend(), name='mine')")
    kernel.ok("%%claude --chat mine -m claude-haiku-4-5 --max-tokens 500\nhello\n")
    assert value(kernel, "len(mine.history), _claude.model") == (2, "claude-haiku-4-5")


def test_missing_field_is_one_line_error_and_tb_has_the_cause(kernel: Kernel) -> None:
    run = kernel.execute("%%claude\nTell me about {nowhere}\n")
    assert run.status == "error"
    (err,) = run.errors
    assert len(err["traceback"]) == 1
    assert "'nowhere'" in err["traceback"][0] and "PromptFieldError" in err["traceback"][0]
    assert value(kernel, "type(sys.last_value.__cause__).__name__") == "PromptFieldError"
    assert run.displays == []  # nothing was sent


def test_api_error_is_one_line_and_partial_reply_kept(kernel: Kernel) -> None:
    kernel.ok(
        "from claudekit.offline import Fault\n"
        "nb.use_chat(claudekit.Chat(offline=OfflineBackend(responder=Script("
        "[Turn(text='half an answer here', fault=Fault.error_event(after_events=4))]))), 'broken')"
    )
    run = kernel.execute("%%claude --chat broken\nq\n")
    assert run.status == "error"
    (err,) = run.errors
    assert len(err["traceback"]) == 1 and "OverloadedError" in err["traceback"][0]
    assert "Traceback" not in "".join(err["traceback"])
    assert value(kernel, "_claude.status") == "error"
    # The cell's one line says what went wrong; the saved copy keeps the partial answer, not a repeat.
    md = static_of(run)["text/html"]
    assert "half an" in md and "error:" not in md and "OverloadedError" not in md


def test_line_magic_subcommands(kernel: Kernel) -> None:
    kernel.ok("%%claude\nhi\n")  # at least one call to show
    usage = kernel.ok("%claude usage")
    assert usage.results and "text/html" in usage.results[0]
    config = kernel.ok("%claude config")
    assert "model: " in config.stdout and "backend offline" in config.stdout
    assert "sk-ant-secret" not in config.stdout + config.stderr
    kernel.ok("%claude model claude-haiku-4-5")
    assert value(kernel, "chat.model") == "claude-haiku-4-5"
    kernel.ok("%claude model claude-sonnet-4-6")
    history = kernel.ok("%claude history")
    assert "<b>user</b>:" in history.results[0]["text/html"]
    assert "%%claude" in kernel.ok("%claude help").stdout
    plot = kernel.ok("%claude plot")
    assert plot.displays or plot.results
    one = kernel.ok("%claude what's the capital of {city}?")
    assert "what's the capital of Paris?" in static_of(one)["text/html"]


def test_usage_is_a_compact_table_and_typos_are_caught(kernel: Kernel) -> None:
    kernel.ok("nb.use_chat(claudekit.Chat(offline=OfflineBackend()), 'fresh')")
    for cmd in ("%claude --chat fresh usage", "%claude --chat fresh plot"):
        empty = kernel.ok(cmd)
        assert empty.results == [] and empty.displays == []
        assert ": no calls yet" in empty.stdout
    kernel.ok("%%claude --chat fresh\nhello\n")
    compact = kernel.ok("%claude --chat fresh usage")
    html = compact.results[0]["text/html"]
    for column in ("time", "turn", "model", "in", "out", "cache %", "cost $", "status", "miss reason"):
        assert f"<th>{column}</th>" in html, column
    assert "request_id" not in html and "message_id" not in html
    full = kernel.ok("%claude --chat fresh usage --all")
    assert "<th>request_id</th>" in full.results[0]["text/html"]
    typo = kernel.ok("%claude usgae")  # a suggestion, not a failure: Run All goes on
    assert not typo.of_type("comm_open")  # nothing was sent to Claude
    assert "did you mean `%claude usage`?" in typo.stdout
    sentence = kernel.ok("%claude usage of commas in French?")  # a sentence is a question
    assert "usage of commas in French?" in static_of(sentence)["text/html"]


def test_help_shows_the_docstring(kernel: Kernel) -> None:
    run = kernel.ok("%claude?")
    payload = run.reply["content"]["payload"]
    assert payload and "Talk to Claude" in payload[0]["data"]["text/plain"]
    assert "--thinking" in payload[0]["data"]["text/plain"]


def test_no_render_stores_the_reply_without_output(kernel: Kernel) -> None:
    run = kernel.ok("%%claude --no-render -o quiet\nshh\n")
    assert run.displays == [] and run.results == []
    assert value(kernel, "quiet.status") == "ok"


def test_render_off_still_shows_the_static_answer(kernel: Kernel) -> None:
    kernel.ok("nb.configure(mode='off')")
    try:
        run = kernel.ok("%%claude\nplain please\n")
    finally:
        kernel.ok("nb.configure(mode='env')")
    assert not run.of_type("comm_open")
    assert "plain please" in static_of(run)["text/html"]


def test_chat_with_render_false_still_shows_the_static_answer(kernel: Kernel) -> None:
    kernel.ok("nb.use_chat(claudekit.Chat(offline=OfflineBackend(), render=False), 'quiet')")
    run = kernel.ok("%%claude --chat quiet\nhush\n")
    assert not run.of_type("comm_open")
    assert "hush" in static_of(run)["text/html"]


def test_python_stream_renders_and_yields_every_event(kernel: Kernel) -> None:
    kernel.ok("many = delta_chat(500)")
    run = kernel.ok(  # iterating the events yourself draws nothing unless asked to (render=True)
        "n = 0\n"
        "async for ev in many.stream('go', render=True):\n"
        "    n += isinstance(ev, claudekit.TextDelta)\n"
        "n"
    )
    assert run.results[0]["text/plain"] == "500"
    assert WIDGET in run.displays[0]
    assert "w499" in static_of(run)["text/html"]


def test_many_deltas_send_few_messages_and_bytes_linear_in_the_answer(kernel: Kernel) -> None:
    kernel.ok("many = delta_chat(5000)")
    run = kernel.ok("r = await many('go')")
    messages = run.of_type("comm_msg")
    assert len(messages) <= 40 + 2 * 15 * run.seconds, (len(messages), run.seconds)
    answer = len(value(kernel, "r.text"))  # type: ignore[arg-type]
    sent = sum(len(json.dumps(m, default=str)) for m in run.messages)
    assert sent <= 3 * answer + 150_000, (sent, answer)
    assert "w4999" in static_of(run)["text/html"]


def test_an_awaited_error_is_one_line_and_tb_has_it(kernel: Kernel) -> None:
    run = kernel.execute("await claudekit.Chat(model='claude-no-such-model', offline=OfflineBackend())('hi')")
    assert run.status == "error"
    (err,) = run.errors
    (line,) = err["traceback"]
    assert "NotFoundError" in line or "BadRequestError" in line
    assert "%tb for details" in line and "Traceback" not in line
    assert value(kernel, "isinstance(sys.last_value, claudekit.ClaudekitError)") is True
    other = kernel.execute("1 / 0")  # not claudekit's: IPython's usual traceback
    assert len(other.errors[0]["traceback"]) > 1


def test_an_interrupted_await_is_one_line(kernel: Kernel) -> None:
    kernel.ok(
        "slow2 = claudekit.Chat(offline=OfflineBackend(responder=Script("
        "[Turn(text=' '.join(f'word{i}' for i in range(2000)))]), event_delay=0.01))"
    )
    run = kernel.execute("r = await slow2('go')", interrupt_after=1.0, timeout=30)
    assert run.status == "error"
    (err,) = run.errors
    (line,) = err["traceback"]
    assert line.startswith("\x1b[0;31mInterrupted\x1b[0m: the reply stopped") and "%tb" in line
    assert "interrupted" in static_of(run)["text/html"]


def test_interrupt_keeps_partial_reply_and_conversation_continues(kernel: Kernel) -> None:
    kernel.ok(
        "slow = OfflineBackend(responder=Script([Turn(text=' '.join(f'word{i}' for i in range(2000))), "
        "Turn(text='second answer')]), event_delay=0.01)\n"
        "nb.use_chat(claudekit.Chat(offline=slow), 'slow')"
    )
    run = kernel.execute("%%claude --chat slow\nwrite a lot\n", interrupt_after=1.0, timeout=30)
    assert run.seconds < 10  # stopped, not finished (the full stream takes far longer)
    assert run.status == "error"
    (err,) = run.errors
    assert "KeyboardInterrupt" in err["traceback"][0] and len(err["traceback"]) == 1
    static = static_of(run)
    assert "interrupted" in static["text/html"]
    status, n_text, problems, statuses = value(  # type: ignore[misc]
        kernel,
        "s = nb.chats['slow']; (_claude.status, len(_claude.text), s.history.problems(), "
        "[r.status for r in s.usage.records])",
    )
    assert status == "interrupted" and n_text > 0
    assert problems == [] and statuses == ["interrupted"]
    assert f"word{0}" in static["text/html"]
    follow = kernel.execute("%%claude --chat slow\nnext\n")
    assert follow.status == "ok", follow.errors
    assert "second answer" in static_of(follow)["text/html"]


def test_magic_called_from_running_code_refuses_in_one_line(kernel: Kernel) -> None:
    # Before: a worker thread with its own loop used the chat's client across event loops, and an
    # interrupt left it running and changing the history under the next cell.
    before = value(kernel, "len(nb.get_chat().history)")
    run = kernel.execute("x = 1\nget_ipython().run_cell_magic('claude', '-o fallback', 'from code')")
    # IPython shows a UsageError as one line on stderr, never as a traceback.
    assert run.errors == [] and run.stderr.count("\n") == 1
    assert run.stderr.startswith("UsageError: %claude cannot send from here")
    assert "put %%claude" in run.stderr and "await claudekit.notebook.get_chat()" in run.stderr
    assert value(kernel, "len(nb.get_chat().history)") == before  # nothing was sent or changed
    assert value(kernel, "'fallback' in globals()") is False


def test_load_ext_claudekit_entry_point(kernel: Kernel) -> None:
    if not value(kernel, "hasattr(claudekit, 'load_ipython_extension')"):
        pytest.skip("claudekit/__init__.py does not expose load_ipython_extension yet")
    kernel.ok("%load_ext claudekit")
    transformers = value(
        kernel, "sum(getattr(t, 'claudekit', False) for t in get_ipython().input_transformers_cleanup)"
    )
    assert transformers == 1  # loading twice does not stack transformers


@pytest.mark.parametrize("button", ["approve", "deny"])
def test_approval_decision_reaches_the_running_cell(kernel: Kernel, button: str) -> None:
    """The approval controls sit in the tool card; the page's one decision message decides while the
    cell runs (sent here as JupyterLab sends it: a custom comm message on the shell channel)."""
    kernel.ok(APPROVAL_SETUP + "nb.use_chat(approval_chat(), 'appr')")
    sent: list[str] = []
    views: set[str] = set()

    def frontend(msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content["data"]["state"].get("_model_name") == "AnyModel":
            kernel.send_comm(
                content["comm_id"], {"method": "custom", "content": {"kind": "view", "shown": True}}
            )
            views.add(content["comm_id"])
        if msg["msg_type"] != "comm_msg" or content["comm_id"] not in views:
            return
        for op in content["data"].get("content", {}).get("ops", []):
            if op[0] == "tool" and "approval" in op[2] and "click" not in sent:
                decision = {"kind": "decide", "id": op[2]["id"], "action": button, "reason": "not now"}
                decision["text"] = '{"path": "/tmp/y"}' if button == "approve" else None
                kernel.send_comm(content["comm_id"], {"method": "custom", "content": decision})
                sent.append("click")

    run = kernel.execute("%%claude --chat appr\ndelete /tmp/x\n", timeout=30, on_message=frontend)
    assert run.status == "ok", run.errors
    assert "click" in sent
    assert run.seconds < 4  # decided by the page, not by the unattended fallback after its grace period
    updates = [u["content"]["data"] for u in run.of_type("update_display_data")]
    # A page showed the view: its own output became the saved copy (one output for the reply).
    assert len(updates) == 1 and not [d for d in run.displays if "text/html" in d]
    md = updates[0]["text/html"]
    if button == "approve":
        assert "remove — done: removed /tmp/y · Approved by you (with edited arguments)" in md
    else:
        assert "remove — denied" in md and "Denied by you: not now" in md
        assert md.count("not now") == 1, md  # the reason, once
    assert value(kernel, "[c.decision is not None for c in _claude.tool_calls]") == [True]


GAUGE = '''
@claudekit.tool
def gauge() -> str:
    """Read the gauge."""
    raise RuntimeError("the gauge is broken")

gauged = claudekit.Chat(tools=[gauge], offline=OfflineBackend(responder=Script(
    [Turn(tool_calls=[ToolCall("gauge", {})]), Turn(text="It failed.")])))
'''


def test_a_raising_tool_is_one_line_and_tb_has_its_traceback(kernel: Kernel) -> None:
    kernel.ok(GAUGE)
    run = kernel.ok("r = await gauged('read it')")
    lines = [x for x in run.stderr.splitlines() if x.strip()]
    expected = "claudekit: tool gauge raised RuntimeError: the gauge is broken (the model was told)"
    assert lines == [f"{expected} · %tb for details"], run.stderr
    assert value(kernel, "str(sys.last_value)") == "the gauge is broken"


def test_a_tool_error_with_newlines_is_still_one_line(kernel: Kernel) -> None:
    kernel.ok(GAUGE.replace("the gauge is broken", "the gauge is broken:\\n  dial stuck\\n\\nat 3"))
    run = kernel.ok("r = await gauged('read it')")
    lines = [x for x in run.stderr.splitlines() if x.strip()]
    expected = (
        "claudekit: tool gauge raised RuntimeError: the gauge is broken: dial stuck at 3 (the model was told)"
    )
    assert lines == [f"{expected} · %tb for details"], run.stderr


def test_printed_text_stays_before_and_after_the_view(kernel: Kernel) -> None:
    """The view's displays skip the kernel's stream flush only when nothing is buffered: order holds."""
    kernel.ok("paced = claudekit.Chat(offline=OfflineBackend(event_delay=0.001))")  # the view is built
    run = kernel.ok("print('before'); r = await paced('order'); print('after', file=sys.stderr)")
    kinds = [
        m["content"]["text"].strip() if m["msg_type"] == "stream" else m["msg_type"]
        for m in run.messages
        if m["msg_type"] in ("stream", "display_data", "update_display_data")
    ]
    assert kinds[0] == "before" and kinds[-1] == "after", kinds
    assert "display_data" in kinds and "update_display_data" in kinds

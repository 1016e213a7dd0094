"""Across a real kernel restart: the first kernel is killed, a new one sees its calls, finds its words,
and resumes its chat with the very request the first kernel would have sent next.

The kernels talk to the offline backend over loopback HTTP (the SDK's real client, a fake key); the
backend keeps every request body as it arrived. The first kernel's third prompt is refused once by the
backend, which leaves that kernel's next request on record without changing its conversation.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.notebook.kernel import Kernel

from ._support import Capturing

KEY = "sk-ant-api03-KERNELTEST-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
THIRD = "And what about May?"

FIRST = """
import claudekit as ck
chat = ck.Chat(name="analysis", system="You are a careful analyst. " * 150, thinking=2048, max_tokens=4096,
               cache="1h", budget_usd=5.0)
_r = await chat("Why did churn rise in March?")
_r = await chat("And in April?")
try:
    await chat({third!r})
except ck.BadRequestError as err:
    print("refused:", err.status)
"""

SECOND = """
import claudekit as ck
hist = ck.usage.history()
print(json.dumps({{"rows": len(hist), "chats": sorted(set(hist["chat_id"])), "status": list(hist["status"]),
                  "summary_calls": int(hist.summary()["calls"].sum())}}))
found = ck.search("churn")
print(json.dumps({{"chats": list(found["chat"]), "notebooks": list(found["notebook"])}}))
chat = ck.Chat.resume("analysis")
_r = await chat({third!r})
print(json.dumps({{"text": _r.text, "budget": chat.budget_usd, "turn": chat._turn}}))
"""


def _calls(db: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT session, notebook, cell, status FROM calls ORDER BY id").fetchall()
    finally:
        con.close()


def test_a_new_kernel_sees_the_old_one_and_resumes_its_chat(tmp_path: Path) -> None:
    home = tmp_path / "home"
    backend = Capturing(signing_key=b"kernel-restart", fail_once=THIRD)
    with backend.serve() as srv:
        env = {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": srv.base_url,
            "CLAUDEKIT_HOME": str(home),
            "CLAUDEKIT_RENDER": "0",
            "JPY_SESSION_NAME": str(tmp_path / "work" / "analysis.ipynb"),
        }
        first = Kernel(env=env)
        try:
            first.ok("import json")
            run = first.ok(FIRST.format(third=THIRD), timeout=120)
            assert "refused: 400" in run.stdout, run.stdout + run.stderr
            (cell,) = [m["content"]["execution_count"] for m in run.of_type("execute_input")]
        finally:
            first.km.shutdown_kernel(now=True)  # killed: no atexit, no goodbye
            first.kc.stop_channels()
        sent = backend.messages_sent()
        assert len(sent) == 3
        wanted = sent[-1]
        assert json.loads(wanted)["messages"][-1]["content"][-1]["text"] == THIRD

        calls = _calls(home / "claudekit.db")
        assert [c[3] for c in calls] == ["ok", "ok", "invalid_request_error"]
        assert {c[1] for c in calls} == {env["JPY_SESSION_NAME"]}
        assert [c[2] for c in calls] == [cell] * 3  # the cell's execution count, In[n] of the notebook

        second = Kernel(env={**env, "JPY_SESSION_NAME": str(tmp_path / "work" / "report.ipynb")})
        try:
            second.ok("import json")
            run = second.ok(SECOND.format(third=THIRD), timeout=120)
            lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
            usage, found, resumed = lines
            assert usage["rows"] == 3 and usage["chats"] == ["analysis"] and usage["summary_calls"] == 3
            assert usage["status"] == ["ok", "ok", "invalid_request_error"]
            assert found["chats"] and set(found["chats"]) == {"analysis"}
            assert set(found["notebooks"]) == {env["JPY_SESSION_NAME"]}
            assert resumed["budget"] == 5.0 and resumed["turn"] == 4 and resumed["text"]
            # The resumed chat's request is, byte for byte, the one the killed kernel sent last.
            assert backend.messages_sent()[3] == wanted

            # The magic: every kernel's usage from the store, and a dry run that sends no message.
            second.ok("%load_ext claudekit")
            table = second.ok(
                "t = %claude usage history --all\nprint(len(t), type(t).__name__, sorted(set(t.chat_id)))"
            )
            assert table.stdout.split() == ["4", "UsageFrame", "['analysis']"]  # 3 old calls, 1 resumed
            second.ok("ck.notebook.use_chat(chat)")
            before = len(backend.raw)
            dry = second.ok("%%claude --dry-run\nAnd in June?")
            assert "dry run, nothing sent" in dry.stdout and "input tokens (count_tokens" in dry.stdout
            assert [p for p, _ in backend.raw[before:]] == ["/v1/messages/count_tokens"]
        finally:
            second.shutdown()

"""Code into a new cell, explaining the last error, notebook references — in a real kernel (jupyter_client).

The offline backend in the kernel scripts the answers and keeps every request it received
(``backend.requests``), so the tests read exactly what would have gone to the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from claudekit.offline import count_text
from tests.notebook.kernel import CellRun, Kernel, started_kernel

FAKE_KEY = "sk-ant-api03-FAKE0123456789abcdefghijklmnop"  # looks real; lives only in the kernel's env
FAKE_PASSWORD = "correct-horse-battery-staple"  # matches no key pattern: only the environment net catches it

SETUP = """
%load_ext claudekit
import json, os
import pandas as pd
import claudekit, claudekit.notebook as nb
from claudekit.offline import OfflineBackend, Script, Turn

def scripted(*answers):
    backend = OfflineBackend(responder=Script([Turn(text=a) for a in answers]))
    nb.use_chat(claudekit.Chat(offline=backend))
    return backend

def last_request():
    print(json.dumps(backend.requests[-1]))
"""

DEFINING_CELL = """def monthly_revenue(df, auth):
    conn = os.environ["SERVICE_PASSWORD"]
    session = {"region": "EU", "header": auth}
    return df["revenue"].sum() / 12
"""
FAILING_CELL = """sales = pd.DataFrame({"price": [9.5, 12.0, 7.25], "qty": [3, 1, 4]})
header = os.environ["ANTHROPIC_API_KEY"]
monthly_revenue(sales, header)
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with started_kernel(SETUP, env={"ANTHROPIC_API_KEY": FAKE_KEY, "SERVICE_PASSWORD": FAKE_PASSWORD}) as k:
        yield k


def payloads(run: CellRun) -> list[dict[str, Any]]:
    return [p for p in run.reply["content"].get("payload", []) if p.get("source") == "set_next_input"]


def last_request(k: Kernel) -> dict[str, Any]:
    body = json.loads(k.ok("last_request()").stdout)
    assert isinstance(body, dict)
    return body


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(b["text"] for b in content if b["type"] == "text")


def requests_made(k: Kernel) -> int:
    return int(k.ok("print(len(backend.requests))").stdout)


CODE = "totals = sales.groupby('region')['price'].sum()\ntotals.plot.bar()"


def test_code_cell_payload_holds_exactly_the_scripted_code(kernel: Kernel) -> None:
    answer = f"Group, then plot:\n\n```python\n{CODE}\n```\n\nRun it when ready."
    kernel.ok(f"backend = scripted({answer!r})\nsales = pd.DataFrame({{'region': ['EU'], 'price': [1.0]}})")
    run = kernel.ok("%%claude --code\nPlot total price per region of {sales}\n")
    (payload,) = payloads(run)
    assert payload["text"] == CODE and payload["replace"] is False
    assert "is in a new cell below, not run" in run.stdout
    body = last_request(kernel)
    system = body["system"] if isinstance(body["system"], str) else body["system"][0]["text"]
    assert "exactly one fenced ```python code block" in system
    assert "- sales: DataFrame 1 row × 2 columns: region (" in system and "price (float64)" in system
    assert "DataFrame: 1 row × 2 columns" in user_text(body)  # {sales} went in as a summary


def test_code_n_picks_a_block_and_no_block_means_no_payload(kernel: Kernel) -> None:
    kernel.ok(
        "backend = scripted('```bash\\nls\\n```\\n```python\\nfirst = 1\\n```\\n"
        "```python\\nsecond = 2\\n```', 'No code today.')"
    )
    run = kernel.ok("%%claude --code 3\nthree blocks please\n")
    assert [p["text"] for p in payloads(run)] == ["second = 2"]
    plain = kernel.ok("%%claude --code\nand now?\n")
    assert payloads(plain) == [] and "no fenced code block, so no cell was added" in plain.stdout
    bad = kernel.execute("%%claude --code two\nx\n")
    assert bad.status == "error" and "--code takes a code block number (1, 2, …), not 'two'" in bad.stderr


def test_reply_to_cell_from_python(kernel: Kernel) -> None:
    kernel.ok(
        "backend = scripted('```python\\nprint(42)\\n```')\nr = await claudekit.notebook.get_chat()('code')"
    )
    run = kernel.ok("r.to_cell()")
    assert [p["text"] for p in payloads(run)] == ["print(42)"]
    assert run.results == []  # nothing echoed below the cell


def seed_key_error(k: Kernel) -> CellRun:
    k.ok(DEFINING_CELL)
    run = k.execute(FAILING_CELL)
    assert run.status == "error" and run.errors[0]["ename"] == "KeyError"
    return run


def test_why_sends_the_failing_cell_the_defining_cell_and_the_frames_columns(kernel: Kernel) -> None:
    kernel.ok("backend = scripted('The frame has no revenue column; use price * qty.')")
    seed_key_error(kernel)
    run = kernel.ok("%claude why --values")
    assert "no revenue column" in run.displays[-1]["text/html"]
    body = last_request(kernel)
    text = user_text(body)
    assert FAILING_CELL.strip() in text
    assert "def monthly_revenue(df, auth):" in text and 'return df["revenue"].sum() / 12' in text
    assert "KeyError: 'revenue'" in text
    assert "- df: DataFrame 3 rows × 2 columns: price (float64), qty (int64)" in text  # the frame's columns
    assert count_text(text) <= 4_000  # the default budget
    wire = json.dumps(body)
    assert FAKE_KEY not in wire and FAKE_KEY[:20] not in wire
    assert FAKE_PASSWORD not in wire
    assert "[redacted: value of $SERVICE_PASSWORD]" in text  # conn = os.environ[...] shown with --values
    assert "- auth: str (value withheld: the name looks like a secret)" in text
    # A neutral name holding the key (the failing cell's header, and inside a dict) is caught by its value.
    assert "- header: str, 43 characters = '[redacted: value of $ANTHROPIC_API_KEY]'" in text
    assert (
        "- session: dict, 2 items = {'region': 'EU', 'header': '[redacted: value of $ANTHROPIC_API_KEY]'}"
        in text
    )


def test_why_without_values_shows_types_only(kernel: Kernel) -> None:
    kernel.ok("backend = scripted('ok')")
    seed_key_error(kernel)
    kernel.ok("%claude why")
    text = user_text(last_request(kernel))
    assert "- conn: str, 28 characters\n" in text  # len(FAKE_PASSWORD), no value
    assert "= '" not in text and FAKE_KEY not in text


def test_a_small_budget_cuts_the_least_relevant_parts_first(kernel: Kernel) -> None:
    kernel.ok("backend = scripted('ok', 'ok')")
    seed_key_error(kernel)
    kernel.ok("%claude why")
    full = user_text(last_request(kernel))
    kernel.ok("%claude why --budget 500")
    text = user_text(last_request(kernel))
    assert count_text(full) > 500 >= count_text(text)
    note = text.rsplit("\n", 1)[-1]
    assert note.startswith("[context cut to fit 500 tokens: ") and "package versions dropped" in note
    assert "## Versions" in full and "## Versions" not in text
    assert "variables of the failing cell" in note  # outer frame's variables go before the innermost's
    assert "- df: DataFrame 3 rows × 2 columns: price (float64), qty (int64)" in text
    for kept in ("KeyError: 'revenue'", FAILING_CELL.strip(), "def monthly_revenue(df, auth):"):
        assert kept in text  # the most relevant parts stay whole


def test_fix_explains_and_puts_the_corrected_code_in_a_new_cell(kernel: Kernel) -> None:
    fixed = "sales['revenue'] = sales['price'] * sales['qty']\nmonthly_revenue(sales, header)"
    answer = "There is no revenue column.\n\n```python\n" + fixed + "\n```"
    kernel.ok(f"backend = scripted({answer!r})")
    seed_key_error(kernel)
    run = kernel.ok("%claude fix")
    assert [p["text"] for p in payloads(run)] == [fixed]
    body = last_request(kernel)
    assert "corrected code as one runnable ```python block" in user_text(body)
    assert "Variables in the kernel:" in json.dumps(body["system"])


def test_context_shows_the_request_and_sends_nothing(kernel: Kernel) -> None:
    kernel.ok("backend = scripted('unused')")
    seed_key_error(kernel)
    before = requests_made(kernel)
    run = kernel.ok("%claude context why")
    assert "## The failing cell" in run.stdout and "def monthly_revenue" in run.stdout
    assert "── %claude why would send this message: " in run.stdout and "Nothing was sent." in run.stdout
    shown = run.stdout.split("\n── ", 1)[0]
    tokens = int(run.stdout.split("would send this message: ", 1)[1].split(" tokens")[0].replace(",", ""))
    assert tokens == count_text(shown)
    cell = kernel.ok("%%claude context\nSummarise {sales:schema}\n")
    assert (
        "Summarise DataFrame: 3 rows × 2 columns\n  column  dtype\n  price   float64\n  qty     int64"
        in cell.stdout
    )
    assert requests_made(kernel) == before


def test_in_out_and_last_output_references(kernel: Kernel) -> None:
    kernel.ok("backend = scripted('noted')")
    first = kernel.ok("6 * 7")
    n = first.reply["content"]["execution_count"]
    kernel.ok(f"%%claude\nCell {{In[{n}]}} gave {{Out[{n}]}}; last output {{_}}.\n")
    assert user_text(last_request(kernel)) == "Cell 6 * 7 gave 42; last output 42.\n"


def test_why_with_no_error_yet_is_one_line(kernel: Kernel) -> None:
    kernel.ok(
        "import sys\nfrom claudekit.notebook import _context\n"
        "_context._last = None\nsys.__dict__.pop('last_value', None)"
    )
    run = kernel.execute("%claude why")
    assert run.status == "error"
    (err,) = run.errors
    assert len(err["traceback"]) == 1 and "no error to explain yet" in err["traceback"][0]


def test_why_after_a_syntax_error_names_the_cell_not_its_temporary_file(kernel: Kernel) -> None:
    kernel.ok("backend = scripted('unused')")
    assert kernel.execute("total = (1,\nprint(total").status == "error"
    out = kernel.ok("%claude context why").stdout
    assert "In the failing cell, line 2" in out and "SyntaxError: " in out
    assert "ipykernel_" not in out and "## The failing cell\n```python\ntotal = (1,\nprint(total\n```" in out


def test_insert_below_clicked_while_the_reply_streams_becomes_the_cells_payload(kernel: Kernel) -> None:
    """What the live view's Insert below sends (one custom message) reaches the kernel mid-stream."""
    kernel.ok(
        "slow = OfflineBackend(responder=Script([Turn(text='Try:\\n\\n```python\\nprint(1)\\n```\\n\\n' + "
        "' '.join(f'w{i}' for i in range(400)))]), event_delay=0.005)\n"
        "nb.use_chat(claudekit.Chat(offline=slow))"
    )
    clicked: list[str] = []

    def page(msg: dict[str, Any]) -> None:
        content = msg["content"]
        state = content.get("data", {}).get("state", {}) if msg["msg_type"] == "comm_open" else {}
        if state.get("_anywidget_id") == "claudekit.notebook.DocWidget" and not clicked:
            click = {"kind": "insert", "code": "print(1)"}
            kernel.send_comm(content["comm_id"], {"method": "custom", "content": click})
            clicked.append(content["comm_id"])

    run = kernel.execute("%%claude\ncode please\n", on_message=page, timeout=60)
    assert run.status == "ok" and clicked
    assert payloads(run) == [{"source": "set_next_input", "text": "print(1)", "replace": False}]
    late = kernel.execute("x = 1", on_message=None)
    kernel.send_comm(clicked[0], {"method": "custom", "content": {"kind": "insert", "code": "late()"}})
    after = kernel.ok("y = 2")
    assert payloads(late) == [] and payloads(after) == []  # a click after the reply ended inserts nothing

"""Edited approval arguments are validated strictly, in real JupyterLab + Chromium (issue 21, item 5).

"What you typed, exactly, is what runs": typing ``"force": "yes"`` for a boolean (key by key, as a person
types; widget state typed during a running cell is held back, so only the page's custom messages count)
shows the problem on the card and keeps Approve disabled; pydantic's lax mode used to turn it into
``True`` silently. Fixed to ``true``, it approves and the tool runs with exactly that.
"""

# ruff: noqa: F811  (the fixtures imported from test_jupyterlab are parameters of the tests)
from __future__ import annotations

import json

import pytest

# Through test_jupyterlab, which skips the module when Chromium or playwright is missing.
from tests.browser.test_jupyterlab import (  # noqa: F401  (fixtures)
    CELL_S,
    Lab,
    Session,
    _caret_before,
    expect,
    session,
    write_notebook,
)

pytestmark = pytest.mark.timeout(240)

SETUP = '''\
import claudekit as ck
from claudekit.offline import OfflineBackend, Script, Turn, ToolCall
ran = []

@ck.tool(approve=True)
def delete_branch(name: str, force: bool = False) -> str:
    """Delete a git branch."""
    ran.append((name, force))
    return f"deleted {name}"

chat = ck.Chat(tools=[delete_branch], offline=OfflineBackend(responder=Script([
    Turn(tool_calls=[ToolCall("delete_branch", {"name": "old"})]), Turn(text="Done."),
])))'''


def test_a_string_for_a_boolean_is_a_problem_on_the_card(session: Session, lab: Lab) -> None:
    write_notebook(
        lab.root / "strict.ipynb", [SETUP, 'reply = await chat("delete old")', "print('ran:', ran)"]
    )
    session.open("strict.ipynb")
    session.run_and_wait(0)
    session.run(1)
    view = session.output(1).locator(".claudekit-live")
    approve = view.locator("button.ck-approve")
    expect(approve).to_be_visible(timeout=CELL_S * 1000)
    view.locator("button.ck-edit").click()
    editor = view.locator("textarea.ck-editor")
    expect(editor).to_be_visible()
    _caret_before(session, editor, 0)  # at the end of the '"name": "old"' line
    session.type_keys(', "force": "yes"')
    expect(editor).to_have_value('{\n  "name": "old", "force": "yes"\n}')
    problem = view.locator(".ck-problem")
    expect(problem).to_contain_text("force", timeout=CELL_S * 1000)
    expect(problem).to_contain_text("valid boolean")
    expect(approve).to_be_disabled()

    for _ in range(len('"yes"')):
        session.page.keyboard.press("Backspace")
    session.type_keys("true")
    expect(problem).to_be_hidden(timeout=CELL_S * 1000)
    expect(approve).to_be_enabled()
    approve.click()
    session.wait_done(1)
    session.run_and_wait(2)
    expect(session.output(2)).to_contain_text("ran: [('old', True)]")
    # The kernel was asked about "yes" and refused it; the decision carried exactly what was typed.
    asked = [m["content"]["data"]["content"]["text"] for m in session.frames.custom("validate")]
    assert any('"yes"' in t for t in asked), asked
    (decide,) = session.frames.custom("decide")
    assert json.loads(decide["content"]["data"]["content"]["text"]) == {"name": "old", "force": True}

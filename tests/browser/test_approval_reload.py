"""A page reload while an approval card waits (issue 21, item 4), in real JupyterLab + headless Chromium.

Before: the kernel waited for good (without a save the card never came back; after Ctrl+S it came back
but, once approved, the cell's output was empty). Now the card comes back from the saved output (its
view re-renders from what the kernel holds), a person approves it, the cell finishes, its output shows
the outcome, and the next cell runs. The kernel-level tests of both outcomes (card back / not back) are
tests/notebook/test_reload.py. Same server and browser recipe as test_jupyterlab.py.
"""

# ruff: noqa: F811  (the fixtures imported from test_jupyterlab are parameters of the tests)
from __future__ import annotations

import re
import time

import pytest

from claudekit._tooling._approval import DEFAULT_GRACE_S

# Through test_jupyterlab, which skips the module when Chromium or playwright is missing.
from tests.browser.test_jupyterlab import (  # noqa: F401  (fixtures)
    CELL_S,
    OPEN_S,
    Lab,
    Session,
    approval_notebook,
    expect,
    session,
)

pytestmark = pytest.mark.timeout(240)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _saved(lab: Lab, name: str, timeout_s: float = 20.0) -> str:
    """The notebook's text once Ctrl+S wrote the waiting cell's widget output to disk."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = (lab.root / name).read_text()
        if WIDGET_MIME in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{name} was not saved with the widget output")


def test_reload_while_a_card_waits_then_approve(session: Session, lab: Lab) -> None:
    name = approval_notebook(lab.root, "reload.ipynb", static=True)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    approve = session.output(1).locator(".claudekit-live button.ck-approve")
    expect(approve).to_be_visible(timeout=CELL_S * 1000)

    # Save (autosave is off in this server), then reload the page while the card waits.
    session.page.keyboard.press("Escape")
    session.page.keyboard.press("Control+s")
    _saved(lab, name)
    session.page.reload()
    expect(session.panel).to_be_visible(timeout=OPEN_S * 1000)

    # The card comes back: the saved output's view re-renders from the state the kernel holds.
    view = session.output(1).locator(".claudekit-live")
    approve = view.locator("button.ck-approve")
    expect(approve).to_be_visible(timeout=OPEN_S * 1000)
    card = view.locator("details.ck-tool")
    expect(card.locator("summary")).to_contain_text("delete_file — awaiting approval")
    session.no_widget_errors(1)
    approve.click()

    # The reply finishes in the same view: the cell's output shows the outcome, not an empty area.
    expect(card.locator("summary")).to_contain_text("delete_file — done", timeout=CELL_S * 1000)
    expect(card.locator("summary")).to_contain_text("Approved by you")
    expect(view.locator(".ck-status")).to_be_hidden(timeout=CELL_S * 1000)
    expect(view.locator(".ck-foot")).to_contain_text("claudekit")
    assert "deleted important.txt" in session.text(1), session.text(1)

    # The kernel is free: the next cell runs, and the tool ran once, as approved.
    session.run(2)
    expect(session.cell(2).locator(".jp-InputPrompt")).to_have_text(
        re.compile(r"\[\d+\]:"), timeout=CELL_S * 1000
    )
    expect(session.output(2)).to_contain_text("ran: ['important.txt'] approved")


def test_reload_without_saving_ends_the_wait_with_the_unattended_policy(session: Session, lab: Lab) -> None:
    name = approval_notebook(lab.root, "reload-unsaved.ipynb", static=True)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    expect(session.output(1).locator(".claudekit-live button.ck-approve")).to_be_visible(
        timeout=CELL_S * 1000
    )
    # No save: the page asks "leave the page?" (unsaved changes) and the person leaves; the card has
    # nowhere to come back to.
    session.page.once("dialog", lambda dialog: dialog.accept())
    session.page.reload()
    expect(session.panel).to_be_visible(timeout=OPEN_S * 1000)
    expect(session.cells.nth(2).locator(".cm-content")).to_be_visible(timeout=OPEN_S * 1000)
    # The next cell runs (before: it hung at [*] for good); the call was denied by the unattended
    # default after the grace period, and the model was told why.
    session.run(2)
    expect(session.cell(2).locator(".jp-InputPrompt")).to_have_text(
        re.compile(r"\[\d+\]:"), timeout=(CELL_S + DEFAULT_GRACE_S) * 1000
    )
    expect(session.output(2)).to_contain_text("ran: [] denied")
    expect(session.output(2)).to_contain_text("the page was reloaded and the approval card did not come back")

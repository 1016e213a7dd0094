"""README.md cannot drift: every code fence says what it is, and every Python / IPython snippet runs, in
order, in one real kernel on the offline backend (issue 28).

A fence that cannot run here says so on the line before it, with the reason:
``<!-- readme-test: skip (why) -->``. Shell fences must carry one; the contributors' two commands are
checked against ``.ci/run`` instead, which runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.notebook.kernel import ROOT, Kernel

README = ROOT / "README.md"
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<why>[^)]+)\) -->$")
RUNNABLE = ("python", "ipython")
KINDS = (*RUNNABLE, "bash", "text")


@dataclass(frozen=True)
class Fence:
    line: int  # 1-based line of the opening ```
    lang: str
    code: str
    skip: str | None  # the reason given by a skip marker, if any


def fences(text: str) -> list[Fence]:
    out: list[Fence] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        start, lang = i, lines[i][3:].strip()
        marker = SKIP.match(lines[i - 1].strip()) if i else None
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"README.md:{start + 1}: the fence is never closed"
        out.append(Fence(start + 1, lang, "\n".join(body) + "\n", marker["why"] if marker else None))
        i += 1
    return out


FENCES = fences(README.read_text(encoding="utf-8"))


def test_the_readme_has_snippets_to_run() -> None:
    assert sum(f.lang in RUNNABLE and f.skip is None for f in FENCES) >= 10


@pytest.mark.parametrize("fence", FENCES, ids=lambda f: f"line{f.line}")
def test_every_fence_says_what_it_is(fence: Fence) -> None:
    assert fence.lang in KINDS, f"README.md:{fence.line}: a fence needs one of {KINDS}, not {fence.lang!r}"
    if fence.lang == "bash":
        assert fence.skip, f"README.md:{fence.line}: shell commands need a skip marker with the reason"


@pytest.mark.parametrize("fence", [f for f in FENCES if f.lang in RUNNABLE], ids=lambda f: f"line{f.line}")
def test_snippets_call_claudekit_by_one_name(fence: Fence) -> None:
    """``import claudekit as ck`` everywhere: no snippet mixes ``ck.`` and ``claudekit.``."""
    for n, line in enumerate(fence.code.splitlines(), fence.line + 1):
        code = line.split("#", 1)[0]
        if code.lstrip().startswith(("import claudekit", "from claudekit")) or "%load_ext" in code:
            continue
        assert "claudekit." not in code, f"README.md:{n}: write ck. (import claudekit as ck)"


def test_contributor_commands_are_what_ci_runs() -> None:
    (block,) = [f for f in FENCES if f.lang == "bash" and "pytest" in f.code and "nbconvert" in f.code]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [ln.strip() for ln in block.code.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 2
    ran = [ln.strip().replace(" --quiet", "") for ln in ci]  # CI runs them quietly
    for command in commands:
        assert command in ran, f".ci/run does not run README's {command!r}"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel as nbconvert runs one (no page: stdin not allowed), in a directory and a store of its
    own, with no API key: what a reader who pastes the snippets into a new notebook gets, offline."""
    where = tmp_path_factory.mktemp("readme")
    k = Kernel(env={"CLAUDEKIT_HOME": str(where / "home")})
    k.kc.allow_stdin = False
    try:
        k.ok(f"import os; os.chdir({str(where)!r})")
        yield k
    finally:
        k.shutdown()


@pytest.mark.parametrize(
    "fence", [f for f in FENCES if f.lang in RUNNABLE and f.skip is None], ids=lambda f: f"line{f.line}"
)
def test_readme_snippet_runs(kernel: Kernel, fence: Fence) -> None:
    run = kernel.execute(fence.code, timeout=120)
    assert run.status == "ok", f"README.md:{fence.line}: {run.errors or run.stderr}"
    assert "Traceback" not in run.stderr, f"README.md:{fence.line}: {run.stderr}"

"""The magic's notebook-aware requests: ``--code``, ``%claude why`` / ``fix`` and ``%claude context``.

This module builds texts (prompts, system prompts, what ``context`` prints); ``_magic`` sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from IPython.core import magic_arguments as _margs
from IPython.core.error import UsageError

from .._request._settings import build_request
from .._request._template import format_prompt
from ._context import DEFAULT_BUDGET, ErrorContext, error_context, namespace_outline

if TYPE_CHECKING:
    from .._runner._chat import Chat

__all__ = [
    "CODE_SYSTEM",
    "code_system",
    "explain",
    "explain_options",
    "is_prompt",
    "show_context",
]

CODE_SYSTEM = (
    "Answer with exactly one fenced ```python code block that runs as the next cell of this Jupyter "
    "notebook. Use the variables that already exist in the kernel (listed below) instead of re-creating "
    "or re-loading them. Put at most two sentences of explanation before the block.\n\n"
    "Variables in the kernel:\n{names}"
)
WHY = (
    "My last notebook cell raised an error. From the context below, explain what caused it: point to "
    "the line and the value responsible, and say how to fix it. Be brief."
)
FIX = (
    "My last notebook cell raised an error. From the context below, explain the cause in two or three "
    "sentences, then give the corrected code as one runnable ```python block that replaces the failing "
    "cell (it goes into a new cell below; do not re-create variables that already exist)."
)


def code_system(system: Any, namespace: Mapping[str, Any]) -> Any:
    """The system prompt of a ``--code`` request: the chat's own, plus the code instructions."""
    extra = CODE_SYSTEM.format(names=namespace_outline(namespace))
    if not system:
        return extra
    if isinstance(system, str):
        return f"{system}\n\n{extra}"
    return [*system, {"type": "text", "text": extra}]


def is_prompt(rest: str) -> bool:
    """``%claude why is the sky blue?`` is a prompt; ``%claude why`` and ``%claude why --values`` are not."""
    return bool(rest.strip()) and not rest.strip().startswith("-")


def explain_options(rest: str, command: str) -> Any:
    """``--values`` and ``--budget N`` of ``why`` / ``fix`` (a one-line UsageError when wrong)."""
    make_parser: Any = _margs.MagicArgumentParser  # untyped in IPython
    parser = make_parser(prog=f"%claude {command}", add_help=False)
    parser.add_argument("--values", action="store_true", help="include variable values (secrets stay out)")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET, metavar="N", help="token budget")
    args = parser.parse_argstring(rest)
    if args.budget < 200:
        raise UsageError(f"%claude {command}: --budget must be at least 200 tokens, not {args.budget}")
    return args


def explain(shell: Any, command: str, rest: str) -> ErrorContext:
    """The message ``%claude why`` / ``fix`` sends (instruction + kernel context, within the budget)."""
    opts = explain_options(rest, command)
    instruction = FIX if command == "fix" else WHY
    return error_context(shell, values=opts.values, budget=opts.budget, instruction=instruction)


def _request_tokens(chat: Chat, prompt: str | None, system: Any) -> int:
    from ..offline import count_tokens

    messages = chat.history.to_params()
    if prompt is not None:
        messages.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
    settings = chat.settings.replace(system=system)
    return count_tokens(build_request(settings, messages, chat.toolset.params()))


def show_context(shell: Any, chat: Chat, rest: str, *, body: str | None = None, code: bool = False) -> None:
    """``%claude context …``: print what the next request would send, with token counts; send nothing.

    ``context`` alone: the conversation so far; ``context why|fix [--values] [--budget N]``: the error
    context; ``context PROMPT`` (or ``%%claude context`` with a body): the filled prompt.
    """
    word, _, tail = rest.strip().partition(" ")
    system = code_system(chat.system, shell.user_ns) if code or word == "fix" else chat.system
    if word in ("why", "fix") and not is_prompt(tail):
        ctx = explain(shell, word, tail)
        cut = f"; cut: {'; '.join(ctx.cut)}" if ctx.cut else ""
        secrets = (
            f"; {ctx.redacted} secret{'s' if ctx.redacted != 1 else ''} redacted" if ctx.redacted else ""
        )
        print(ctx.text)
        print(
            f"── %claude {word} would send this message: {ctx.tokens:,} tokens (budget {ctx.budget:,}{cut}"
            f"{secrets}); the whole request: {_request_tokens(chat, ctx.text, system):,} tokens "
            f"({_whole(chat, system)}). Nothing was sent."
        )
        return
    prompt = body if body is not None else rest.strip()
    if not prompt:
        print(
            f"── {chat.name}: model {chat.model}; the next request sends "
            f"{_request_tokens(chat, None, system):,} tokens before your prompt ({_whole(chat, system)}). "
            "Nothing was sent."
        )
        return
    attached: list[Any] = []
    text = format_prompt(prompt, shell.user_ns, attachments=attached)
    if code:
        print(f"[system prompt]\n{system}\n[prompt]")
    for obj in attached:  # a {field} holding a Document (Image, File, SearchResult): sent as its own block
        print(f"[attached: {obj!r}]")
    print(text)
    blocks = " (text only: %%claude --dry-run counts the attachments too)" if attached else ""
    print(
        f"── this prompt: {_count(text):,} tokens{blocks}; the whole request: "
        f"{_request_tokens(chat, text, system):,} tokens ({_whole(chat, system)}). Nothing was sent."
    )


def _whole(chat: Chat, system: Any) -> str:
    """What besides the prompt the request carries."""
    n = len(chat.history)
    parts = [
        f"{n} earlier message{'s' if n != 1 else ''}",
        "a system prompt" if system else "no system prompt",
    ]
    tools = len(chat.toolset.names)
    if tools:
        parts.append(f"{tools} tool{'s' if tools != 1 else ''}")
    return ", ".join(parts) + "; offline counter"


def _count(text: str) -> int:
    from ..offline import count_text

    return count_text(text)

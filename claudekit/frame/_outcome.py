"""What one request of a job came to: the answer (text or structured fields), its status and cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .._base._errors import ClaudekitError, OutputFormatError
from .._request._settings import parse_output

__all__ = ["ANSWERED", "Outcome", "from_error", "from_message"]

#: Statuses of a request the model answered: a state file keeps these (they are not sent again).
ANSWERED = frozenset({"ok", "max_tokens", "refusal", "output_format_error"})


@dataclass(slots=True)
class Outcome:
    """``status`` is ``"ok"``, an API error type, ``"max_tokens"``, ``"refusal"``, ``"canceled"``, …"""

    status: str
    error: str | None = None
    text: str | None = None
    data: dict[str, Any] | None = None  # the parsed answer with output_format
    cost: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def answered(self) -> bool:
        """The model answered (and the call was billed), even if the answer is cut off or refused:
        sending the same request again would pay for the same answer twice."""
        return self.status in ANSWERED

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def from_message(message: Any, output_format: Any, record: Any) -> Outcome:
    """The outcome of an answered request; ``record`` is its :class:`~claudekit.usage.UsageRecord`."""
    text = "".join(b.text for b in message.content if b.type == "text")
    out = Outcome(
        "ok",
        text=text,
        cost=record.cost_usd,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read=record.cache_read_input_tokens,
    )
    stop = message.stop_reason
    if stop == "refusal":
        out.status, out.error = "refusal", "the model declined to answer (stop_reason refusal)"
    elif output_format is not None:
        out.data, out.text = _parse(output_format, text, stop)
        if out.data is None:
            out.status, out.error = "output_format_error", out.text
            out.text = None
    elif stop == "max_tokens":
        out.status = "max_tokens"
        out.error = "the answer was cut off at max_tokens; raise max_tokens for complete answers"
    return out


def _parse(fmt: Any, text: str, stop: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(parsed fields, None) or (None, the one-line reason it could not be parsed)."""
    try:
        value = parse_output(fmt, text)
    except OutputFormatError as err:
        cut = " (cut off at max_tokens)" if stop == "max_tokens" else ""
        return None, f"{err.message}{cut}"
    dump = getattr(value, "model_dump", None)
    data = dump(mode="json") if callable(dump) else value
    if not isinstance(data, dict):
        return None, f"the answer is a JSON {type(data).__name__}, not an object with fields"
    return data, None


def from_error(err: ClaudekitError, record: Any = None) -> Outcome:
    """The outcome of a request that failed: the error's type as status, its message as the error."""
    return Outcome(err.kind, error=err.message, cost=getattr(record, "cost_usd", None))

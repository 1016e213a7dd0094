"""The offline Messages API: one implementation behind the transports and the server."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._base import _models
from ._batches import BatchSettings, BatchStore
from ._cache import Prompt, PromptCache, build_prompt, model_key
from ._errors import ApiError, error_body
from ._faults import FAULT_HEADER, Fault
from ._files import FileStore
from ._models_api import get_model, list_models
from ._ratelimit import DEFAULT_LIMITS, RateLimiter, RateLimits, WallClock
from ._recent import RecentList
from ._responders import DefaultResponder, OfflineRequest, Responder, Turn
from ._server import OfflineServer
from ._server_tools import server_blocks
from ._signing import ThinkingSigner
from ._sse import Block, Rendered, encode_event, final_block, message_json, render, stream_events
from ._threads import ThreadStore
from ._transport import OfflineAsyncTransport, OfflineTransport
from ._validation import Context, parse_betas, thinking_on, validate_request
from ._wire import Action, Call, Cut, Reply, Route, Sleep, Stall, b62, json_reply

# The wire types live in a leaf (._wire); re-exported here, where they were first defined.
__all__ = ["Call", "Cut", "OfflineBackend", "Reply", "Route", "Sleep", "Stall"]

_KEEP_REQUESTS = 512  # request bodies kept for inspection
_KEEP_BYTES = 64 * 2**20  # …and at most about this many bytes of them
_KEEP_LOG = 10_000  # (method, path) entries kept


@dataclass
class _Record:
    """What diagnostics needs to remember about an earlier request."""

    model: str
    tools_hash: str
    system_hash: str
    message_hashes: list[str]
    message_cum_tokens: list[int]
    tools_tokens: int
    system_tokens: int
    total: int
    params_hash: str


class OfflineBackend:
    """An offline Messages API that validates, streams and caches like the service.

    ``responder`` decides what the model says (default: :class:`DefaultResponder`);
    ``clock`` returns seconds (default ``time.monotonic``) and :meth:`advance` moves
    the backend's time forward on top of it; ``today`` is the backend's calendar date when it
    starts (default: the real date), which :meth:`advance` moves too and which decides whether
    a model is retired; ``signing_key`` is the HMAC key for thinking signatures (random by
    default); ``event_delay`` paces stream events (seconds).

    ``rate_limits`` (:class:`~claudekit.offline.RateLimits`) enforces per-minute limits; by default
    generous ones are only reported in ``anthropic-ratelimit-*`` headers. ``batches``
    (:class:`~claudekit.offline.BatchSettings`) sets how the Message Batches endpoints behave.

    Requests are dispatched by method and path through :attr:`routes`; append a :class:`Route`
    to serve another endpoint. ``http_log`` lists ``(method, path)`` of every request received.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        clock: Callable[[], float] | None = None,
        today: dt.date | str | None = None,
        signing_key: bytes | None = None,
        event_delay: float = 0.0,
        rate_limits: RateLimits | None = None,
        batches: BatchSettings | None = None,
    ) -> None:
        self.responder: Responder = responder if responder is not None else DefaultResponder()
        self._base_clock = clock or time.monotonic
        self._offset = 0.0
        start = dt.date.fromisoformat(today) if isinstance(today, str) else today
        self._start_date = start or dt.date.today()
        self.routes: list[Route] = [
            Route("POST", "/v1/messages", self._messages_route),
            Route("POST", "/v1/messages/count_tokens", self._count_tokens_route),
            Route("GET", "/v1/models", self._list_models_route),
            Route("GET", "/v1/models/{model_id}", self._get_model_route),
            Route("POST", "/v1/complete", _complete_removed),
        ]
        self.cache = PromptCache(self.now)
        self.signer = ThinkingSigner(signing_key)
        self.event_delay = event_delay
        self._lock = threading.Lock()
        self._counter = 0
        self._records: dict[str, _Record] = {}
        # Bounded, so a long-lived server does not keep every request (tests still read the recent ones).
        self.requests: RecentList[dict[str, Any]] = RecentList(maxlen=_KEEP_REQUESTS, max_bytes=_KEEP_BYTES)
        self.http_log: RecentList[tuple[str, str]] = RecentList(maxlen=_KEEP_LOG)
        self.threads = ThreadStore(self.now)
        wall = WallClock(self.now)
        self.rate_limiter = RateLimiter(rate_limits or DEFAULT_LIMITS, self.now, wall)
        self.batches: BatchStore = BatchStore(
            self._batch_answer, self._next_ids, self.now, batches or BatchSettings(), wall
        )
        self.routes += self.batches.routes()
        #: The Files API's files (``files.uploads`` counts uploads received).
        self.files = FileStore(wall)
        self.routes += self.files.routes()

    # -- clock ----------------------------------------------------------------------------------
    def now(self) -> float:
        return self._base_clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the backend's clock forward (cache TTLs expire on it; the date moves with it)."""
        self._offset += seconds

    def today(self) -> dt.date:
        """The backend's calendar date: model retirements are judged on it."""
        return self._start_date + dt.timedelta(seconds=self._offset)

    # -- ways to reach it ------------------------------------------------------------------------
    def async_transport(self) -> OfflineAsyncTransport:
        """An ``httpx2.AsyncBaseTransport`` for ``httpx2.AsyncClient(transport=…)``."""
        return OfflineAsyncTransport(self.handle)

    def transport(self) -> OfflineTransport:
        """A synchronous ``httpx2.BaseTransport`` for ``httpx2.Client(transport=…)``."""
        return OfflineTransport(self.handle)

    def serve(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> OfflineServer:
        """Start a loopback HTTP server in a background thread (``port=0`` picks a free port)."""
        return OfflineServer(self, host, port, verbose=verbose).start()

    # -- ids ------------------------------------------------------------------------------------
    def _next_ids(self, raw: bytes) -> tuple[str, str]:
        with self._lock:
            self._counter += 1
            n = self._counter
        digest = hashlib.sha256(raw + n.to_bytes(8, "big")).digest()
        return "msg_01" + b62(digest[:16], 22), "req_011C" + b62(digest[16:], 20)

    # -- entry point ----------------------------------------------------------------------------
    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """A backend is a :data:`~claudekit.offline._wire.Handler`: ``OfflineServer(backend)`` serves it."""
        return self.handle(method, path, headers, body)

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one HTTP request (headers with lower-case names)."""
        path, _, query = path.partition("?")
        path = path.rstrip("/")
        self.http_log.append((method, path))
        msg_id, req_id = self._next_ids(body)
        if method == "OPTIONS":
            return _preflight(headers, req_id)
        reply = self._dispatch(method, path, query, headers, body, (msg_id, req_id))
        if headers.get("origin"):
            reply.headers.extend(_cors(headers))
        return reply

    def _dispatch(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        ids: tuple[str, str],
    ) -> Reply:
        msg_id, req_id = ids
        try:
            route, params = self._route(method, path)
            if not (headers.get("x-api-key") or headers.get("authorization")):
                raise ApiError(401, "x-api-key header is required", "authentication_error")
            call = Call(method, path, query, headers, body, params, msg_id, req_id)
            return route.handler(call)
        except ApiError as err:
            return json_reply(
                err.status, error_body(err.error_type, err.message, req_id, err.details), req_id
            )
        except RecursionError:
            # Parsed JSON nested deeper than a later check can walk (a schema, a tool input).
            body_ = error_body("invalid_request_error", "The request body is nested too deeply", req_id)
            return json_reply(400, body_, req_id)

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        raise ApiError(404, f"Not Found: {method} {path}", "not_found_error")

    def _context(self, call: Call, *, count_tokens: bool = False) -> Context:
        betas = parse_betas(call.headers.get("anthropic-beta"))
        return Context(self.signer, self.today(), betas, count_tokens, files=self.files.resolve)

    # -- routes ---------------------------------------------------------------------------------
    def _messages_route(self, call: Call) -> Reply:
        fault = self._header_fault(call.headers)
        if fault is not None and fault.kind == "status":
            return self._status_reply(fault, call.req_id)
        return self._limited(call, fault)

    def _limited(self, call: Call, fault: Fault | None) -> Reply:
        """``/v1/messages`` under the rate limits: refused with 429, or answered and charged."""
        limiter = self.rate_limiter
        refusal = limiter.admit()
        if refusal is not None:
            wait, which = refusal
            body = error_body("rate_limit_error", limiter.refusal_message(which), call.req_id)
            reply = json_reply(429, body, call.req_id)
            reply.headers.append(("retry-after", str(max(1, math.ceil(wait)))))
        else:
            reply = self._messages(call, fault)
            if reply.usage is not None:
                u = reply.usage
                uncached = int(u.get("input_tokens") or 0) + int(u.get("cache_creation_input_tokens") or 0)
                limiter.charge(uncached, int(u.get("output_tokens") or 0))
        reply.headers.extend(limiter.headers())
        return reply

    def _count_tokens_route(self, call: Call) -> Reply:
        fault = self._header_fault(call.headers)
        if fault is not None and fault.kind == "status":
            return self._status_reply(fault, call.req_id)
        view = validate_request(call.json(), self._context(call, count_tokens=True))
        return json_reply(200, {"input_tokens": build_prompt(view).total}, call.req_id)

    def _list_models_route(self, call: Call) -> Reply:
        return json_reply(200, list_models(call.query, self.today()), call.req_id)

    def _get_model_route(self, call: Call) -> Reply:
        return json_reply(200, get_model(call.params["model_id"], self.today()), call.req_id)

    @staticmethod
    def _header_fault(headers: Mapping[str, str]) -> Fault | None:
        raw = headers.get(FAULT_HEADER)
        if not raw:
            return None
        try:
            return Fault.parse(raw)
        except ValueError as exc:
            raise ApiError(400, f"{FAULT_HEADER}: {exc}") from None

    def _status_reply(self, fault: Fault, req_id: str) -> Reply:
        reply = json_reply(
            fault.status_code, error_body(fault.resolved_error_type, fault.resolved_message, req_id), req_id
        )
        if fault.retry_after is not None:
            reply.headers.append(("retry-after", _num(fault.retry_after)))
        if fault.should_retry is not None:
            reply.headers.append(("x-should-retry", str(fault.should_retry).lower()))
        return reply

    def _batch_answer(self, call: Call) -> Reply:
        """One request of a message batch: answered as a non-streaming ``/v1/messages``, no header faults."""
        return self._messages(call, None)

    def _messages(self, call: Call, fault: Fault | None) -> Reply:
        raw = call.json()
        ctx = self._context(call)
        # A threaded request is validated and answered as the whole conversation the thread holds.
        full, continues = self.threads.expand(raw, ctx.betas) if isinstance(raw, Mapping) else (raw, None)
        answered = False
        try:
            view = validate_request(full, ctx)
            with self._lock:
                self.requests.append(raw, len(call.body))
            reply = self._answer(call, view, fault, threaded="thread" in raw)
            answered = reply.status == 200
            return reply
        finally:
            self.threads.finish(continues, answered=answered)

    def _answer(self, call: Call, view: dict[str, Any], fault: Fault | None, *, threaded: bool) -> Reply:
        answer = self.responder(OfflineRequest(view, call.headers))
        if isinstance(answer, str):
            answer = Turn(text=answer)
        if isinstance(answer, Fault):
            fault = fault or answer
            answer = Turn(text="") if fault.kind != "status" else answer
        elif answer.fault is not None and fault is None:
            fault = answer.fault
        if fault is not None and fault.kind == "status":
            return self._status_reply(fault, call.req_id)
        assert isinstance(answer, Turn)
        spec = _models.lookup(view["model"])
        model = spec.id if spec is not None else str(view["model"])
        prompt = build_prompt(view)
        diagnostics = self._diagnostics(view, prompt)
        cache_usage = self.cache.account(model, view, prompt)
        self._remember(call.msg_id, view, prompt)
        rendered = self._render(view, answer, call.msg_id, fault)
        if threaded:
            self.threads.store(call.msg_id, view, [final_block(b) for b in rendered.blocks])
        usage: dict[str, Any] = {
            **cache_usage.as_usage(),
            "service_tier": "standard",
            "inference_geo": "not_available",
        }
        if answer.server_tool_use is not None:
            usage["server_tool_use"] = dict(answer.server_tool_use)
        # The response names the model's snapshot id, as the service does for an alias.
        message: dict[str, Any] = {"id": call.msg_id, "type": "message", "role": "assistant", "model": model}
        if diagnostics is not None:
            message["diagnostics"] = diagnostics
        if view.get("stream"):
            reply = self._stream_reply(message, rendered, usage, call.req_id, fault)
        else:
            reply = json_reply(200, message_json(message, rendered, usage), call.req_id)
            reply = self._apply_body_fault(reply, fault)
        reply.usage = {**usage, "output_tokens": rendered.output_tokens}
        return reply

    # -- rendering ------------------------------------------------------------------------------
    def _render(self, body: Mapping[str, Any], turn: Turn, msg_id: str, fault: Fault | None) -> Rendered:
        if int(body["max_tokens"]) == 0:
            # max_tokens 0 pre-warms the cache: no content at all (the SDK's max_tokens docstring).
            return Rendered([], "max_tokens", None, 0)
        blocks: list[Block] = []
        if fault is not None and fault.kind == "unknown_block":
            blocks.append(Block(fault.block_type, extra={"data": "offline unknown block"}))
        if thinking_on(body):
            th = body.get("thinking") or {}
            text = turn.thinking if turn.thinking is not None else "Plan: answer the request directly."
            omitted = th.get("display") == "omitted"
            blocks.append(Block("thinking", text=text, omitted=omitted))
        blocks.extend(server_blocks(turn.server_blocks))
        if turn.text:
            blocks.append(Block("text", text=turn.text))
        for text, cites in turn.cited:
            extra = {"citations": [dict(c) for c in cites]} if cites else {}
            blocks.append(Block("text", text=text, extra=extra))
        for i, call in enumerate(turn.tool_calls):
            tid = call.id or "toolu_01" + b62(hashlib.sha256(f"{msg_id}:{i}".encode()).digest(), 22)
            args = json.dumps(dict(call.input), ensure_ascii=False)
            if fault is not None and fault.kind == "truncated_tool_json" and i == 0:
                args = args[: max(1, len(args) // 2)]
            blocks.append(Block("tool_use", text=args, tool_id=tid, name=call.name))
        if not blocks:
            blocks.append(Block("text", text=""))
        stop = turn.stop_reason or ("tool_use" if turn.tool_calls else "end_turn")
        rendered = render(
            blocks,
            stop_reason=stop,
            max_tokens=int(body["max_tokens"]),
            stop_sequences=list(body.get("stop_sequences") or []),
        )
        for b in rendered.blocks:
            if b.kind == "thinking":
                # With display "omitted" the client only ever sees, and sends back, an empty
                # thinking string, so that is what the signature covers.
                b.signature = self.signer.sign("" if b.omitted else b.text)
        return rendered

    def _stream_reply(
        self,
        message: dict[str, Any],
        rendered: Rendered,
        usage: dict[str, Any],
        req_id: str,
        fault: Fault | None,
    ) -> Reply:
        events = stream_events(message, rendered, usage)
        chunks: list[Action] = []
        stall_at = fault.after_events if fault is not None and fault.kind == "stall" else -1
        if stall_at == 0 and fault is not None:
            chunks.append(Stall(fault.seconds))
        for n, event in enumerate(events):
            if fault is not None and fault.kind == "error_event" and n == fault.after_events:
                err = error_body(
                    fault.error_type or "overloaded_error",
                    fault.resolved_message if fault.message else "Overloaded",
                    req_id,
                )
                chunks.append(encode_event(err))
                break
            if fault is not None and fault.kind == "malformed_json" and n == fault.after_events:
                good = encode_event(event).decode()
                data = good.split("data: ", 1)[1].rstrip("\n")
                chunks.append(encode_event(event, data=data[: max(1, len(data) // 2)]))
            else:
                chunks.append(encode_event(event))
            if n + 1 == stall_at and fault is not None:
                chunks.append(Stall(fault.seconds))
            if self.event_delay > 0:
                chunks.append(Sleep(self.event_delay))
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("request-id", req_id),
        ]
        reply = Reply(200, headers, chunks, streaming=True)
        return self._apply_cut(reply, fault)

    def _apply_body_fault(self, reply: Reply, fault: Fault | None) -> Reply:
        if fault is None:
            return reply
        if fault.kind == "stall":
            reply.actions.insert(0, Stall(fault.seconds))
        elif fault.kind == "error_event":
            req_id = dict(reply.headers)["request-id"]
            return json_reply(
                529,
                error_body(fault.error_type or "overloaded_error", fault.resolved_message, req_id),
                req_id,
            )
        elif fault.kind == "malformed_json":
            body = reply.body
            reply.actions = [body[: len(body) // 2]]
            reply.headers = [(k, v) for k, v in reply.headers if k != "content-length"]
            reply.headers.append(("content-length", str(len(body) // 2)))
        return self._apply_cut(reply, fault)

    @staticmethod
    def _apply_cut(reply: Reply, fault: Fault | None) -> Reply:
        if fault is None or fault.kind != "cut":
            return reply
        left = fault.after_bytes
        out: list[Action] = []
        for a in reply.actions:
            if isinstance(a, bytes):
                if len(a) >= left:
                    out.append(a[:left])
                    break
                left -= len(a)
            out.append(a)
        out.append(Cut())
        reply.actions = out
        return reply

    # -- diagnostics ----------------------------------------------------------------------------
    def _remember(self, msg_id: str, body: Mapping[str, Any], prompt: Prompt) -> None:
        with self._lock:
            self._records[msg_id] = _Record(
                model=model_key(str(body["model"])),
                tools_hash=prompt.tools_hash,
                system_hash=prompt.system_hash,
                message_hashes=list(prompt.message_hashes),
                message_cum_tokens=list(prompt.message_cum_tokens),
                tools_tokens=prompt.tools_tokens,
                system_tokens=prompt.system_tokens,
                total=prompt.total,
                params_hash=_params_hash(body),
            )

    def _diagnostics(self, body: Mapping[str, Any], prompt: Prompt) -> dict[str, Any] | None:
        diag = body.get("diagnostics")
        if not isinstance(diag, Mapping) or "previous_message_id" not in diag:
            return None
        pid = diag.get("previous_message_id")
        if pid is None:
            return {"cache_miss_reason": None}
        with self._lock:
            prev = self._records.get(str(pid))
        if prev is None:
            return {"cache_miss_reason": {"type": "previous_message_not_found"}}
        if prev.model != model_key(str(body["model"])):
            return {"cache_miss_reason": {"type": "model_changed", "cache_missed_input_tokens": prev.total}}
        if prev.tools_hash != prompt.tools_hash:
            return {"cache_miss_reason": {"type": "tools_changed", "cache_missed_input_tokens": prev.total}}
        if prev.system_hash != prompt.system_hash:
            return {
                "cache_miss_reason": {
                    "type": "system_changed",
                    "cache_missed_input_tokens": prev.total - prev.tools_tokens,
                }
            }
        common = 0
        for a, b in zip(prev.message_hashes, prompt.message_hashes, strict=False):
            if a != b:
                break
            common += 1
        if common < len(prev.message_hashes):
            matched = (
                prev.message_cum_tokens[common - 1] if common else prev.tools_tokens + prev.system_tokens
            )
            return {
                "cache_miss_reason": {
                    "type": "messages_changed",
                    "cache_missed_input_tokens": prev.total - matched,
                }
            }
        if prev.params_hash != _params_hash(body):
            return {"cache_miss_reason": {"type": "unavailable"}}
        return {"cache_miss_reason": None}


_CORS_METHODS = "GET, POST, DELETE, OPTIONS"


def _cors(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """CORS headers for a browser client (the SDKs' ``anthropic-dangerous-direct-browser-access``)."""
    return [
        ("access-control-allow-origin", headers.get("origin") or "*"),
        ("access-control-expose-headers", "request-id, retry-after, x-should-retry"),
        ("vary", "origin"),
    ]


def _preflight(headers: Mapping[str, str], req_id: str) -> Reply:
    """The answer to a browser's ``OPTIONS`` preflight: any origin, the asked-for headers, no auth needed."""
    asked = headers.get("access-control-request-headers") or "*"
    out = [
        *_cors(headers),
        ("access-control-allow-methods", _CORS_METHODS),
        ("access-control-allow-headers", asked),
        ("access-control-max-age", "600"),
        ("request-id", req_id),
    ]
    return Reply(204, out, [])


def _complete_removed(call: Call) -> Reply:
    # Our wording: the service's own message for the retired Text Completions endpoint was not found.
    raise ApiError(
        404,
        "The Text Completions API (POST /v1/complete) has been removed, and no model serves it any more; "
        "send the conversation to the Messages API (POST /v1/messages) instead.",
        "not_found_error",
    )


def _params_hash(body: Mapping[str, Any]) -> str:
    keys = ("thinking", "tool_choice", "output_config")
    return hashlib.sha256(json.dumps({k: body.get(k) for k in keys}, sort_keys=True).encode()).hexdigest()


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

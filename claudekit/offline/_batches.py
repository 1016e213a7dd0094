"""The Message Batches API offline: create, retrieve, list, cancel, results (JSONL) and delete.

Shapes follow the service (batch-processing guide and API reference). Each request of a batch is
answered by the backend's own responder, validation and prompt cache, exactly as a non-streaming
``/v1/messages`` call would be, with ``usage.service_tier`` ``"batch"``.

Time runs on the backend's clock, so a test can ``advance()`` through a batch: request k of n (in a
shuffled processing order) finishes ``processing_seconds * k / n`` after creation.

* ``in_progress`` until every request has finished. ``request_counts`` show them all ``processing`` until
  then (as the service does), then the final tallies and a ``results_url`` on the server itself (the
  SDK's ``results()`` fetches that URL).
* ``cancel`` gives ``canceling``; ``cancel_seconds`` later the batch ends: requests finished before the
  cancel keep their results, the others are ``canceled``.
* 24 hours after creation unfinished requests are ``expired`` (a ``processing_seconds`` above a day
  shows it). Results are kept 29 days (then ``archived_at`` is set and they are gone), in shuffled order.
* ``fault(custom_id, params)`` injects per-request faults: ``"expired"``, ``"errored"`` or a status
  :class:`~claudekit.offline.Fault`. A responder's status fault errors its request too.
* At most ``max_requests`` requests and ``max_bytes`` bytes per batch (the service: 100,000 and 256 MB).
* ``create_fault(n)`` (n = 1, 2, … per create) may return a status :class:`~claudekit.offline.Fault`:
  that create is refused with it and makes no batch (a 429 or 529 from the service).
* ``create_seconds`` delays the answer to a create *after* the batch is made (a slow service: a client
  that times out has still made the batch, as a retried create would make another).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from ._errors import ApiError, error_body
from ._faults import Fault
from ._paging import id_page, page_view
from ._ratelimit import WallClock
from ._wire import Call, Reply, Route, Sleep, b62, json_reply

__all__ = ["BATCHES_PATH", "BatchSettings", "BatchStore"]

BATCHES_PATH = "/v1/messages/batches"
_DAY = 86_400.0
_EXPIRY = _DAY
_RETENTION = 29 * _DAY
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
BatchFault = Callable[[str, Mapping[str, Any]], "str | Fault | None"]


@dataclass(frozen=True)
class BatchSettings:
    """How the offline batches behave (see the module docstring)."""

    processing_seconds: float = 2.0
    cancel_seconds: float = 0.0
    max_requests: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    fault: BatchFault | None = None
    create_seconds: float = 0.0
    create_fault: Callable[[int], Fault | None] | None = None


@dataclass
class _Batch:
    id: str
    created: float
    custom_ids: list[str]
    params: list[Any]
    due: list[float]  # when each request finishes (backend clock), aligned with custom_ids
    order: list[int]  # request indices in the order they finish
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: int = 0  # how many of `order` have been answered
    cancel_at: float | None = None
    ended_at: float | None = None

    @property
    def expires(self) -> float:
        return self.created + _EXPIRY


class BatchStore:
    """The batches of one backend (shared by every client and server thread that reaches it)."""

    def __init__(
        self,
        answer: Callable[[Call], Reply],
        ids: Callable[[bytes], tuple[str, str]],
        now: Callable[[], float],
        settings: BatchSettings,
        wall: WallClock,
    ) -> None:
        """``answer`` answers one request as a non-streaming ``/v1/messages``; ``ids`` makes a message
        and request id from a seed; ``now`` is the backend's clock."""
        self._answer_call = answer
        self._ids = ids
        self._now = now
        self.settings = settings
        self._wall = wall
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.RLock()
        self._counter = 0
        self._creates = 0

    # -- routing ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The endpoints, for the backend's router."""
        one = BATCHES_PATH + "/{batch_id}"
        return [
            Route("POST", BATCHES_PATH, self._create_route),
            Route(
                "GET", BATCHES_PATH, self._locked(lambda call, base: self._list(parse_qs(call.query), base))
            ),
            Route(
                "GET",
                one,
                self._locked(lambda call, base: self._view(self._get(call.params["batch_id"]), base)),
            ),
            Route("DELETE", one, self._locked(lambda call, base: self._delete(call.params["batch_id"]))),
            Route(
                "POST",
                one + "/cancel",
                self._locked(lambda call, base: self._view(self._cancel(call.params["batch_id"]), base)),
            ),
            Route("GET", one + "/results", self._results_route),
        ]

    def _locked(self, answer: Callable[[Call, str], dict[str, Any]]) -> Callable[[Call], Reply]:
        def handler(call: Call) -> Reply:
            with self._lock:
                payload = answer(call, _base_url(call))
            return json_reply(200, payload, call.req_id)

        return handler

    def _create_route(self, call: Call) -> Reply:
        self._creates += 1
        refusal = self.settings.create_fault(self._creates) if self.settings.create_fault else None
        if refusal is not None:
            body = error_body(refusal.resolved_error_type, refusal.resolved_message, call.req_id)
            return json_reply(refusal.status_code, body, call.req_id)
        with self._lock:
            payload = self._view(self._create(call.body), _base_url(call))
        reply = json_reply(200, payload, call.req_id)
        if self.settings.create_seconds > 0:
            reply.actions.insert(0, Sleep(self.settings.create_seconds))
        return reply

    def _results_route(self, call: Call) -> Reply:
        with self._lock:
            return self._results(call.params["batch_id"], call.req_id)

    # -- endpoints -------------------------------------------------------------------------------
    def _create(self, body: bytes) -> _Batch:
        limits = self.settings
        if len(body) > limits.max_bytes:
            raise ApiError(
                413,
                f"Batch of {len(body):,} bytes exceeds the maximum of {limits.max_bytes:,} bytes",
                "request_too_large",
            )
        try:
            parsed = json.loads(body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"There was an issue with the JSON body: {exc}") from None
        requests = parsed.get("requests") if isinstance(parsed, dict) else None
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "requests: Field required (a non-empty list)")
        if len(requests) > limits.max_requests:
            raise ApiError(
                400, f"requests: at most {limits.max_requests:,} requests per batch, got {len(requests):,}"
            )
        seen: set[str] = set()
        for i, item in enumerate(requests):
            cid = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.fullmatch(cid):
                raise ApiError(
                    400, f"requests.{i}.custom_id: must be 1 to 64 characters of letters, digits, _ and -"
                )
            if cid in seen:
                raise ApiError(400, f"requests.{i}.custom_id: {cid!r} is not unique within the batch")
            seen.add(cid)
            if not isinstance(item.get("params"), dict):
                raise ApiError(400, f"requests.{i}.params: Input should be an object")
        now = self._now()
        self._counter += 1
        digest = hashlib.sha256(f"{id(self)}:{self._counter}:{now}".encode()).digest()
        batch_id = "msgbatch_01" + b62(digest, 22)
        n = len(requests)
        order = list(range(n))
        random.Random(batch_id).shuffle(order)
        due = [0.0] * n
        for k, i in enumerate(order):
            due[i] = now + self.settings.processing_seconds * (k + 1) / n
        batch = _Batch(
            batch_id,
            now,
            [r["custom_id"] for r in requests],
            [r["params"] for r in requests],
            due,
            order,
        )
        self._batches[batch_id] = batch
        return batch

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"Message batch {batch_id!r} not found", "not_found_error")
        self._advance(batch)
        return batch

    def _list(self, query: Mapping[str, list[str]], base: str) -> dict[str, Any]:
        ordered = sorted(self._batches.values(), key=lambda b: (b.created, b.id), reverse=True)
        start, stop, more = id_page([b.id for b in ordered], query, _unknown)
        page = ordered[start:stop]
        for batch in page:
            self._advance(batch)
        return page_view([self._view(b, base) for b in page], more)

    def _cancel(self, batch_id: str) -> _Batch:
        batch = self._get(batch_id)
        if batch.ended_at is not None:
            raise ApiError(400, f"Message batch {batch_id} has already ended and cannot be canceled")
        if batch.cancel_at is None:
            batch.cancel_at = self._now()
            self._advance(batch)
        return batch

    def _delete(self, batch_id: str) -> dict[str, Any]:
        batch = self._get(batch_id)
        if batch.ended_at is None:
            raise ApiError(
                400, f"Message batch {batch_id} is still processing; cancel it and wait for it to end first"
            )
        del self._batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def _results(self, batch_id: str, req_id: str) -> Reply:
        batch = self._get(batch_id)
        if batch.ended_at is None:
            raise ApiError(400, f"Message batch {batch_id} has not ended yet; its results are not available")
        if self._now() >= batch.created + _RETENTION:
            raise ApiError(404, f"The results of message batch {batch_id} have expired (kept 29 days)")
        order = list(range(len(batch.custom_ids)))
        random.Random(batch_id + ":results").shuffle(order)  # the service's order is arbitrary
        lines = [
            json.dumps({"custom_id": batch.custom_ids[i], "result": batch.results[i]}, ensure_ascii=False)
            for i in order
        ]
        data = ("\n".join(lines) + "\n").encode()
        headers = [
            ("content-type", "application/binary"),
            ("content-length", str(len(data))),
            ("request-id", req_id),
        ]
        return Reply(200, headers, [data])

    # -- processing ------------------------------------------------------------------------------
    def _advance(self, batch: _Batch) -> None:
        """Answer every request due by now; end the batch when all are done, canceled or expired."""
        if batch.ended_at is not None:
            return
        now = self._now()
        horizon = min(now, batch.expires, math.inf if batch.cancel_at is None else batch.cancel_at)
        n = len(batch.order)
        while batch.done < n and batch.due[batch.order[batch.done]] <= horizon:
            i = batch.order[batch.done]
            batch.results[i] = self._answer(batch.custom_ids[i], batch.params[i])
            batch.done += 1
        if batch.done == n:
            batch.ended_at = batch.due[batch.order[-1]]
            return
        if batch.cancel_at is not None and now >= batch.cancel_at + self.settings.cancel_seconds:
            self._end_rest(batch, "canceled", batch.cancel_at + self.settings.cancel_seconds)
        elif now >= batch.expires:
            self._end_rest(batch, "expired", batch.expires)

    @staticmethod
    def _end_rest(batch: _Batch, kind: str, at: float) -> None:
        for i in batch.order[batch.done :]:
            batch.results[i] = {"type": kind}
        batch.done = len(batch.order)
        batch.ended_at = at

    def _answer(self, custom_id: str, params: Any) -> dict[str, Any]:
        fault = self.settings.fault(custom_id, params) if self.settings.fault is not None else None
        if fault == "expired":
            return {"type": "expired"}
        if fault == "errored":
            fault = Fault.status(500)
        msg_id, req_id = self._ids(custom_id.encode())
        if isinstance(fault, Fault):
            return _errored(fault.resolved_error_type, fault.resolved_message, req_id)
        try:
            if isinstance(params, dict) and params.get("stream"):
                raise ApiError(400, "stream: streaming is not supported for requests in a message batch")
            body = json.dumps(params, ensure_ascii=False).encode()
            call = Call("POST", "/v1/messages", "", {}, body, {}, msg_id, req_id)
            reply = self._answer_call(call)
            payload = json.loads(reply.body)
        except ApiError as err:
            return _errored(err.error_type, err.message, req_id)
        except ValueError:  # a body fault (cut, malformed) made the answer unreadable
            return _errored("api_error", "Internal server error", req_id)
        if reply.status != 200:
            return {"type": "errored", "error": payload}
        payload["usage"]["service_tier"] = "batch"
        return {"type": "succeeded", "message": payload}

    # -- the batch object ------------------------------------------------------------------------
    def _view(self, batch: _Batch, base: str) -> dict[str, Any]:
        ended = batch.ended_at is not None
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            for result in batch.results.values():
                counts[result["type"]] += 1
        else:
            counts["processing"] = len(batch.custom_ids)
        archived = batch.created + _RETENTION
        is_archived = self._now() >= archived
        status = "ended" if ended else "canceling" if batch.cancel_at is not None else "in_progress"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": self._time(batch.created),
            "expires_at": self._time(batch.expires),
            "ended_at": self._time(batch.ended_at),
            "cancel_initiated_at": self._time(batch.cancel_at),
            "archived_at": self._time(archived) if is_archived else None,
            "results_url": f"{base}{BATCHES_PATH}/{batch.id}/results" if ended and not is_archived else None,
        }

    def _time(self, t: float | None) -> str | None:
        if t is None:
            return None
        stamp = datetime.fromtimestamp(self._wall(t), tz=timezone.utc)
        return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _base_url(call: Call) -> str:
    """This server as the client reached it: the SDK fetches results from the ``results_url`` it names."""
    return f"http://{call.headers.get('host') or 'offline.claudekit.invalid'}"


def _errored(error_type: str, message: str, req_id: str) -> dict[str, Any]:
    return {"type": "errored", "error": error_body(error_type, message, req_id)}


def _unknown(batch_id: str) -> ApiError:
    return ApiError(400, f"Message batch {batch_id!r} not found for pagination")

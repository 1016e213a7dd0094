"""``BatchJob``: a DataFrame job run through the Message Batches API (the SDK's ``messages.batches``).

Conventions of the service it follows: at most 100,000 requests or 256 MB per batch (larger jobs are
split), a ``custom_id`` of 1–64 ``[A-Za-z0-9_-]`` per request (the row key and the request's
fingerprint), results in any order (joined by ``custom_id``), results ``succeeded``, ``errored``,
``canceled`` or ``expired`` (:meth:`BatchJob.retry` sends errored and expired ones again), batches end
within 24 hours and keep their results 29 days. Results are logged at the batch price.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._base._errors import APIError, ConfigError, from_sdk_error, is_transport_error
from .._runner._client import ClientHandle, resolve_client
from ._fields import Field
from ._outcome import Outcome, from_message
from ._progress import Snapshot, make_progress
from ._state import StateFile

if TYPE_CHECKING:
    import pandas as pd

    from ._plan import Request

__all__ = ["BatchJob"]

MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
_OFFLINE_POLL = 0.25
_SERVICE_POLL = 30.0
_NOT_PROCESSED = {
    "canceled": "not processed: the batch was canceled",
    "expired": "not processed within 24 hours (expired); job.retry() sends it again",
}


@dataclass
class _Rows:
    """The job's rows, as the result frame needs them (see :class:`~claudekit.frame._columns.Rows`)."""

    index: pd.Index
    row_fp: list[str | None]
    row_error: dict[int, str]
    fields: list[Field] | None


@dataclass
class _Batch:
    id: str
    custom_ids: list[str]
    status: str = "in_progress"
    counts: dict[str, int] | None = None
    ended_at: datetime | None = None
    collected: bool = False


class BatchJob:
    """A submitted batch job. ``await job`` (or ``await job.wait()``) polls until every batch has ended
    and returns the result frame; ``job.df`` is the frame with the rows finished so far.

    Build one with :func:`claudekit.batch`, or re-attach with :meth:`BatchJob.resume` from its state file.
    """

    def __init__(
        self,
        *,
        name: str,
        rows: _Rows,
        base: pd.DataFrame | None,
        output_format: Any,
        client_options: dict[str, Any],
        usage_log: Any,
        state: StateFile | None,
        outcomes: dict[str, Outcome],
        params: dict[str, tuple[str, dict[str, Any]]],
        poll_interval: float | None = None,
        progress: Any = True,
    ) -> None:
        self.name = name
        self._rows = rows
        self._base = base
        self._output_format = output_format
        self._client_options = client_options
        self.usage = usage_log
        self._state = state
        self._outcomes = outcomes
        self._params = params  # fingerprint -> (custom_id, params as sent)
        self._by_cid = {cid: fp for fp, (cid, _p) in params.items()}
        self._batches: dict[str, _Batch] = {}
        self.poll_interval = poll_interval
        self.progress = progress
        self.reused = len(outcomes)

    # -- what it is ------------------------------------------------------------------------------
    @property
    def batch_ids(self) -> list[str]:
        return list(self._batches)

    @property
    def status(self) -> str:
        """``in_progress`` while any batch is, ``canceling`` while any is being canceled, else ``ended``."""
        statuses = {b.status for b in self._batches.values() if not b.collected}
        for s in ("in_progress", "canceling"):
            if s in statuses:
                return s
        return "ended"

    @property
    def counts(self) -> dict[str, int]:
        """Requests by result (``succeeded``, ``errored``, …, ``processing``) as last seen, plus ``reused``
        (answered from the state file before this job submitted anything)."""
        out = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for b in self._batches.values():
            if b.counts is None:
                out["processing"] += len(b.custom_ids)
            else:
                for k, v in b.counts.items():
                    out[k] = out.get(k, 0) + v
        out["reused"] = self.reused
        return out

    @property
    def df(self) -> pd.DataFrame:
        """The result frame: rows whose batch has not ended yet have status ``pending``."""
        from ._columns import result_frame

        return result_frame(self._rows, self._outcomes, self._base)

    def __repr__(self) -> str:
        c = self.counts
        done = ", ".join(f"{k} {v:,}" for k, v in c.items() if v)
        return (
            f"BatchJob({self.name!r}, {len(self._batches)} batches, {self.status}: {done or 'nothing to do'})"
        )

    # -- running ---------------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, pd.DataFrame]:
        return self.wait().__await__()

    async def wait(self, *, poll_interval: float | None = None) -> pd.DataFrame:
        """Poll every unfinished batch until all have ended, collect their results, return the frame."""
        progress = make_progress(self.progress)
        started = time.monotonic()
        error: BaseException | None = None
        try:
            async with self._client() as (client, offline):
                interval = (
                    poll_interval or self.poll_interval or (_OFFLINE_POLL if offline else _SERVICE_POLL)
                )
                while True:
                    await self._poll(client)
                    if progress is not None:
                        progress.update(self._snapshot(started))
                    if all(b.collected for b in self._batches.values()):
                        break
                    await asyncio.sleep(interval)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if progress is not None:
                progress.finish(self._snapshot(started), error)
            if self._state is not None:
                self._state.close()  # written again (reopened) only by retry() or another wait
        return self.df

    async def refresh(self) -> str:
        """Poll once (collecting the results of batches that ended); returns :attr:`status`."""
        async with self._client() as (client, _offline):
            await self._poll(client)
        return self.status

    async def cancel(self) -> str:
        """Cancel every batch still processing; requests already done keep their results."""
        async with self._client() as (client, _offline):
            for b in self._batches.values():
                if b.status == "in_progress":
                    batch = await _sdk(client.messages.batches.cancel(b.id))
                    b.status = batch.processing_status
        return self.status

    async def retry(self, statuses: Iterable[str] = ("errored", "expired")) -> BatchJob:
        """Submit again the requests whose results have one of ``statuses``; returns this job.

        ``errored`` covers every API error type, ``expired`` the 24-hour limit; add ``"canceled"`` for
        requests a cancel stopped. Await the job again for their answers.
        """
        wanted = set(statuses)
        again = [fp for fp, o in self._outcomes.items() if _result_type(o) in wanted and fp in self._params]
        for fp in again:
            del self._outcomes[fp]
        if again:
            async with self._client() as (client, _offline):
                await self._submit(client, [(self._params[fp][0], self._params[fp][1]) for fp in again])
        return self

    # -- internals -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[tuple[Any, bool]]:
        handle: ClientHandle = resolve_client(**self._client_options)
        try:
            yield handle.client, handle.offline is not None
        finally:
            await handle.aclose()

    async def _submit(
        self,
        client: Any,
        items: list[tuple[str, dict[str, Any]]],
        *,
        max_requests: int = MAX_BATCH_REQUESTS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        for chunk in split(items, max_requests, max_bytes):
            requests = [{"custom_id": cid, "params": params} for cid, params in chunk]
            batch = await _sdk(client.messages.batches.create(requests=requests))
            cids = [cid for cid, _p in chunk]
            self._batches[batch.id] = _Batch(batch.id, cids, batch.processing_status)
            if self._state is not None:  # at once: a restart must find every submitted batch
                self._state.write({"t": "batch", "id": batch.id, "cids": cids})

    def _attach(self, batch_id: str, custom_ids: list[str]) -> None:
        self._batches[batch_id] = _Batch(batch_id, custom_ids)

    async def _poll(self, client: Any) -> None:
        for b in self._batches.values():
            if b.collected:
                continue
            try:
                batch = await _sdk(client.messages.batches.retrieve(b.id))
            except APIError as err:
                if err.status == 404:
                    raise _unknown_batch(b.id, client) from None
                raise
            b.status = batch.processing_status
            if b.status == "ended":
                b.counts = batch.request_counts.to_dict()
                b.ended_at = batch.ended_at
                await self._collect(client, b)

    async def _collect(self, client: Any, b: _Batch) -> None:
        """Join one ended batch's results (in any order) to the rows, by custom_id."""
        from ..usage import UsageRecord

        decoder = await _sdk(client.messages.batches.results(b.id))
        async for item in decoder:
            fp = self._by_cid.get(item.custom_id)
            if fp is None:
                continue
            result = item.result
            if result.type == "succeeded":
                record = UsageRecord.from_message(
                    result.message,
                    chat_id=self.name,
                    turn=0,
                    step=0,
                    model=str(result.message.model),
                    request_id=None,
                    status="ok",
                    latency_s=None,
                    ttft_s=None,
                    started_at=b.ended_at or datetime.now(timezone.utc),
                )
                if not record.is_batch:  # what we sent was a batch: price it as one
                    record = replace(record, service_tier="batch").priced()
                self.usage.append(record)
                outcome = from_message(result.message, self._output_format, record)
            elif result.type == "errored":
                error = result.error.error
                outcome = Outcome(
                    str(error.type), error=f"API error in the batch: {error.type}: {error.message}"
                )
            else:
                outcome = Outcome(result.type, error=_NOT_PROCESSED.get(result.type, result.type))
            self._outcomes[fp] = outcome
            if self._state is not None:
                self._state.result(fp, outcome)
        b.collected = True
        if self._state is not None:
            self._state.write({"t": "collected", "id": b.id})

    def _snapshot(self, started: float) -> Snapshot:
        s = Snapshot("batch", len(self._rows.row_fp), elapsed_s=time.monotonic() - started)
        s.done = s.errors = len(self._rows.row_error)
        for fp in self._rows.row_fp:
            o = self._outcomes.get(fp) if fp is not None else None
            if o is None:
                continue
            s.done += 1
            if o.ok:
                s.ok += 1
            else:
                s.errors += 1
        s.cost_usd = sum(o.cost or 0.0 for o in self._outcomes.values())
        ended = sum(b.status == "ended" for b in self._batches.values())
        if self._batches and ended < len(self._batches):
            s.note = f"{ended}/{len(self._batches)} batches ended"
        return s

    # -- re-attaching ----------------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        df: pd.DataFrame | None = None,
        client: Any = None,
        backend: str | None = None,
        offline: Any = None,
        api_key: str | None = None,
        base_url: str | None = None,
        usage_log: Any = None,
        poll_interval: float | None = None,
        progress: Any = True,
    ) -> BatchJob:
        """Re-attach to a batch job from its state file (in a new kernel, say): nothing is submitted
        again; ``await`` it for the frame. Pass ``df`` to get the input's columns back."""
        import pandas as pd

        from .._request._settings import Settings
        from ..usage._log import log_for

        state_file = StateFile(path)
        st = state_file.load()
        facts = st.rows
        if facts is None:
            raise ConfigError(
                f"{os.fspath(path)!r} holds no batch job", hint="pass the state= path of a batch job"
            )
        keys = facts["keys"]
        index = (
            pd.MultiIndex.from_tuples([tuple(k) for k in keys], names=facts.get("index_names"))
            if keys and all(isinstance(k, list) for k in keys)
            else pd.Index(keys, name=(facts.get("index_names") or [None])[0])
        )
        if df is not None:
            if len(df) != len(keys):
                raise ConfigError(
                    f"df has {len(df):,} rows but the job has {len(keys):,}",
                    hint="pass the job's own DataFrame",
                )
            index = df.index
        fields = [Field.from_json(f) for f in facts["fields"]] if facts.get("fields") is not None else None
        rows = _Rows(index, facts["fps"], {int(k): v for k, v in facts.get("errors", {}).items()}, fields)
        wanted = {fp for fp in facts["fps"] if fp is not None}
        params = {fp: (cid, p) for cid, (fp, p) in st.requests.items() if fp in wanted}
        settings = Settings()
        job = cls(
            name=str(facts.get("name", "batch")),
            rows=rows,
            base=df,
            output_format=facts.get("schema"),
            client_options=client_options(
                settings, client=client, backend=backend, offline=offline, api_key=api_key, base_url=base_url
            ),
            usage_log=log_for(usage_log),
            state=state_file,
            outcomes={fp: o for fp, o in st.results.items() if fp in wanted},
            params=params,
            poll_interval=poll_interval,
            progress=progress,
        )
        job.reused = 0
        for batch_id, cids in st.batches.items():
            if batch_id not in st.collected and any(job._by_cid.get(c) not in job._outcomes for c in cids):
                job._attach(batch_id, cids)
        return job


def client_options(settings: Any, **options: Any) -> dict[str, Any]:
    """The keyword arguments of ``resolve_client`` for a job."""
    return {
        **options,
        "max_retries": settings.max_retries,
        "timeout": settings.timeout,
        "connect_timeout": settings.connect_timeout,
    }


def split(
    items: list[tuple[str, dict[str, Any]]], max_requests: int, max_bytes: int
) -> list[list[tuple[str, dict[str, Any]]]]:
    """Consecutive chunks of at most ``max_requests`` requests and ``max_bytes`` bytes of JSON body."""
    chunks: list[list[tuple[str, dict[str, Any]]]] = []
    current: list[tuple[str, dict[str, Any]]] = []
    size = len('{"requests": []}')
    for cid, params in items:
        # Measured as the SDK could send it at its largest (ASCII escapes, spaced separators).
        n = len(json.dumps({"custom_id": cid, "params": params})) + 2
        if n + len('{"requests": []}') > max_bytes:
            raise ConfigError(
                f"request {cid} alone is {n:,} bytes, above the batch limit of {max_bytes:,}",
                hint="shorten that row's prompt, or use claudekit.map for it",
            )
        if current and (len(current) >= max_requests or size + n > max_bytes):
            chunks.append(current)
            current, size = [], len('{"requests": []}')
        current.append((cid, params))
        size += n
    if current:
        chunks.append(current)
    return chunks


def _result_type(outcome: Outcome) -> str:
    if outcome.status in ("canceled", "expired"):
        return outcome.status
    if outcome.answered:
        return "succeeded"
    return "errored"


def _unknown_batch(batch_id: str, client: Any) -> ConfigError:
    """A batch the server does not know: another server submitted it, or it was deleted."""
    return ConfigError(
        f"message batch {batch_id} is not known to {client.base_url} (deleted there, or submitted "
        "through another server: an in-process offline backend does not outlive its kernel)",
        hint="resume with the client or base_url that submitted it (e.g. python -m claudekit.offline's "
        "URL); what was already collected is kept in the state file",
    )


async def _sdk(call: Any) -> Any:
    """Await an SDK call; its failure becomes claudekit's one-line error."""
    try:
        return await call
    except Exception as exc:
        if not is_transport_error(exc):
            raise
        raise from_sdk_error(exc) from exc


def requests_params(requests: Iterable[Request]) -> dict[str, tuple[str, dict[str, Any]]]:
    """fingerprint -> (custom_id, params as they go on the wire) for a plan's requests."""
    from ._plan import merged_params

    return {r.fp: (r.custom_id, merged_params(r.body)) for r in requests}

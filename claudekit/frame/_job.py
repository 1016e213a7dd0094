"""``BatchJob``: a DataFrame job run through the Message Batches API (the SDK's ``messages.batches``).

Conventions of the service it follows: at most 100,000 requests or 256 MB per batch (larger jobs are
split), a ``custom_id`` of 1–64 ``[A-Za-z0-9_-]`` per request (the row key and the request's
fingerprint), results in any order (joined by ``custom_id``), results ``succeeded``, ``errored``,
``canceled`` or ``expired`` (:meth:`BatchJob.retry` sends errored and expired ones again), batches end
within 24 hours and keep their results 29 days. Results are logged at the batch price.

Money rules: a create is never retried blindly (the SDK's retries are off for it; its intent is in the
state file first), so a slow or interrupted create is looked up in the batches list before anything is
submitted again; rows are joined through the state file's custom_id -> fingerprint map (any index);
``retry()`` keeps the old outcomes until the new batch is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Coroutine, Generator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from .._base._errors import APIError, ConfigError, NetworkError, from_sdk_error, is_transport_error
from .._runner._client import ClientHandle, resolve_client
from ._fields import Field
from ._outcome import Outcome, from_message
from ._progress import Snapshot, make_progress
from ._state import Intent, StateFile

if TYPE_CHECKING:
    import pandas as pd

    from ._plan import Request

__all__ = ["BatchJob", "cluster_hold"]

T = TypeVar("T")

#: Set by a Dask ``batch`` partition (``_dask_batch``): called with the worst case (at batch price; None
#: when unknown) of the requests about to be submitted, it returns None once that is held at the
#: cluster's pacer, or why not — then those rows are ``skipped_budget`` and nothing is submitted.
cluster_hold: contextvars.ContextVar[Any] = contextvars.ContextVar("claudekit_cluster_hold", default=None)

MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
_OFFLINE_POLL = 0.25
_SERVICE_POLL = 30.0
_LOOKBACK = timedelta(minutes=10)  # clock skew allowed when finding a batch a create may have made
_REFUSED = (429, 529)  # the service refused the create: nothing was made, so it may be sent again
_LIST_SCAN = 1000  # batches looked at, newest first, when finding one
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
        known_cids: dict[str, str] | None = None,
        limits: tuple[int, int] = (MAX_BATCH_REQUESTS, MAX_BATCH_BYTES),
        intents: dict[str, Intent] | None = None,
        known_batches: Iterable[str] = (),
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
        # Every custom_id the state file knows (an earlier run's, under another index) plus this run's.
        self._by_cid = {**(known_cids or {}), **{cid: fp for fp, (cid, _p) in params.items()}}
        self._recorded = set(known_cids or ())  # custom_ids with a `req` fact in the state file
        self._limits = limits
        self._intents = dict(intents or {})  # creates a crash left unanswered: found or resubmitted
        self._known_batches = set(known_batches)
        self._running: set[asyncio.Future[Any]] = set()  # a cancel() or retry() started unawaited
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
        if self._running:  # `job.retry()` written without await, then `await job`: its batches first
            await asyncio.gather(*self._running, return_exceptions=True)
        progress = make_progress(self.progress)
        started = time.monotonic()
        error: BaseException | None = None
        try:
            async with self._locked(), self._client() as (client, offline):
                interval = (
                    poll_interval or self.poll_interval or (_OFFLINE_POLL if offline else _SERVICE_POLL)
                )
                await self._catch_up(client)
                caught_up = False
                while True:
                    await self._poll(client)
                    if progress is not None:
                        progress.update(self._snapshot(started))
                    if all(b.collected for b in self._batches.values()):
                        if caught_up or not self._unsent():
                            break
                        # A batch found for a lost create held none of these rows (another job's of
                        # the same size): submit them, once.
                        caught_up = True
                        await self._catch_up(client)
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
        try:
            async with self._locked(), self._client() as (client, _offline):
                await self._poll(client)
        finally:
            if self._state is not None:
                self._state.close()
        return self.status

    @property
    def unsent(self) -> int:
        """Requests of this job that no batch holds and that have no result (a run stopped before
        submitting them); :meth:`wait` submits them first."""
        return len(self._unsent())

    def cancel(self) -> Awaitable[str]:
        """Cancel every batch still processing; requests already done keep their results. In a notebook
        it starts at once (``await`` it for the status); in a script, ``await`` it."""
        return self._start("cancel", self._cancel())

    def retry(self, statuses: Iterable[str] = ("errored", "expired")) -> Awaitable[BatchJob]:
        """Submit again the requests whose results have one of ``statuses``; returns this job.

        ``errored`` covers every API error type, ``expired`` the 24-hour limit; add ``"canceled"`` for
        requests a cancel stopped. Await the job again for their answers. In a notebook it starts at
        once (awaiting the job waits for it too); in a script, ``await`` it.
        """
        return self._start("retry", self._retry(statuses))

    def _start(self, name: str, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run ``coro`` now when an event loop is running (a notebook), so a call written without
        ``await`` still happens; its failure is then said in one line if it is never awaited."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return coro  # a script: awaiting it runs it (Python warns if it never is)
        started = _Started(name, asyncio.ensure_future(coro))
        self._running.add(started.task)
        started.task.add_done_callback(self._running.discard)
        return started

    async def _cancel(self) -> str:
        async with self._client() as (client, _offline):
            for b in self._batches.values():
                if b.status == "in_progress":
                    batch = await _sdk(client.messages.batches.cancel(b.id))
                    b.status = batch.processing_status
        return self.status

    async def _retry(self, statuses: Iterable[str]) -> BatchJob:
        wanted = set(statuses)
        again = [fp for fp, o in self._outcomes.items() if _result_type(o) in wanted and fp in self._params]
        if again:  # each outcome is dropped only once its new batch is recorded (a failed submit keeps it)
            try:
                async with self._locked(), self._client() as (client, _offline):
                    await self._submit(client, again)
            finally:
                if self._state is not None:
                    self._state.close()
        return self

    # -- internals -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[tuple[Any, bool]]:
        handle: ClientHandle = resolve_client(**self._client_options)
        try:
            yield handle.client, handle.offline is not None
        finally:
            await handle.aclose()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """Hold the state file's lock, then take in what another run recorded meanwhile (so a batch it
        collected is neither collected nor logged twice)."""
        if self._state is None:
            yield
            return
        async with self._state.lock():
            self._sync(self._state.load())
            yield

    def _sync(self, st: Any) -> None:
        self._by_cid.update({c: fp for c, (fp, _p) in st.requests.items()})
        self._recorded.update(st.requests)
        mine = set(self._rows.row_fp)
        for batch_id, b in self._batches.items():
            if batch_id in st.collected and not b.collected:
                b.collected, b.status = True, "ended"
                for cid in b.custom_ids:
                    fp = self._by_cid.get(cid)
                    if fp is not None and fp in st.results:
                        self._outcomes[fp] = st.results[fp]
        for batch_id, cids in st.batches.items():
            if batch_id not in self._known_batches:  # another run submitted these
                self._known_batches.add(batch_id)
                if batch_id not in st.collected and any(self._by_cid.get(c) in mine for c in cids):
                    self._attach(batch_id, cids)

    async def _submit(self, client: Any, fps: list[str]) -> None:
        """Submit these requests in batches within the job's limits, each create recorded around it."""
        items = [self._params[fp] for fp in fps]
        for chunk in split(items, *self._limits):
            cids = [cid for cid, _p in chunk]
            intent = Intent(uuid.uuid4().hex, cids, datetime.now(timezone.utc).isoformat())
            self._write_intent(intent, chunk)
            batch_id = await self._create(client, intent, chunk)
            self._adopt(batch_id, intent)

    def _write_requests(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Each request not yet in the state file: what a new kernel needs to submit it."""
        if self._state is None:
            return
        for cid, params in items:
            if cid not in self._recorded:
                self._state.write({"t": "req", "cid": cid, "fp": self._by_cid[cid], "params": params})
                self._recorded.add(cid)

    def _write_intent(self, intent: Intent, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        """What a new kernel needs before the create: each request, then the intent to create."""
        self._write_requests(chunk)
        if self._state is not None:
            self._state.write({"t": "submit", "key": intent.key, "cids": intent.cids, "at": intent.at})

    async def _create(self, client: Any, intent: Intent, chunk: list[tuple[str, dict[str, Any]]]) -> str:
        """One create, never retried blindly: if its answer is lost, the batches list says if it was made.
        A refusal (429, 529: nothing was made) is tried again after a pause, as the SDK would."""
        requests = [{"custom_id": cid, "params": params} for cid, params in chunk]
        once = client.with_options(max_retries=0)
        attempts = max(0, int(getattr(client, "max_retries", 2))) + 1
        for attempt in range(attempts):
            try:
                batch = await _sdk(once.messages.batches.create(requests=requests))
                return str(batch.id)
            except (APIError, NetworkError) as err:
                status = err.status if isinstance(err, APIError) else None
                if status in _REFUSED and attempt + 1 < attempts:
                    await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                if status is not None and (status in _REFUSED or (400 <= status < 500 and status != 408)):
                    self._unsent_fact(intent)  # refused: certainly not created
                    raise
                return await self._found_or_raise(client, intent, err, status)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _found_or_raise(self, client: Any, intent: Intent, err: Any, status: int | None) -> str:
        found = await self._find(client, intent)
        if found is None:
            raise APIError(
                f"{err.message}; no batch of these {len(intent.cids):,} requests is listed (yet), so "
                "whether it was created is unknown",
                status=status,
                hint="await the job (or re-run with the same state=) later: it looks for that batch "
                "again before submitting anything",
            ) from err
        return found

    def _unsent_fact(self, intent: Intent) -> None:
        self._intents.pop(intent.key, None)
        if self._state is not None:
            self._state.write({"t": "unsent", "key": intent.key})

    def _adopt(self, batch_id: str, intent: Intent) -> None:
        """Record a created (or found) batch, then drop the outcomes it supersedes (a retry's)."""
        self._intents.pop(intent.key, None)
        if self._state is not None:  # at once: a restart must find every submitted batch
            self._state.write({"t": "batch", "id": batch_id, "cids": intent.cids, "key": intent.key})
        self._attach(batch_id, intent.cids)
        self._known_batches.add(batch_id)
        for cid in intent.cids:
            self._outcomes.pop(self._by_cid[cid], None)

    async def _find(self, client: Any, intent: Intent) -> str | None:
        """A batch made for ``intent`` whose answer never arrived: listed since the intent, of its size,
        not one of this job's; an ended one must hold exactly its custom_ids."""
        since = datetime.fromisoformat(intent.at) - _LOOKBACK
        want = set(intent.cids)
        page = await _sdk(client.messages.batches.list(limit=100))
        seen = 0
        async for b in page:
            seen += 1
            if b.created_at < since or seen > _LIST_SCAN:
                break
            if b.id in self._known_batches or sum(b.request_counts.to_dict().values()) != len(want):
                continue
            if b.processing_status == "ended":
                results = await _sdk(client.messages.batches.results(b.id))
                if {item.custom_id async for item in results} != want:
                    continue
            return str(b.id)
        return None

    async def _catch_up(self, client: Any, *, quiet: bool = False) -> None:
        """Before polling: find the batches of creates a crash left unanswered, submit rows never sent."""
        for intent in list(self._intents.values()):
            found = await self._find(client, intent)
            if found is not None:
                self._adopt(found, intent)
            else:
                self._unsent_fact(intent)
        unsent = self._unsent()
        if unsent and not quiet:
            warnings.warn(
                f"{len(unsent):,} request(s) of batch job {self.name!r} were never submitted (the run that "
                "made it stopped first); submitting them now",
                UserWarning,
                stacklevel=4,
            )
        if unsent:
            await self._submit(client, unsent)

    def _unsent(self) -> list[str]:
        held = {self._by_cid.get(c) for b in self._batches.values() if not b.collected for c in b.custom_ids}
        held |= {self._by_cid.get(c) for i in self._intents.values() for c in i.cids}
        out: dict[str, None] = {}
        for fp in self._rows.row_fp:
            if fp is not None and fp not in self._outcomes and fp not in held and fp in self._params:
                out[fp] = None
        return list(out)

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
        again; ``await`` it for the frame. The server is the one recorded (unless ``client``,
        ``backend``, ``offline`` or ``base_url`` says otherwise; the key never is recorded). The frame
        has the row keys and the answer columns; pass ``df`` to get the input's columns back."""
        from .._request._settings import Settings
        from ..usage._log import log_for

        state_file = StateFile(path)
        st = state_file.load()
        facts = st.rows
        if facts is None:
            raise ConfigError(
                f"{os.fspath(path)!r} holds no batch job", hint="pass the state= path of a batch job"
            )
        rows = _resumed_rows(facts, df)
        wanted = {fp for fp in facts["fps"] if fp is not None}
        params = {fp: (cid, p) for cid, (fp, p) in st.requests.items() if fp in wanted}
        if client is None and backend is None and offline is None and base_url is None:
            base_url = facts.get("base_url")
        settings = Settings()
        limits = facts.get("limits") or [MAX_BATCH_REQUESTS, MAX_BATCH_BYTES]
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
            known_cids={cid: fp for cid, (fp, _p) in st.requests.items()},
            limits=(int(limits[0]), int(limits[1])),
            intents=st.intents,
            known_batches=st.batches,
        )
        job.reused = 0
        for batch_id, cids in st.batches.items():
            if batch_id not in st.collected and any(job._by_cid.get(c) not in job._outcomes for c in cids):
                job._attach(batch_id, cids)
        return job


def _resumed_rows(facts: dict[str, Any], df: pd.DataFrame | None) -> _Rows:
    import pandas as pd

    keys = facts["keys"]
    name = (facts.get("index_names") or [None])[0]
    if keys and all(isinstance(k, list) for k in keys):
        index = pd.MultiIndex.from_tuples([tuple(k) for k in keys], names=facts.get("index_names"))
    else:
        try:
            index = pd.Index(keys, name=name)
        except UnicodeEncodeError:  # a lone surrogate, which pandas' pyarrow-backed strings cannot hold
            index = pd.Index(keys, name=name, dtype=object)
    if df is not None:
        if len(df) != len(keys):
            raise ConfigError(
                f"df has {len(df):,} rows but the job has {len(keys):,}",
                hint="pass the job's own DataFrame",
            )
        index = df.index
    fields = [Field.from_json(f) for f in facts["fields"]] if facts.get("fields") is not None else None
    return _Rows(index, facts["fps"], {int(k): v for k, v in facts.get("errors", {}).items()}, fields)


class _Started(Awaitable[T]):
    """A job operation already running; ``await`` it for its result (or its error)."""

    def __init__(self, name: str, task: asyncio.Future[T]) -> None:
        self.name = name
        self.task = task
        self._awaited = False
        task.add_done_callback(self._said)

    def __await__(self) -> Generator[Any, None, T]:
        self._awaited = True
        return self.task.__await__()

    def _said(self, task: asyncio.Future[T]) -> None:
        if task.cancelled() or self._awaited:
            return
        error = task.exception()
        if error is not None:
            message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            warnings.warn(f"job.{self.name}() failed: {message}", UserWarning, stacklevel=1)

    def __repr__(self) -> str:
        state = "done" if self.task.done() else "running"
        return f"<job.{self.name}() {state}; await it for its result>"


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

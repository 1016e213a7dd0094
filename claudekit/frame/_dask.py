"""``claudekit.map`` over a Dask DataFrame: partitions answered on the workers, one pacer for the cluster.

Imported only when a Dask DataFrame is passed (``_api._is_dask``), so ``import claudekit`` never loads
Dask. The driver checks the job as the pandas path does (a missing column fails before anything is
sent), builds the result's ``meta`` from the pandas path's own result frame on the input's empty
``meta``, finds or creates the cluster's pacer (a Dask actor published on the scheduler under one name
per model and server, so every kernel attached to the scheduler shares it), and subscribes to the job's
usage topic. Each partition then runs the pandas path on its worker, with its permits and budget drawn
from that pacer, its state of its own under ``state=`` (a directory: a file per partition on a path, a
directory of immutable chunks per partition on an fsspec URL, ``_state_url``), and every usage record
sent home as it is made (``Worker.log_event``; the driver's handler appends it to the driver's usage log,
and so to the store). Unless ``progress=False``, each partition also reports its counts on that topic and
the driver shows one progress per compute (``_dask_progress``).

Each partition task begins an attempt at the pacer (``ClusterPacer.begin``) and tags its permits and
holds with it, so a task that Dask runs again after its worker died lets the dead attempt's holds go (see
``_cluster``). Every call to the pacer goes through a :class:`_Link`: when the pacer is lost with its
worker (a call that does not answer within ``_ALIVE_S``), the link finds or publishes a new one under the
same name (``find_or_make``, as ``pacer_for`` does on the driver), marks the job lost there (a job with a
money budget starts no more rows: what it spent went with the old pacer) and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._base._errors import ConfigError
from ..usage import UsageRecord, get_budget, spent
from ..usage._log import UsageLog, log_for
from ..usage._prices import Prices, get_prices, prices_in_force
from ._cluster import ClusterBudget, ClusterPacer, ClusterPermits, Tag
from ._dask_progress import DaskProgress, Reporter, wants_progress

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

    from ._live import Budget

__all__ = ["find_or_make", "map_dask", "pacer_for"]

PACER_NAME = "claudekit-pacer"
_ALIVE_S = 5.0  # how long a published pacer may take to answer before it is taken for lost
_PATIENCE = 24  # waits of _ALIVE_S for a call to a pacer that is alive but slow (2 minutes)
_TOPIC = "claudekit-usage"


@dataclass(frozen=True)
class _Spec:
    """What each partition's task needs (pickled into the graph: no client, no open file)."""

    run: Callable[..., Any]  # _api.run_map
    prompt: Any
    options: dict[str, Any]
    job: dict[str, Any]
    settings: dict[str, Any]
    pacer: Any  # the pacer actor
    topic: str
    job_id: str
    state_dir: str | None
    pacer_name: str = PACER_NAME  # where a worker finds (or publishes) a new one if this one is lost
    divisions: tuple[Any, ...] | None = None  # the frame's, when known: see partition_number
    prices: Prices | None = None  # the driver's table: the workers price with it, not their own


@dataclass
class _Cluster:
    """A partition's cluster hooks for ``run_map``: the shared permits, and the shared budget."""

    permits: ClusterPermits
    call: Callable[..., Any]
    job_id: str
    tag: Tag | None = None

    def budget(self, local: Budget) -> Budget:
        shared = ClusterBudget(**{k: getattr(local, k) for k in local.__dataclass_fields__})
        shared.call, shared.job, shared.tag = self.call, self.job_id, self.tag
        return shared


async def map_dask(
    ddf: dd.DataFrame,
    prompt: Any,
    options: dict[str, Any],
    job: dict[str, Any],
    settings: dict[str, Any],
    *,
    run: Callable[..., Any],
    empty_result: Callable[..., pd.DataFrame],
) -> dd.DataFrame:
    """The lazy Dask DataFrame of ``map``'s answers (see the module docstring)."""
    client = _client()
    _refuse(options, job)
    meta = empty_result(ddf._meta, prompt, dict(settings), job)
    model = str(meta.attrs.pop("claudekit_model", ""))
    name = _pacer_name(model, options)
    pacer = await pacer_for(client, name)
    job_id = uuid.uuid4().hex[:12]
    topic = f"{_TOPIC}-{job_id}"
    progress = driver_progress("map", ddf.npartitions, job["progress"], client)
    home = _Home(log_for(job["usage_log"]), ddf.npartitions, client, topic, progress)
    client.subscribe_topic(topic, home.receive)
    wants = progress is not None  # the workers report only when the driver shows it
    job = dict(job, usage_log=None, progress=wants, max_cost_usd=_money_limit(job["max_cost_usd"]))
    job["name"] = job["name"] or f"map-{job_id}"
    state_dir = state_root(job["state"])
    spec = _Spec(
        run, prompt, options, job, dict(settings), pacer, topic, job_id, state_dir, name,
        known_divisions(ddf), get_prices(),
    )
    mapper: Any = ddf.map_partitions  # dask's own methods carry no annotations
    out: dd.DataFrame = mapper(_answer_partition, spec, meta=meta, align_dataframes=False)
    return out


def _client() -> Any:
    try:
        import distributed

        find: Any = distributed.default_client  # dask's own functions carry no annotations
        return find()
    except (ImportError, ValueError):  # dask without distributed, or no client
        raise ConfigError(
            "claudekit.map / batch on a Dask DataFrame runs on a distributed cluster; no Client is connected",
            hint="e.g. from distributed import Client, LocalCluster; client = Client(LocalCluster())",
        ) from None


def _refuse(options: dict[str, Any], job: dict[str, Any]) -> None:
    if options.get("client") is not None:
        raise ConfigError(
            "client= cannot travel to the Dask workers: each worker makes its own",
            hint="pass base_url= / api_key=, or set ANTHROPIC_API_KEY on the workers",
        )
    if job["dry_run"]:
        raise ConfigError(
            "dry_run is for a pandas DataFrame",
            hint="estimate a sample: await claudekit.map(ddf.head(1000), ..., dry_run=True) (or batch)",
        )
    state = job["state"]
    if _is_url(state):
        from ._state_url import check_url

        check_url(state)  # an unknown protocol or a missing package (s3fs): said here, nothing sent
    elif state is not None and Path(state).exists() and not Path(state).is_dir():
        raise ConfigError(
            f"state= for a Dask DataFrame is a directory (one file per partition); {str(state)!r} is a file",
            hint="pass a directory that every worker can reach, e.g. state='job-state/'",
        )


def _is_url(state: Any) -> bool:
    return isinstance(state, str) and "://" in state  # (as _state_url.is_url, without importing it)


def state_root(state: Any) -> str | None:
    """``state=`` as the workers get it: a URL as given, a path made absolute on the driver."""
    if state is None:
        return None
    return str(state) if _is_url(state) else str(Path(state).resolve())


def partition_state(root: str, number: int, flush_rows: int) -> Any:
    """A partition's state under ``root``: a file of its own (a path), or its chunks (a URL), each
    flushed every ``flush_rows`` facts or second."""
    name = f"part-{number:05d}"
    if _is_url(root):
        from ._state_url import ChunkedState

        return ChunkedState(f"{root.rstrip('/')}/{name}", flush_rows=flush_rows)
    os.makedirs(root, exist_ok=True)
    return os.path.join(root, f"{name}.jsonl")


def _money_limit(max_cost_usd: float | None) -> float | None:
    """The job's limit at the pacer: ``max_cost_usd`` and what is left of this kernel's budget."""
    limit = get_budget()
    left = None if limit is None else max(0.0, limit - spent())
    if max_cost_usd is None:
        return left
    return float(max_cost_usd) if left is None else min(float(max_cost_usd), left)


def _pacer_name(model: str, options: dict[str, Any]) -> str:
    """One pacer per model and server: the service's limits are per organisation and model class."""
    where = str(options.get("base_url") or options.get("backend") or "anthropic")
    return f"{PACER_NAME}-{model}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


async def pacer_for(client: Any, name: str = PACER_NAME) -> Any:
    """The cluster's pacer published under ``name``, made (and published) if there is none yet."""
    if getattr(client, "asynchronous", False):
        raise ConfigError(
            "claudekit.map on Dask needs a synchronous Client (Client(...), not asynchronous=True)"
        )
    return await asyncio.to_thread(find_or_make, client, name)


def find_or_make(client: Any, name: str) -> Any:
    """:func:`pacer_for`, blocking: the live pacer published under ``name``, else its standby (promoted),
    else a new one; then a standby is made if none is alive, on another worker than the pacer's."""
    actor = find_or_promote(client, name)
    if actor is None:
        actor = _publish(client, name, client.submit(ClusterPacer, actor=True, pure=False))
    spare = _standby_name(name)
    if not _present(client, spare):
        others = [w for w in client.scheduler_info()["workers"] if w != getattr(actor, "_address", None)]
        where: dict[str, Any] = {"workers": others, "allow_other_workers": True} if others else {}
        future = client.submit(ClusterPacer, actor=True, pure=False, **where)
        with contextlib.suppress(KeyError):  # another kernel made one first
            client.publish_dataset(future, name=spare)
    return actor


def find_or_promote(client: Any, name: str) -> Any | None:
    """The live pacer published under ``name``, else its standby, published under ``name`` now (None if
    neither is alive). Makes no task: a worker calls it while every thread may be busy with a
    partition waiting for the pacer, so a new pacer's task could not run until one ends."""
    actor = _alive(client, name)
    if actor is not None:
        return actor
    spare = _standby_name(name)
    future = client.get_dataset(spare) if _alive(client, spare) is not None else None
    if future is None:
        return _alive(client, name)  # (another worker may have promoted it meanwhile)
    with contextlib.suppress(Exception):
        client.unpublish_dataset(spare)
    return _publish(client, name, future)


def _alive(client: Any, name: str) -> Any | None:
    """The actor published under ``name`` if it answers (a lost one is unpublished)."""
    if name not in set(client.list_datasets()):
        return None
    try:
        future = client.get_dataset(name)
        # (A client that just got the future may still see it "pending": that one is waited for.)
        if future.status in ("lost", "error", "cancelled"):  # gone with its worker
            raise LookupError(future.status)
        actor = future.result(timeout=_ALIVE_S)
        actor.stats().result(timeout=_ALIVE_S)  # its worker may have died since
        return actor
    except Exception:
        with contextlib.suppress(Exception):
            client.unpublish_dataset(name)
        return None


def _present(client: Any, name: str) -> bool:
    """Whether an actor is published under ``name`` and not known lost (a pending one counts)."""
    if name not in set(client.list_datasets()):
        return False
    with contextlib.suppress(Exception):
        if client.get_dataset(name).status not in ("lost", "error", "cancelled"):
            return True
        client.unpublish_dataset(name)
    return False


def _publish(client: Any, name: str, future: Any) -> Any:
    with contextlib.suppress(KeyError):  # another kernel or worker published one first: use that one
        client.publish_dataset(future, name=name)
    return client.get_dataset(name).result()


def _standby_name(name: str) -> str:
    return f"claudekit-standby-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


#: In a worker process: a lost pacer's key -> the pacer that replaced it (so the job's next partitions
#: on this worker do not each wait ``_ALIVE_S`` for the lost one).
_REPLACED: dict[str, Any] = {}
_REPLACING = threading.Lock()


class _Link:
    """A partition's blocking ``call(method, *args)`` to the cluster's pacer, which survives the pacer's
    loss: a call that fails or does not answer within ``_ALIVE_S`` looks the pacer up by name; if the one
    published is another (this one died with its worker, and its standby took its place), the job is
    marked lost there (``ClusterPacer.lost``: a job with a money budget starts no more rows) and the
    call goes to it. Made in the task's thread: its context finds the worker's client from any thread."""

    def __init__(self, pacer: Any, name: str, job_id: str) -> None:
        self.name, self.job_id = name, job_id
        self.pacer, self.relinked = pacer, False
        self.context = contextvars.copy_context()
        with _REPLACING:
            while _key(self.pacer) in _REPLACED:
                self.pacer = _REPLACED[_key(self.pacer)]
        if self.pacer is not pacer:
            self.relinked = True
            self._ask(self.pacer, "lost", job_id)

    def __call__(self, method: str, *args: Any) -> Any:
        pacer = self.pacer
        future = getattr(pacer, method)(*args)
        for _ in range(_PATIENCE):
            try:
                return future.result(timeout=_ALIVE_S)
            except TimeoutError:
                new = self._relink(pacer)
                if _key(new) != _key(pacer):
                    return self._ask(new, method, *args)
                # Slow, not lost: the call is queued there and will run, so it is waited for, not sent
                # again (a reserve or settle sent twice would hold or count the money twice).
            except Exception:
                return self._ask(self._relink(pacer), method, *args)
        raise ConfigError(
            f"the cluster's pacer {self.name} did not answer a {method} call for "
            f"{_PATIENCE * _ALIVE_S:.0f} s",
            hint="check the Dask dashboard for a stuck worker; run the job again (with state=, only the "
            "rows without an answer are sent)",
        )

    @staticmethod
    def _ask(pacer: Any, method: str, *args: Any) -> Any:
        return getattr(pacer, method)(*args).result(timeout=_ALIVE_S)

    def _relink(self, old: Any) -> Any:
        """The pacer now published under the name (``old`` itself if it is alive: a slow answer)."""
        from distributed import get_client

        with _REPLACING:
            if _key(old) in _REPLACED:  # another partition on this worker found it first
                new = _REPLACED[_key(old)]
            else:
                new = find_or_promote(self.context.copy().run(get_client), self.name)
                if new is None:
                    raise ConfigError(
                        f"the cluster's pacer {self.name} was lost with its worker, and no standby was ready",
                        hint="run the job again (with state=, only the rows without an answer are sent)",
                    )
                if _key(new) == _key(old):
                    return old
                _REPLACED[_key(old)] = new
        self._ask(new, "lost", self.job_id)
        self.pacer, self.relinked = new, True
        return new


def _key(actor: Any) -> str:
    return str(getattr(actor, "_key", id(actor)))


def driver_progress(kind: str, partitions: int, setting: Any, client: Any) -> DaskProgress | None:
    """The job's progress on the driver (None for ``progress=False``): one display per compute, checked
    on the client's event loop, where the workers' reports arrive."""
    if not wants_progress(setting):
        return None

    def busy() -> bool:  # the client still waits for a result (a compute is running)
        futures = list(getattr(client, "futures", {}).values())
        return any(getattr(f, "status", "") in ("pending", "lost") for f in futures)

    return DaskProgress(kind, partitions, setting, busy=busy, later=client.loop.call_later)


def _driver_prices(prices: Prices | None) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext() if prices is None else prices_in_force(prices)


def known_divisions(ddf: Any) -> tuple[Any, ...] | None:
    return tuple(ddf.divisions) if ddf.known_divisions else None


def partition_number(info: dict[str, Any] | None, divisions: tuple[Any, ...] | None) -> int:
    """The partition's number in the frame the job was made on. Dask numbers the partitions of what it
    computes: in ``out.partitions[2].compute()`` that partition is number 0, which would read and write
    partition 0's state (and pay for rows already answered). Its division (first index value) says
    which one it is, when the divisions are known."""
    if not info:
        return 0
    division = info.get("division")
    if divisions is not None and division is not None:
        with contextlib.suppress(ValueError, TypeError):
            return list(divisions[:-1]).index(division)
    return int(info["number"])


class _Home:
    """The driver's end of the job's topic: usage records from the workers into the job's usage log,
    progress reports into the job's progress."""

    def __init__(
        self, log: UsageLog, partitions: int, client: Any, topic: str, progress: DaskProgress | None = None
    ) -> None:
        self.log, self.client, self.topic = log, client, topic
        self.left = set(range(partitions))
        self.records = 0
        self.progress = progress

    def receive(self, event: tuple[float, dict[str, Any]]) -> None:
        _at, msg = event
        if "progress" in msg:
            if self.progress is not None:
                self.progress.receive(msg["progress"])
            return
        if "done" in msg:
            # Still subscribed after every partition is home: a second compute of the same lazy frame
            # sends (and pays for) its rows again, and its records must come home too.
            self.left.discard(int(msg["done"]))
            return
        record = {k: v for k, v in msg.items() if k != "worker"}
        self.log.append(UsageRecord.from_dict(record))
        self.records += 1


def reporter_for(worker: Any, topic: str, number: int, rows: int, wanted: bool) -> Reporter | None:
    """A partition's progress reports on the job's topic (started here), or None when none is shown."""
    if not wanted:
        return None
    reporter = Reporter(lambda msg: worker.log_event(topic, {"progress": msg}), number, rows)
    reporter.start()
    return reporter


def on_worker(kind: str, topic: str) -> tuple[Any, UsageLog]:
    """The worker running this partition's task, and a usage log whose every record is sent home on
    ``topic`` (in memory, not the worker's store: the driver's log and store get every record)."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        raise ConfigError(
            f"claudekit.{kind}'s Dask frame must be computed on the distributed cluster it was made for"
        ) from None
    log = UsageLog()
    log.subscribe(lambda record: worker.log_event(topic, record.to_dict()))
    return worker, log


def _answer_partition(pdf: pd.DataFrame, spec: _Spec, partition_info: dict[str, Any] | None = None) -> Any:
    """One partition on a worker: the pandas path, paced and budgeted by the cluster's pacer."""
    number = partition_number(partition_info, spec.divisions)
    worker, log = on_worker("map", spec.topic)
    call = _Link(spec.pacer, spec.pacer_name, spec.job_id)
    attempt, _carried = call("begin", spec.job_id, number)
    tag = (spec.job_id, number, int(attempt))
    permits = ClusterPermits(call, tag=tag)
    reporter = reporter_for(worker, spec.topic, number, len(pdf), spec.job["progress"])
    job = dict(spec.job, usage_log=log, progress=reporter or False)
    if spec.state_dir is not None:  # a row answered is in the state within `concurrency` rows or 1 s
        job["state"] = partition_state(spec.state_dir, number, int(spec.job["concurrency"]))
    try:
        cluster = _Cluster(permits, call, spec.job_id, tag)
        with _driver_prices(spec.prices):
            out = asyncio.run(spec.run(pdf, spec.prompt, spec.options, job, spec.settings, cluster))
    except BaseException as exc:
        if reporter is not None:
            reporter.failed(exc)
        raise
    finally:
        permits.close()
    worker.log_event(spec.topic, {"done": number})
    out.attrs = {}  # per-partition bookkeeping does not add up across partitions
    return out

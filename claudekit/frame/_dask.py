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
and so to the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._base._errors import ConfigError
from ..usage import UsageRecord, get_budget, spent
from ..usage._log import UsageLog, log_for
from ._cluster import ClusterBudget, ClusterPacer, ClusterPermits

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

    from ._live import Budget

__all__ = ["map_dask", "pacer_for"]

PACER_NAME = "claudekit-pacer"
_ALIVE_S = 5.0  # how long a published pacer may take to answer before it is taken for lost
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


@dataclass
class _Cluster:
    """A partition's cluster hooks for ``run_map``: the shared permits, and the shared budget."""

    permits: ClusterPermits
    call: Callable[..., Any]
    job_id: str

    def budget(self, local: Budget) -> Budget:
        shared = ClusterBudget(**{k: getattr(local, k) for k in local.__dataclass_fields__})
        shared.call, shared.job = self.call, self.job_id
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
    pacer = await pacer_for(client, _pacer_name(model, options))
    job_id = uuid.uuid4().hex[:12]
    topic = f"{_TOPIC}-{job_id}"
    home = _Home(log_for(job["usage_log"]), ddf.npartitions, client, topic)
    client.subscribe_topic(topic, home.receive)
    job = dict(job, usage_log=None, progress=False, max_cost_usd=_money_limit(job["max_cost_usd"]))
    job["name"] = job["name"] or f"map-{job_id}"
    state_dir = state_root(job["state"])
    spec = _Spec(run, prompt, options, job, dict(settings), pacer, topic, job_id, state_dir)
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

    def find_or_make() -> Any:
        if name in set(client.list_datasets()):
            try:
                future = client.get_dataset(name)
                # (A client that just got the future may still see it "pending": that one is waited for.)
                if future.status in ("lost", "error", "cancelled"):  # gone with its worker
                    raise LookupError(future.status)
                actor = future.result(timeout=_ALIVE_S)
                actor.stats().result(timeout=_ALIVE_S)  # its worker may have died since
                return actor
            except Exception:  # lost with its worker: publish a new one under the same name
                with contextlib.suppress(Exception):
                    client.unpublish_dataset(name)
        future = client.submit(ClusterPacer, actor=True, pure=False)
        with contextlib.suppress(KeyError):  # another kernel published one first: use that one
            client.publish_dataset(future, name=name)
        return client.get_dataset(name).result()

    if getattr(client, "asynchronous", False):
        raise ConfigError(
            "claudekit.map on Dask needs a synchronous Client (Client(...), not asynchronous=True)"
        )
    return await asyncio.to_thread(find_or_make)


class _Home:
    """The driver's end of the usage topic: records from the workers into the job's usage log."""

    def __init__(self, log: UsageLog, partitions: int, client: Any, topic: str) -> None:
        self.log, self.client, self.topic = log, client, topic
        self.left = set(range(partitions))
        self.records = 0

    def receive(self, event: tuple[float, dict[str, Any]]) -> None:
        _at, msg = event
        if "done" in msg:
            # Still subscribed after every partition is home: a second compute of the same lazy frame
            # sends (and pays for) its rows again, and its records must come home too.
            self.left.discard(int(msg["done"]))
            return
        record = {k: v for k, v in msg.items() if k != "worker"}
        self.log.append(UsageRecord.from_dict(record))
        self.records += 1


def _answer_partition(pdf: pd.DataFrame, spec: _Spec, partition_info: dict[str, Any] | None = None) -> Any:
    """One partition on a worker: the pandas path, paced and budgeted by the cluster's pacer."""
    from distributed import get_worker

    number = int(partition_info["number"]) if partition_info else 0
    try:
        worker = get_worker()
    except ValueError:
        raise ConfigError(
            "claudekit.map's Dask frame must be computed on the distributed cluster it was made for"
        ) from None

    def call(method: str, *args: Any) -> Any:
        return getattr(spec.pacer, method)(*args).result()

    log = UsageLog()  # in memory, not the worker's store: the driver's log and store get every record
    log.subscribe(lambda record: worker.log_event(spec.topic, record.to_dict()))
    permits = ClusterPermits(call)
    job = dict(spec.job, usage_log=log)
    if spec.state_dir is not None:  # a row answered is in the state within `concurrency` rows or 1 s
        job["state"] = partition_state(spec.state_dir, number, int(spec.job["concurrency"]))
    try:
        cluster = _Cluster(permits, call, spec.job_id)
        out = asyncio.run(spec.run(pdf, spec.prompt, spec.options, job, spec.settings, cluster))
    finally:
        permits.close()
    worker.log_event(spec.topic, {"done": number})
    out.attrs = {}  # per-partition bookkeeping does not add up across partitions
    return out

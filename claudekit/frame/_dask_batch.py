"""``claudekit.batch`` over a Dask DataFrame: each partition batched on its worker, lazily.

Imported only when a Dask DataFrame is passed. Like ``map`` on Dask, the answer is a lazy Dask
DataFrame: nothing is submitted until it is computed, and then each partition's task runs the pandas
``batch`` on its own rows (so the whole table is never in the driver's memory), splits them by
``max_batch_requests`` / ``max_batch_bytes`` as the pandas path does, waits for its batches (polling)
and returns its rows joined to their answers. With ``state=`` (a directory: a path,
or an fsspec URL) each partition keeps its own state, so a task run again — a second compute, or Dask
re-running it after a worker died — re-attaches to the batches already submitted (or reuses their
answers) and submits nothing twice. Usage records come home to the driver's usage log as ``map``'s do.

Budgets: ``max_cost_usd`` and what is left of the kernel budget (``set_budget``) when the job is made are
the job's limit at the cluster's pacer (``_cluster``). Each partition, before submitting, reserves its
requests' worst case at batch price (the pandas batch's estimate) under that limit; one that does not
fit submits nothing, and its rows come back ``skipped_budget`` with the reason — so part of the table may
be answered and part refused. When its batches have ended it settles with their real cost. A task run
again with its state file carries the earlier attempt's hold over (it re-attaches to that attempt's
batches) and reserves nothing twice; without ``state=`` the earlier attempt's hold stays spent (its
batch may have been created and charged).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..usage._log import UsageLog, log_for
from ..usage._prices import Prices, get_prices
from ._cluster import LOST
from ._dask import (
    _TOPIC,
    _client,
    _driver_prices,
    _Home,
    _Link,
    _money_limit,
    _pacer_name,
    _refuse,
    driver_progress,
    known_divisions,
    on_worker,
    pacer_for,
    partition_number,
    partition_state,
    reporter_for,
    state_root,
)
from ._job import cluster_hold

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

__all__ = ["batch_dask"]


@dataclass(frozen=True)
class _BatchSpec:
    """What each partition's task needs (pickled into the graph: no client, no open file)."""

    batch: Callable[..., Any]  # _api.batch
    prompt: Any
    kwargs: dict[str, Any]  # batch's keyword arguments, without state= and usage_log=
    topic: str
    state_dir: str | None
    job_id: str = ""
    limit: float | None = None  # the job's money limit (None: no budget in force, and no pacer)
    pacer: Any = None
    pacer_name: str = ""
    divisions: tuple[Any, ...] | None = None  # the frame's, when known (_dask.partition_number)
    prices: Prices | None = None  # the driver's table: the workers price with it, not their own


async def batch_dask(
    ddf: dd.DataFrame,
    prompt: Any,
    kwargs: dict[str, Any],
    *,
    batch: Callable[..., Any],
    empty_result: Callable[..., pd.DataFrame],
) -> dd.DataFrame:
    """The lazy Dask DataFrame of ``batch``'s answers (see the module docstring)."""
    client = _client()
    options = {k: kwargs.get(k) for k in ("client", "backend", "offline", "api_key", "base_url")}
    job = dict(
        dry_run=kwargs["dry_run"], state=kwargs["state"], concurrency=kwargs["concurrency"],
        max_cost_usd=None, give_up_after_s=1.0, examples=kwargs["examples"],
    )
    _refuse(options, job)
    settings = {k: v for k, v in kwargs.items() if k not in _OWN}
    # The user's max_cost_usd is checked there (and a model without a price refused on the driver).
    meta = empty_result(ddf._meta, prompt, settings, dict(job, max_cost_usd=kwargs["max_cost_usd"]))
    model = str(meta.attrs.pop("claudekit_model", ""))
    limit = _money_limit(kwargs["max_cost_usd"])
    pacer = None if limit is None else await pacer_for(client, _pacer_name(model, options))
    job_id = uuid.uuid4().hex[:12]
    topic = f"{_TOPIC}-{job_id}"
    progress = driver_progress("batch", ddf.npartitions, kwargs["progress"], client)
    home = _Home(log_for(kwargs["usage_log"]), ddf.npartitions, client, topic, progress)
    client.subscribe_topic(topic, home.receive)
    state_dir = state_root(kwargs["state"])
    name = kwargs["name"] or f"batch-{job_id}"
    own = {k: v for k, v in kwargs.items() if k not in ("state", "usage_log", "dry_run", "max_cost_usd")}
    spec = _BatchSpec(
        batch, prompt, dict(own, name=name, progress=progress is not None), topic, state_dir,
        job_id, limit, pacer, "" if limit is None else _pacer_name(model, options),
        known_divisions(ddf), get_prices(),
    )
    mapper: Any = ddf.map_partitions  # dask's own methods carry no annotations
    out: dd.DataFrame = mapper(_batch_partition, spec, meta=meta, align_dataframes=False)
    return out


_RESULTS_PER_CHUNK = 10_000

# batch's own keyword arguments (the rest are the request's settings)
_OWN = frozenset(
    {
        "state", "max_cost_usd", "dry_run", "progress", "poll_interval", "max_batch_requests",
        "max_batch_bytes", "examples", "usage_log", "name", "concurrency", "client", "backend",
        "offline", "api_key", "base_url",
    }
)


def _batch_partition(
    pdf: pd.DataFrame, spec: _BatchSpec, partition_info: dict[str, Any] | None = None
) -> Any:
    """One partition on a worker: the pandas batch of its rows, submitted, waited for and joined."""
    number = partition_number(partition_info, spec.divisions)
    worker, log = on_worker("batch", spec.topic)
    state = None
    if spec.state_dir is not None:
        # On a URL, a batch's control facts are written at once, its results with its `collected` mark
        # (or by the 1-second timer): a lost result is collected from the server again, never paid twice.
        state = partition_state(spec.state_dir, number, _RESULTS_PER_CHUNK)
    reporter = reporter_for(worker, spec.topic, number, len(pdf), spec.kwargs["progress"])
    kwargs = dict(spec.kwargs, state=state, usage_log=log, name=f"{spec.kwargs['name']}-{number}")
    kwargs["progress"] = reporter or False
    money = _Money(spec, number, state is not None) if spec.limit is not None else None

    async def run() -> pd.DataFrame:
        token = cluster_hold.set(money.hold if money is not None else None)
        try:
            job = await spec.batch(pdf, spec.prompt, **kwargs)
        finally:
            cluster_hold.reset(token)
        frame: pd.DataFrame = await job
        if money is not None:
            money.settle(job, log)
        return frame

    try:
        with _driver_prices(spec.prices):
            out = asyncio.run(run())
    except BaseException as exc:
        if reporter is not None:
            reporter.failed(exc)
        raise
    worker.log_event(spec.topic, {"done": number})
    out.attrs = {}  # per-partition bookkeeping does not add up across partitions
    return out


class _Money:
    """A partition's budget at the cluster's pacer: an attempt begun, its batch's worst case held before
    submitting (:meth:`hold`, the pandas batch's ``cluster_hold``), settled with the real cost at the end."""

    def __init__(self, spec: _BatchSpec, number: int, carry: bool) -> None:
        self.spec, self.call = spec, _Link(spec.pacer, spec.pacer_name, spec.job_id)
        # With a state file, an earlier attempt's batches are re-attached: its hold is carried over.
        attempt, self.carried = self.call("begin", spec.job_id, number, carry)
        self.tag = (spec.job_id, number, int(attempt))

    def hold(self, worst: float | None) -> str | None:
        assert self.spec.limit is not None
        limit = self.spec.limit
        if worst is None:
            return f"not submitted: this partition's cost is not known, and the job's budget is ${limit:,.4f}"
        ok, spent = self.call("reserve_batch", self.spec.job_id, limit, worst, self.tag)
        if ok:
            return None
        if self.call.relinked:
            return LOST.replace("not sent", "not submitted")
        return (
            f"not submitted: this partition's batch could cost up to ${worst:,.4f} at batch price, above "
            f"what is left of the job's ${limit:,.4f} (${float(spent):,.4f} spent, the rest held by other "
            "partitions); other partitions may have been answered"
        )

    def settle(self, job: Any, log: UsageLog) -> None:
        """What this run's batches cost; with a hold carried over, the answers the earlier attempt
        collected (in the state file, never settled) count too: never under-counted."""
        if self.carried > 0:
            cost = sum(o.cost or 0.0 for o in job._outcomes.values())
        else:
            cost = sum(r.cost_usd or 0.0 for r in log)
        self.call("settle_batch", self.spec.job_id, cost, self.tag)

"""``claudekit.batch`` over a Dask DataFrame: each partition batched on its worker, lazily.

Imported only when a Dask DataFrame is passed. Like ``map`` on Dask, the answer is a lazy Dask
DataFrame: nothing is submitted until it is computed, and then each partition's task runs the pandas
``batch`` on its own rows (so the whole table is never in the driver's memory), splits them by
``max_batch_requests`` / ``max_batch_bytes`` as the pandas path does, waits for its batches (polling)
and returns its rows joined to their answers. With ``state=`` (a directory: a path, or an fsspec URL)
each partition keeps its own state, so a task run again — a second compute, or Dask re-running it
after a worker died — re-attaches to the batches already submitted (or reuses their answers) and
submits nothing twice. Usage records come home to the driver's usage log as ``map``'s do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._base._errors import ConfigError
from ..usage import get_budget
from ..usage._log import UsageLog, log_for
from ._dask import _TOPIC, _client, _Home, _refuse, partition_state, state_root

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
    _refuse_budgets(kwargs["max_cost_usd"])
    settings = {k: v for k, v in kwargs.items() if k not in _OWN}
    meta = empty_result(ddf._meta, prompt, settings, job)
    meta.attrs.pop("claudekit_model", None)
    job_id = uuid.uuid4().hex[:12]
    topic = f"{_TOPIC}-{job_id}"
    home = _Home(log_for(kwargs["usage_log"]), ddf.npartitions, client, topic)
    client.subscribe_topic(topic, home.receive)
    state_dir = state_root(kwargs["state"])
    name = kwargs["name"] or f"batch-{job_id}"
    own = {k: v for k, v in kwargs.items() if k not in ("state", "usage_log", "dry_run", "max_cost_usd")}
    spec = _BatchSpec(batch, prompt, dict(own, name=name, progress=False), topic, state_dir)
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


def _refuse_budgets(max_cost_usd: float | None) -> None:
    """Budgets do not hold across a Dask batch yet (each worker would check only its own partition)."""
    if max_cost_usd is not None or get_budget() is not None:
        raise ConfigError(
            "claudekit.batch on a Dask DataFrame cannot hold max_cost_usd or the kernel budget yet",
            hint="estimate a sample first (await claudekit.batch(ddf.head(1000), ..., dry_run=True)), "
            "or use claudekit.map(ddf, ..., max_cost_usd=...), which holds it across the cluster",
        )


def _batch_partition(
    pdf: pd.DataFrame, spec: _BatchSpec, partition_info: dict[str, Any] | None = None
) -> Any:
    """One partition on a worker: the pandas batch of its rows, submitted, waited for and joined."""
    from distributed import get_worker

    number = int(partition_info["number"]) if partition_info else 0
    try:
        worker = get_worker()
    except ValueError:
        raise ConfigError(
            "claudekit.batch's Dask frame must be computed on the distributed cluster it was made for"
        ) from None
    log = UsageLog()  # in memory, not the worker's store: the driver's log and store get every record
    log.subscribe(lambda record: worker.log_event(spec.topic, record.to_dict()))
    state = None
    if spec.state_dir is not None:
        # On a URL, a batch's control facts are written at once, its results with its `collected` mark
        # (or by the 1-second timer): a lost result is collected from the server again, never paid twice.
        state = partition_state(spec.state_dir, number, _RESULTS_PER_CHUNK)
    kwargs = dict(spec.kwargs, state=state, usage_log=log, name=f"{spec.kwargs['name']}-{number}")

    async def run() -> pd.DataFrame:
        job = await spec.batch(pdf, spec.prompt, **kwargs)
        frame: pd.DataFrame = await job
        return frame

    out = asyncio.run(run())
    worker.log_event(spec.topic, {"done": number})
    out.attrs = {}  # per-partition bookkeeping does not add up across partitions
    return out

"""``claudekit.map`` and ``claudekit.batch``: a prompt over every row of a DataFrame."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._base._errors import BudgetExceededError, ClaudekitError, ConfigError
from .._request._settings import Settings
from .._runner import _attempts
from .._runner._client import ClientHandle, resolve_client
from .._runner._files import share_documents, upload_large, where_of
from ..usage import get_budget
from ..usage._log import log_for
from ._job import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    BatchJob,
    _Rows,
    client_options,
    cluster_hold,
    requests_params,
)
from ._outcome import Outcome
from ._progress import make_progress
from ._state import Intent, JobState, StateFile
from ._state import state_file as state_file_of

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

    from ._estimate import JobEstimate
    from ._live import LiveRun
    from ._plan import Plan, PromptSpec, Request

__all__ = ["batch", "map"]

_ids = itertools.count(1)


async def map(
    df: Any,
    prompt: PromptSpec,
    *,
    concurrency: int = 16,
    max_cost_usd: float | None = None,
    dry_run: bool = False,
    progress: bool | str = True,
    state: str | os.PathLike[str] | None = None,
    examples: Sequence[Any] | None = None,
    usage_log: Any = None,
    name: str | None = None,
    give_up_after_s: float = 300.0,
    client: Any = None,
    backend: str | None = None,
    offline: Any = None,
    api_key: str | None = None,
    base_url: str | None = None,
    **settings: Any,
) -> pd.DataFrame | JobEstimate | dd.DataFrame:
    """Run ``prompt`` over every row of ``df`` with live calls; returns a new DataFrame.

    ``prompt`` is a template with ``{column}`` fields (``{{``/``}}`` for literal braces; a missing
    column is an error before anything is sent) or a function of the row (a dict) returning text or
    content blocks. The result has the input's columns, index and order, plus ``claude_text`` — or,
    with ``output_format`` (a pydantic model or JSON schema), one typed column per top-level field —
    and the bookkeeping columns ``claude_status``, ``claude_error``, ``claude_cost_usd``,
    ``claude_input_tokens``, ``claude_output_tokens``, ``claude_cache_read_input_tokens``. A bad row
    never raises: it has its status and error, and every other row completes.

    Options are :class:`~claudekit.Chat`'s settings (``model``, ``system``, ``max_tokens``, ``thinking``,
    ``output_format``, ``cache``, …, and ``client`` / ``backend`` / ``offline`` / ``api_key`` /
    ``base_url``), plus: ``concurrency`` (most rows at once; the job adapts below it to the rate
    limits), ``max_cost_usd`` (rows that could pass it are not started: ``skipped_budget``),
    ``dry_run`` (send nothing; return a :class:`JobEstimate`), ``progress`` (False for none),
    ``state`` (a JSON Lines file: rows already answered are not sent again), ``examples``
    (few-shot ``(question, answer)`` pairs, cached with the system prompt), ``usage_log``, ``name``,
    ``give_up_after_s`` (when no answer came for this long while every request is refused with 429/529,
    the rows left fail with that error; the progress line says "stuck" before). The kernel budget
    (:func:`claudekit.usage.set_budget`) holds too: a row that could pass it is ``skipped_budget``.
    Identical prompts are sent once. ``result.attrs["claudekit"]`` says what the job did (distinct
    requests, reused answers, HTTP attempts, 429/529 responses, seconds spent waiting for rate limits,
    ``cost_usd`` spent by this run and ``reused_cost_usd`` paid by earlier runs for the reused answers).
    """
    options = dict(client=client, backend=backend, offline=offline, api_key=api_key, base_url=base_url)
    job = dict(
        concurrency=concurrency, max_cost_usd=max_cost_usd, dry_run=dry_run, progress=progress, state=state,
        examples=examples, usage_log=usage_log, name=name, give_up_after_s=give_up_after_s,
    )
    if _is_dask(df):  # Dask is imported only when a Dask frame is passed
        from ._dask import map_dask

        return await map_dask(df, prompt, options, job, settings, run=run_map, empty_result=_empty_result)
    return await run_map(df, prompt, options, job, settings)


def _is_dask(df: Any) -> bool:
    """A Dask DataFrame (without importing Dask: a process that has one has imported it already)."""
    import sys

    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(df, dd.DataFrame)


def _empty_result(
    frame: pd.DataFrame, prompt: PromptSpec, settings: dict[str, Any], job: dict[str, Any]
) -> pd.DataFrame:
    """The result frame of no rows, with every column and dtype (a Dask frame's ``meta``); it checks the
    job as :func:`map` does, so a mistake is said before any partition runs."""
    from ._columns import result_frame

    job_settings = _settings(settings)
    _check_job(job["concurrency"], job["max_cost_usd"], job["give_up_after_s"])
    plan = _plan(frame, prompt, job_settings, job["examples"])
    if job["max_cost_usd"] is not None:
        _budget(job["max_cost_usd"], plan)  # a model without a price is refused here, not on a worker
    out = result_frame(plan, {}, frame)
    out.attrs["claudekit_model"] = job_settings.model
    return out


async def run_map(
    df: Any,
    prompt: PromptSpec,
    options: dict[str, Any],
    job: dict[str, Any],
    settings: dict[str, Any],
    cluster: Any = None,
) -> pd.DataFrame | JobEstimate:
    """:func:`map` on a pandas frame; ``cluster`` (a partition on a cluster worker) brings the
    cluster's permits and budget in place of this process's."""
    concurrency, max_cost_usd = job["concurrency"], job["max_cost_usd"]
    limits = (concurrency, max_cost_usd, job["give_up_after_s"])
    frame, plan, state_file, known = _prepare(df, prompt, settings, job["examples"], job["state"], limits)
    handle = resolve_client(**client_options(plan.settings, **options))
    try:
        sdk, pacer = _paced(handle.client, concurrency, cluster.permits if cluster is not None else None)
        if job["dry_run"]:
            return await _dry_run(sdk, plan, known, concurrency)
        budget = await _before_run(handle, plan, known, max_cost_usd)
        if budget is not None and cluster is not None:
            budget = cluster.budget(budget)
        run = _live_run(
            plan, sdk, pacer, known, state_file, budget, job["usage_log"], job["name"], job["progress"],
            job["give_up_after_s"],
        )
        outcomes = await _run_to_end(run, state_file)
    finally:
        await handle.aclose()
    return _map_result(plan, outcomes, frame, run, len(known))


async def _before_run(
    handle: ClientHandle, plan: Plan, known: dict[str, Any], max_cost_usd: float | None
) -> Any:
    """Documents by file id (see below), then the budget the rows are held to (None: none in force)."""
    await _documents_by_id(handle, plan, known)
    return _budget(max_cost_usd, plan) if max_cost_usd is not None or get_budget() is not None else None


async def _documents_by_id(handle: ClientHandle, plan: Plan, known: dict[str, Any]) -> None:
    """A document that several rows send, or one over the size threshold, goes up once by the Files API
    and the rows' requests name its id (where claudekit knows the service has the Files API)."""
    if handle.backend not in ("anthropic", "offline"):
        return
    pending = [r for fp, r in plan.requests.items() if fp not in known and isinstance(r.content, list)]
    for request in pending:
        request.content = await upload_large(handle, request.content)  # type: ignore[arg-type]
    contents = [{"messages": [{"content": r.content}]} for r in pending]
    await share_documents(handle.client, where_of(handle), contents)


def _prepare(
    df: Any,
    prompt: PromptSpec,
    settings: dict[str, Any],
    examples: Any,
    state: Any,
    limits: tuple[Any, Any, Any],
) -> tuple[pd.DataFrame, Plan, StateFile | None, dict[str, Any]]:
    """The frame, the plan of its requests, the state file and the answers it already holds (each input
    checked before the next is read, so the first mistake is the one reported)."""
    from ._live import reuse

    job_settings = _settings(settings)
    frame = _frame(df)
    _check_job(*limits)
    plan = _plan(frame, prompt, job_settings, examples)
    state_file = state_file_of(state) if state is not None else None
    known = reuse(state_file.load().results, plan) if state_file is not None else {}
    return frame, plan, state_file, known


def _paced(client: Any, concurrency: int, permits: Any = None) -> tuple[Any, Any]:
    """The client behind a pacer of ``concurrency`` requests (drawing on ``permits``), and the pacer."""
    from ._pacing import Pacer

    pacer = Pacer(concurrency, permits=permits)
    # The pacer outside, the attempt log inside: an attempt's latency excludes the pacer's waits.
    # (The handle's client already logs attempts, so the pacer goes in front of its middleware.)
    base = _attempts.with_attempts(client)
    return base.with_options(middleware=[pacer, *base.middleware]), pacer


async def _dry_run(sdk: Any, plan: Plan, known: dict[str, Any], concurrency: int) -> JobEstimate:
    from ._estimate import estimate_job

    todo = [r for fp, r in plan.requests.items() if fp not in known]
    return await _estimate(estimate_job, sdk, todo, plan, len(known), concurrency)


def _map_result(
    plan: Plan, outcomes: dict[str, Any], frame: pd.DataFrame, run: LiveRun, reused: int
) -> pd.DataFrame:
    from ._columns import result_frame

    out = result_frame(plan, outcomes, frame)
    out.attrs["claudekit"] = _run_attrs(run, len(plan.requests), reused)
    return out


def _live_run(
    plan: Plan,
    sdk: Any,
    pacer: Any,
    known: dict[str, Any],
    state_file: StateFile | None,
    budget: Any,
    usage_log: Any,
    name: str | None,
    progress: bool | str,
    give_up_after_s: float,
) -> LiveRun:
    """The live run of ``map`` over the rows not answered yet (``known``)."""
    import httpx2

    from ._live import LiveRun

    return LiveRun(
        plan,
        sdk,
        pacer,
        log_for(usage_log),
        name or f"map-{next(_ids)}",
        state=state_file,
        budget=budget,
        progress=make_progress(progress),
        timeout=httpx2.Timeout(plan.settings.timeout, connect=plan.settings.connect_timeout),
        give_up_after_s=float(give_up_after_s),
        outcomes=dict(known),
    )


async def _run_to_end(run: LiveRun, state_file: StateFile | None) -> dict[str, Any]:
    """Run every row; the progress line is finished and the state file closed whatever happens."""
    if state_file is not None:
        state_file.open()
    error: BaseException | None = None
    try:
        return await run.run()
    except BaseException as exc:
        error = exc
        raise
    finally:
        if run.progress is not None:
            run.snapshot.note = ""
            run.progress.finish(run.snapshot, error)
        if state_file is not None:
            state_file.close()


def _run_attrs(run: Any, distinct: int, reused: int) -> dict[str, Any]:
    """``result.attrs["claudekit"]`` of a live job: what it did and what it spent."""
    return {
        "job": run.name,
        "requests": distinct,
        "reused": reused,
        # This run's spend, and what the reused answers cost when an earlier run paid for them: summing
        # "cost_usd" over runs counts every answer once (claude_cost_usd is each row's answer's cost).
        "cost_usd": round(run.snapshot.cost_usd, 10),
        "reused_cost_usd": round(run.snapshot.reused_cost_usd, 10),
        "attempts": run.pacer.attempts,
        "rate_limited": run.pacer.rate_limited,
        "waited_s": round(run.pacer.waited_s, 3),
    }


async def batch(
    df: Any,
    prompt: PromptSpec,
    *,
    state: str | os.PathLike[str] | None = None,
    max_cost_usd: float | None = None,
    dry_run: bool = False,
    progress: bool | str = True,
    poll_interval: float | None = None,
    max_batch_requests: int = MAX_BATCH_REQUESTS,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    examples: Sequence[Any] | None = None,
    usage_log: Any = None,
    name: str | None = None,
    concurrency: int = 16,
    client: Any = None,
    backend: str | None = None,
    offline: Any = None,
    api_key: str | None = None,
    base_url: str | None = None,
    **settings: Any,
) -> BatchJob | JobEstimate | dd.DataFrame:
    """Submit the same job as :func:`map` through the Message Batches API (half price); returns a
    :class:`BatchJob` at once — ``await job`` for the frame.

    The inputs and the result frame are :func:`map`'s. Caching defaults to the 1-hour TTL (a batch can
    take longer than 5 minutes; the docs recommend it for batches that share a prefix). ``state`` (a
    JSON Lines file) records the submitted batches and the finished rows: re-running the same call, or
    :meth:`BatchJob.resume` in a new kernel, re-attaches without submitting anything again.
    ``max_cost_usd`` refuses to submit when the job's upper bound at batch price passes it.
    ``max_batch_requests`` / ``max_batch_bytes`` split larger jobs (the service's limits by default);
    ``concurrency`` applies to token counting for dry runs and budgets. A Dask DataFrame gives a lazy Dask
    DataFrame (each partition batched on its worker; ``state`` a directory; a budget held partition by
    partition, so part of the table may be answered and part ``skipped_budget``): see ``_dask_batch``.
    """
    if settings.setdefault("cache", "1h") is True:
        settings["cache"] = "1h"
    if _is_dask(df):  # Dask is imported only when a Dask frame is passed (every argument goes on)
        return await _batch_dask(dict(locals()))
    job_settings = _settings(settings)
    frame = _frame(df)
    _check_batch(concurrency, max_cost_usd, max_batch_requests, max_batch_bytes)
    plan = _plan(frame, prompt, job_settings, examples)
    state_file = state_file_of(state) if state is not None else None
    options = client_options(
        job_settings, client=client, backend=backend, offline=offline, api_key=api_key, base_url=base_url
    )
    locked = state_file.lock() if state_file is not None and not dry_run else contextlib.nullcontext()
    try:
        async with locked:  # one run per state file: loaded, submitted and recorded as one step
            saved = state_file.load() if state_file is not None else None
            job = _batch_job(
                plan, frame, saved, state_file, options, name, usage_log, poll_interval, progress
            )
            job._limits = (max_batch_requests, max_batch_bytes)
            estimate = await _start(job, plan, state_file, dry_run, max_cost_usd, concurrency)
    finally:
        if state_file is not None:
            state_file.close()  # a job that is never awaited must not hold the file open
    return job if estimate is None else estimate  # (a dry run's estimate)


def _check_batch(concurrency: int, max_cost_usd: float | None, requests: int, size: int) -> None:
    _check_job(concurrency, max_cost_usd)
    if requests < 1 or size < 1:
        raise ConfigError("max_batch_requests and max_batch_bytes must be positive")


async def _batch_dask(arguments: dict[str, Any]) -> dd.DataFrame:
    from ._dask_batch import batch_dask

    df, prompt, settings = arguments.pop("df"), arguments.pop("prompt"), arguments.pop("settings")
    kwargs = dict(arguments, **settings)
    return await batch_dask(df, prompt, kwargs, batch=batch, empty_result=_empty_result)


async def _start(
    job: BatchJob,
    plan: Plan,
    state_file: StateFile | None,
    dry_run: bool,
    max_cost_usd: float | None,
    concurrency: int,
) -> JobEstimate | None:
    """Estimate (``dry_run``: only that), check the budget, record the rows, submit what is unsent."""
    from ._estimate import estimate_job

    todo = job._unsent()
    hold = cluster_hold.get() if todo and not dry_run else None  # a Dask partition's budget
    async with job._client() as (sdk, is_offline):
        if dry_run or max_cost_usd is not None or get_budget() is not None or hold is not None:
            requests = [plan.requests[fp] for fp in todo]
            estimate = await _estimate(estimate_job, sdk, requests, plan, job.reused, concurrency)
            if dry_run:
                return estimate
            worst = estimate.batch_max_usd
            if todo and max_cost_usd is not None and (worst is None or worst > float(max_cost_usd)):
                raise _over_budget(estimate, float(max_cost_usd))
            if todo:
                _within_kernel_budget(estimate)
            refusal = hold(worst) if hold is not None else None
            if refusal is not None:  # not held across the cluster: these rows are not submitted
                job._outcomes.update({fp: Outcome("skipped_budget", error=refusal) for fp in todo})
                return None
        if todo:
            # A document several rows send goes up once, by the Files API, and each request names its id.
            where = f"offline:{os.getpid()}:{id(sdk)}" if is_offline else _public_url(str(sdk.base_url))
            await share_documents(sdk, where, [job._params[fp][1] for fp in todo])
        if state_file is not None:
            _record_rows(state_file, plan, job, None if is_offline else _public_url(str(sdk.base_url)))
            job._write_requests(job._params[fp] for fp in todo)  # a resume can submit any of them
        await job._catch_up(sdk, quiet=True)
    return None


def _public_url(url: str) -> str:
    """The server's URL without any user:password or query (a state file never holds a secret)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _batch_job(
    plan: Plan,
    frame: pd.DataFrame,
    saved: JobState | None,
    state_file: StateFile | None,
    options: dict[str, Any],
    name: str | None,
    usage_log: Any,
    poll_interval: float | None,
    progress: Any,
) -> BatchJob:
    """The job for this plan, with what the state file already holds: answers reused, batches still
    in flight re-attached (joined through the file's own custom_ids, whatever the index is now)."""
    from ._live import reuse

    known = reuse(saved.results, plan) if saved is not None else {}
    pending = _pending_batches(saved, plan, known) if saved is not None else {}
    job = BatchJob(
        name=name or f"batch-{next(_ids)}",
        rows=_Rows(plan.index, plan.row_fp, plan.row_error, plan.fields),
        base=frame,
        output_format=plan.settings.output_format,
        client_options=options,
        usage_log=log_for(usage_log),
        state=state_file,
        outcomes=known,
        params=requests_params(plan.requests.values()),
        poll_interval=poll_interval,
        progress=progress,
        known_cids={c: fp for c, (fp, _p) in saved.requests.items()} if saved is not None else None,
        intents=_my_intents(saved, plan) if saved is not None else None,
        known_batches=saved.batches if saved is not None else (),
    )
    for batch_id, cids in pending.items():
        job._attach(batch_id, list(cids))
    return job


def _my_intents(saved: JobState, plan: Plan) -> dict[str, Intent]:
    """Open creates (a crash between intent and answer) for this plan's requests."""
    fps = {c: fp for c, (fp, _p) in saved.requests.items()}
    return {k: i for k, i in saved.intents.items() if any(fps.get(c) in plan.requests for c in i.cids)}


# -- helpers ---------------------------------------------------------------------------------------


def _settings(settings: dict[str, Any]) -> Settings:
    if "tools" in settings:
        raise ConfigError(
            "map and batch send one request per row and run no tools",
            hint="use output_format=... for structured answers, or a Chat for tool use",
        )
    job = Settings().replace(**settings)
    job.validate()
    return job


def _frame(df: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        return df
    to_pandas = getattr(df, "to_pandas", None)  # polars and other frames that convert themselves
    if callable(to_pandas):
        converted = to_pandas()
        if isinstance(converted, pd.DataFrame):
            return converted
    raise ConfigError(
        f"expected a pandas DataFrame, got {type(df).__name__}", hint="e.g. pandas.DataFrame({'text': [...]})"
    )


def _check_job(concurrency: int, max_cost_usd: float | None, give_up_after_s: float = 1.0) -> None:
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
    if max_cost_usd is not None and not max_cost_usd >= 0:
        raise ConfigError(f"max_cost_usd must be a non-negative amount, got {max_cost_usd!r}")
    wait = give_up_after_s
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait > 0:
        raise ConfigError(f"give_up_after_s must be a positive number of seconds, got {give_up_after_s!r}")


def _plan(frame: pd.DataFrame, prompt: PromptSpec, settings: Settings, examples: Any) -> Plan:
    from ._plan import make_plan

    return make_plan(frame, prompt, settings, examples=examples)


async def _estimate(
    estimate_job: Any, sdk: Any, todo: list[Request], plan: Plan, reused: int, concurrency: int
) -> JobEstimate:
    from ._estimate import JobEstimate

    if not todo:
        s = plan.settings
        return JobEstimate(s.model, plan.rows, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, "nothing to send", reused)
    estimate: JobEstimate = await estimate_job(
        sdk, todo, rows=plan.rows, reused=reused, concurrency=concurrency
    )
    return estimate


def _budget(max_cost_usd: float | None, plan: Plan) -> Any:
    """The job's worst-case estimator: ``max_cost_usd`` (None: no limit of its own, only the kernel's)."""
    from ..usage import get_prices
    from ._live import Budget

    s = plan.settings
    # Without a price the kernel budget refuses every row (an infinite worst case), as it does a chat call.
    if max_cost_usd is not None and get_prices().lookup(s.model) is None:
        raise ConfigError(
            f"max_cost_usd needs a price for {s.model!r}, and none is known",
            hint="add one with claudekit.usage.set_prices({...}) or drop max_cost_usd",
        )
    first = next(iter(plan.requests.values()), None)
    prefix = 0
    if first is not None:
        # The shared part of every request (system, tools, examples) in characters, for token estimates.
        import json

        shared = {k: v for k, v in first.body.items() if k in ("system", "tools")}
        prefix = len(json.dumps(shared)) + len(json.dumps(first.body["messages"][:-1]))
    limit = float("inf") if max_cost_usd is None else float(max_cost_usd)
    return Budget(limit, s.model, s.max_tokens, s.cache_ttl, prefix)


class JobBudgetError(BudgetExceededError):
    """A batch whose upper bound passes ``max_cost_usd`` was not submitted (``.estimate`` says why)."""

    def __init__(self, estimate: JobEstimate, limit: float) -> None:
        self.estimate = estimate
        self.budget_usd = limit
        worst = "an unknown amount" if estimate.batch_max_usd is None else f"${estimate.batch_max_usd:,.4f}"
        ClaudekitError.__init__(
            self,
            f"refused before submitting: this batch could cost up to {worst} at batch price "
            f"({estimate.requests:,} requests, {estimate.input_tokens:,} input tokens, up to "
            f"{estimate.max_output_tokens:,} output tokens), above max_cost_usd=${limit:,.4f}",
            hint="raise max_cost_usd, lower max_tokens, or send fewer rows; nothing was submitted",
        )


def _over_budget(estimate: JobEstimate, limit: float) -> JobBudgetError:
    return JobBudgetError(estimate, limit)


def _within_kernel_budget(estimate: JobEstimate) -> None:
    """Refuse a batch whose worst case passes what is left of the kernel budget (set_budget)."""
    from ..usage import spent
    from ..usage._budget import reserved

    limit = get_budget()
    if limit is None:
        return
    used, held, worst = spent(), reserved(), estimate.batch_max_usd
    if worst is not None and used + held + worst <= limit:
        return
    cost = "an unknown amount" if worst is None else f"${worst:,.4f}"
    raise BudgetExceededError(
        f"refused before submitting: this batch could cost up to {cost} at batch price, but only "
        f"${max(0.0, limit - used - held):,.4f} of the session budget of ${limit:,.4f} is left "
        f"(${used:,.4f} spent, ${held:,.4f} held by calls running)",
        scope="session",
        budget_usd=limit,
        spent_usd=used + held,
        estimate=estimate,
        hint="raise claudekit.usage.set_budget(...), lower max_tokens or send fewer rows; nothing was sent",
    )


def _pending_batches(saved: Any, plan: Plan, known: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Batches in the state file that were submitted and not fully collected: id -> {custom_id: fp}."""
    out: dict[str, dict[str, str]] = {}
    for batch_id, cids in saved.batches.items():
        if batch_id in saved.collected:
            continue
        mine = {c: saved.requests[c][0] for c in cids if c in saved.requests}
        mine = {c: fp for c, fp in mine.items() if fp in plan.requests and fp not in known}
        if mine:
            out[batch_id] = mine
    return out


def _record_rows(state: StateFile, plan: Plan, job: BatchJob, base_url: str | None) -> None:
    """Write what a new kernel needs to re-attach: the rows, the split limits and the server (never the
    key); each request is written just before the create that submits it."""
    from .._request._settings import output_schema

    fmt = plan.settings.output_format
    state.write(
        {
            "t": "rows",
            "name": job.name,
            "keys": plan.keys,
            "index_names": list(plan.index.names),
            "fps": plan.row_fp,
            "errors": {str(k): v for k, v in plan.row_error.items()},
            "fields": [f.to_json() for f in plan.fields] if plan.fields is not None else None,
            "schema": output_schema(fmt) if fmt is not None else None,
            "limits": list(job._limits),
            "base_url": base_url,
        }
    )

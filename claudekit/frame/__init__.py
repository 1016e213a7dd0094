"""claudekit.frame — Claude over a DataFrame: a prompt per row, live or through the Message Batches API.

- ``await claudekit.map(df, prompt, **options)``: live calls, paced to the service's rate limits,
  returns a new DataFrame (the input's columns, index and order, plus the answer and bookkeeping).
- ``job = await claudekit.batch(df, prompt, **options)``: the same through the Message Batches API at
  half price; ``await job`` for the frame, ``BatchJob.resume(state)`` to re-attach in a new kernel.
- A Dask DataFrame: both return a lazy Dask DataFrame answered partition by partition on the workers
  (``_dask``: live calls with one pacer for the cluster; ``_dask_batch``: a batch per partition).

This package knows no Jupyter: progress goes through a seam the notebook layer fills
(:func:`set_progress_factory`). Importing it loads no pandas; a job does.

Layer: below the notebook, above store, ``_runner``, usage and the rest of the core.
"""

from __future__ import annotations

from ._api import batch, map
from ._estimate import JobEstimate
from ._job import BatchJob
from ._progress import LineProgress, Snapshot, set_progress_factory

__all__ = ["BatchJob", "JobEstimate", "LineProgress", "Snapshot", "batch", "map", "set_progress_factory"]

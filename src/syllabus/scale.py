"""Run a per-record step over a dataset's shards, on local processes or a Ray cluster.

A step (datatrove-style) is a small picklable object with a `name` and one method,
`run(records, stats) -> records`, that streams the records of one shard and counts what it drops
in `stats` (e.g. `stats["dropped_low_score"] += 1`). The runner maps input shard i to output
shard i, writes each atomically, skips shards a killed run already finished, and adds the
counters `total` and `forwarded` itself. Executors only decide where shards run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from threadpoolctl import threadpool_limits

from syllabus.console import progress_bar
from syllabus.data.dataset import Dataset, DatasetWriter, ShardInfo, shard_name_as, write_shard
from syllabus.errors import BadInput

EXECUTORS = ("local", "ray")


class Step(Protocol):
    name: str

    def run(self, records: Iterable[dict], stats: Counter) -> Iterator[dict]: ...


@dataclass(frozen=True)
class ShardTask:
    step: Step
    src: Path
    shard: str
    out: Path
    out_name: str
    format: str


def _counted(records: Iterable[dict], stats: Counter, key: str) -> Iterator[dict]:
    for record in records:
        stats[key] += 1
        yield record


def process_shard(task: ShardTask) -> ShardInfo:
    """Run the step over one input shard and write the output shard; runs in a worker."""
    stats: Counter = Counter()
    records = _counted(Dataset(task.src).read_shard(task.shard), stats, "total")
    kept = _counted(task.step.run(records, stats), stats, "forwarded")
    return write_shard(task.out, task.out_name, kept, task.format, stats)


def map_shards(
    tasks: Sequence[Any],
    fn: Callable[[Any], Any],
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    description: str = "shards",
) -> Iterator[Any]:
    """Apply fn to each task on the chosen executor, yielding results as they finish."""
    if executor not in EXECUTORS:
        raise BadInput(f"unknown executor {executor!r} (expected one of {', '.join(EXECUTORS)})")
    with progress_bar() as bar:
        progress = bar.add_task(description, total=len(tasks), status="")
        for result in _run(tasks, fn, workers, executor, address):
            bar.advance(progress)
            yield result


def _run(tasks, fn, workers, executor, address) -> Iterator[Any]:
    if executor == "ray":
        yield from _ray_map(tasks, fn, workers, address)
    elif workers <= 1 or len(tasks) <= 1:
        with threadpool_limits(max(workers, 1)):  # in-process work uses `workers` cores too
            for task in tasks:
                yield fn(task)
    else:
        futures = [local_pool(workers).submit(fn, task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool:
            close_local_pool()
            raise
        finally:
            for future in futures:
                future.cancel()


_pool: tuple[int, ProcessPoolExecutor] | None = None


def local_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool kept from one map to the next, like Ray's workers: each process starts and imports once."""
    global _pool
    if _pool is None or _pool[0] != workers:
        close_local_pool()
        # spawn, not fork: workers may load torch/OpenMP, which does not survive a fork of a threaded parent
        _pool = (workers, ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                              initializer=_one_thread_each))
    return _pool[1]


def _one_thread_each() -> None:
    """Pool workers run one BLAS/OpenMP thread each, as Ray's do: N workers keep N cores busy, not N x cores."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"  # for libraries loaded from now on
    threadpool_limits(1)  # for those already loaded: spawn imported the parent's main module


def close_local_pool() -> None:
    global _pool
    if _pool is not None:
        _pool[1].shutdown(cancel_futures=True)
        _pool = None


def run_step(
    step: Step,
    src: Dataset | str | Path,
    out: str | Path,
    *,
    params: dict[str, Any] | None = None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    format: str | None = None,
    summary: Callable[[Dataset], dict[str, Any]] | None = None,
) -> Dataset:
    """Run `step` over every shard of `src` into dataset dir `out`; resumable per shard (a re-run with
    other `params` starts over)."""
    src = src if isinstance(src, Dataset) else Dataset(src)
    fmt = format or src.format
    writer = DatasetWriter(out, stage=step.name, params=params, parents=[src], format=fmt)
    done = writer.resumable_shards()
    tasks = []
    for shard in src.shards:
        out_name = shard_name_as(shard.name, fmt)
        if out_name not in done:
            tasks.append(ShardTask(step, src.path, shard.name, writer.path, out_name, fmt))
    for _ in map_shards(tasks, process_shard, workers=workers, executor=executor, address=address,
                        description=step.name):
        pass
    result = writer.close()
    if summary is not None:
        result = writer.close(summary(result))
    return result


def connect_ray(address: str | None, workers: int) -> None:
    """Join the cluster at `address`, or start a local one with `workers` CPUs; once per process."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)


def _ray_map(tasks, fn, workers, address) -> Iterator[Any]:
    """Ray tasks over shards: a worker killed mid-shard is retried; shard writes are atomic."""
    import ray

    connect_ray(address, workers)
    remote_fn = ray.remote(max_retries=3)(fn)
    # on a cluster given by address every CPU is used; in-process (a local cluster) `workers` tasks at a time
    queue = iter(tasks)
    pending = [remote_fn.remote(task) for task in islice(queue, len(tasks) if address else max(workers, 1))]
    while pending:
        finished, pending = ray.wait(pending, num_returns=1)
        pending += [remote_fn.remote(task) for task in islice(queue, 1)]
        yield ray.get(finished[0])

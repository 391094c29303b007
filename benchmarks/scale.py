"""Scaling of the CPU-bound data stages: curate filter (hashing embedder) and dedup, on the local
process pool and on a local Ray cluster, with 1 and 2 workers.

The corpus is the standard library and site-packages (the first --max-files files), in shards of
--records-per-shard, so both workers have shards to the end. Steady-state throughput is measured:
on both executors the worker processes are started and warmed (imports, the classifier loaded) by
an untimed run of each stage on a few shards, then reused by the timed runs. The peer of each
2-worker run is the 1-worker run of the same stage on the same executor in the same process.

Printed per stage and executor: records/s with 1 and 2 workers, the 1 -> 2 worker speed-up (the
goal is >= 1.7x; it needs two idle cores), and CPU seconds per 1,000 records (driver, workers and
Ray's daemons). CPU time barely depends on the machine's load: equal CPU per record with 1 and 2
workers means the executor adds no overhead, whatever the wall clock says. Check `uptime` first.

    python benchmarks/scale.py [--max-files 5000] [--records-per-shard 100]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

from syllabus.curate.classifier import Label, train_classifier
from syllabus.curate.filter import filter_dataset
from syllabus.data.dataset import Dataset, DatasetWriter
from syllabus.ingest import IngestParams, ingest
from syllabus.dedup import dedup

WARM_UP_SHARDS = 4


def _classifier(data: Dataset, path: Path) -> Path:
    """A hashing-embedder classifier; what it learns does not matter here, only what scoring costs."""
    labels = [Label(r["id"], r["text"], 4 if '"""' in r["text"] else 1)
              for _, r in zip(range(300), data.records())]
    train_classifier(labels, "hashing", model="logreg", folds=2).save(path)
    return path


def _head(data: Dataset, out: Path, shards: int) -> Path:
    """The first few shards of `data` as a dataset: enough to warm every worker up."""
    writer = DatasetWriter(out, stage="warm-up", records_per_shard=data.shards[0].records)
    for shard in data.shards[:shards]:
        writer.write_many(data.read_shard(shard))
    return writer.close().path


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live descendants (pool workers, Ray's processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parent[int(entry)], cpu[int(entry)] = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
    total, frontier = cpu.get(os.getpid(), 0.0), [os.getpid()]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier]
        total += sum(cpu[pid] for pid in children)
        frontier = children
    return total


def _measure(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of run(), progress bars silenced."""
    wall, cpu = time.perf_counter(), tree_cpu_seconds()
    with contextlib.redirect_stderr(io.StringIO()):
        run()
    return time.perf_counter() - wall, tree_cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files", type=int, default=5000)
    parser.add_argument("--records-per-shard", type=int, default=100)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with contextlib.redirect_stderr(io.StringIO()):
            data = ingest(IngestParams(sources=["stdlib", "site-packages"], max_files=args.max_files,
                                       records_per_shard=args.records_per_shard), tmp / "corpus", workers=2)
            warm = _head(data, tmp / "warm", WARM_UP_SHARDS)
        classifier = _classifier(data, tmp / "clf.pkl")
        stages = {
            "curate filter": lambda src, out, **kw: filter_dataset(src, classifier, out, threshold=0.5, **kw),
            "dedup": lambda src, out, **kw: dedup(src, out, **kw),
        }
        print(f"{len(data)} records, {len(data.shards)} shards, {sum(s.bytes for s in data.shards) / 1e6:.1f} MB "
              "compressed")
        print(f"{'stage':<14} {'executor':<8} {'1 worker rec/s':>15} {'2 workers rec/s':>16} {'speed-up':>9} "
              f"{'CPU s/1k rec (1, 2)':>20}")
        for executor in ("local", "ray"):
            if executor == "ray":
                import ray

                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            for name, stage in stages.items():
                for workers in (1, 2):  # untimed: start and warm the workers (1 worker runs in-process locally)
                    _measure(lambda: stage(warm, tmp / f"warm-{name}-{executor}-{workers}", workers=workers,
                                           executor=executor))
                rates, cpus = [], []
                for workers in (1, 2):
                    wall, cpu = _measure(lambda: stage(data.path, tmp / f"{name}-{executor}-{workers}",
                                                       workers=workers, executor=executor))
                    rates.append(len(data) / wall)
                    cpus.append(1000 * cpu / len(data))
                print(f"{name:<14} {executor:<8} {rates[0]:>15.0f} {rates[1]:>16.0f} {rates[1] / rates[0]:>8.2f}x "
                      f"{cpus[0]:>10.2f} {cpus[1]:>9.2f}")


if __name__ == "__main__":
    main()

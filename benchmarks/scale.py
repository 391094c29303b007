"""Scaling of the CPU-bound data stages: curate filter (hashing embedder) and dedup, on the local
process pool and on a local Ray cluster, with 1 and 2 workers, over the ingested standard library.

Printed per stage and executor: records/s with 1 and 2 workers and the 1 -> 2 worker speed-up
(the goal is >= 1.7x). The peer is the same stage with 1 worker on the same executor, in the same
run. Ray start-up is not timed (one cluster, warmed by an untimed run of each stage); the local
pool starts fresh processes on each run, so its start-up is timed. Numbers are
only as good as the machine is idle: check `uptime` first.

    python benchmarks/scale.py [--max-files 2000] [--records-per-shard 100]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

from syllabus.curate.classifier import Label, train_classifier
from syllabus.curate.filter import filter_dataset
from syllabus.data.dataset import Dataset
from syllabus.data.ingest import IngestParams, ingest
from syllabus.dedup import dedup


def _classifier(data: Dataset, path: Path) -> Path:
    """A hashing-embedder classifier; what it learns does not matter here, only what scoring costs."""
    labels = [Label(r["id"], r["text"], 4 if '"""' in r["text"] else 1)
              for _, r in zip(range(300), data.records())]
    train_classifier(labels, "hashing", model="logreg", folds=2).save(path)
    return path


def _timed(run) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # progress bars
        run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files", type=int, default=2000)
    parser.add_argument("--records-per-shard", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with contextlib.redirect_stderr(io.StringIO()):
            data = ingest(IngestParams(sources=["stdlib"], max_files=args.max_files,
                                       records_per_shard=args.records_per_shard), tmp / "stdlib")
        classifier = _classifier(data, tmp / "clf.pkl")
        stages = {
            "curate filter": lambda out, **kw: filter_dataset(data.path, classifier, out, threshold=0.5, **kw),
            "dedup": lambda out, **kw: dedup(data.path, out, **kw),
        }
        print(f"{len(data)} records, {len(data.shards)} shards, {sum(s.bytes for s in data.shards) / 1e6:.1f} MB")
        print(f"{'stage':<14} {'executor':<8} {'1 worker rec/s':>15} {'2 workers rec/s':>16} {'speed-up':>9}")
        for executor in ("local", "ray"):
            if executor == "ray":
                import ray

                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                for name, stage in stages.items():  # warm the workers: imports are start-up, not throughput
                    _timed(lambda: stage(tmp / f"{name}-warm-up", workers=2, executor="ray"))
            for name, stage in stages.items():
                rates = []
                for workers in (1, 2):
                    seconds = _timed(lambda: stage(tmp / f"{name}-{executor}-{workers}", workers=workers,
                                                   executor=executor))
                    rates.append(len(data) / seconds)
                print(f"{name:<14} {executor:<8} {rates[0]:>15.0f} {rates[1]:>16.0f} {rates[1] / rates[0]:>8.2f}x")


if __name__ == "__main__":
    main()

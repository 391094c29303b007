"""Filter throughput (records/s, MB/s) per embedder on 2 workers, and the memory peak.

Trains a classifier per embedder on the gold labels (or heuristic labels of the corpus when the
gold file is absent; `builtin` is the shipped classifier, as the quickstart filters), then times `syllabus.curate.filter.filter_dataset` over a dataset dir
(default: the ingested standard library, built first if missing). The peer, measured in the same
run on the same records: a plain single-process scikit-learn loop (embed all texts, predict_proba,
keep), i.e. what one would write without the streaming/resumable/parallel step.

    PYTHONPATH=src python benchmarks/curate_throughput.py [--embedders builtin,hashing,features,minilm] [--data DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from syllabus.curate.builtin import BUILTIN, classifier_path
from syllabus.curate.classifier import EduClassifier, Label, load_labels, train_classifier
from syllabus.curate.filter import filter_dataset
from syllabus.curate.judge import HeuristicJudge, annotate
from syllabus.data.dataset import Dataset
from syllabus.ingest import IngestParams, ingest

GOLD = Path("/work/shared/data/edu_labels/train.jsonl")


def training_labels(data: Dataset, work: Path) -> list[Label]:
    if GOLD.exists():
        return load_labels(GOLD)
    annotate(data.path, HeuristicJudge(), 300, work / "labels.jsonl")
    return load_labels(work / "labels.jsonl")


def peer_filter(data: Dataset, classifier, threshold: float) -> int:
    """The naive peer: one process, all texts in memory, one embed + predict_proba call."""
    records = list(data.records())
    features = classifier.embedder.embed([r["text"] for r in records])
    prob = classifier.model.predict_proba(features)[:, 1].astype(np.float32)
    return int((prob >= threshold).sum())


def cpu_seconds() -> float:
    """CPU time of this process and of its workers, finished or still alive (the local pool is kept
    between stages, so rusage of finished children alone misses them): robust to other load."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    alive = 0
    for child in multiprocessing.active_children():
        fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        alive += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + alive / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="builtin,hashing,features,hashing+features")
    parser.add_argument("--data", type=Path, help="dataset dir (default: ingest the standard library)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        data_dir = args.data or Path("runs/bench/stdlib")
        if not Dataset.is_complete(data_dir):
            ingest(IngestParams(sources=["stdlib"], records_per_shard=200), data_dir)
        data = Dataset(data_dir)
        megabytes = sum(len(r["text"].encode()) for r in data.records()) / 1e6
        labels = training_labels(data, work)
        print(f"corpus: {data_dir}  {len(data)} records, {megabytes:.1f} MB; {len(labels)} training labels; "
              f"{args.workers} workers")
        print(f"{'embedder':22s} {'records/s':>10s} {'MB/s':>7s} {'seconds':>8s} {'cpu s':>6s} {'kept':>6s} "
              f"{'peer s':>7s} {'speedup':>8s} {'load':>5s}")
        for spec in args.embedders.split(","):
            if spec == BUILTIN:
                path = classifier_path(BUILTIN)
                classifier = EduClassifier.load(path)
            else:
                classifier = train_classifier(labels, spec, model="rf", folds=2, n_jobs=args.workers)
                classifier.model.set_params(n_jobs=1)  # workers are the parallelism when filtering
                path = work / "clf.pkl"
                classifier.save(path)
            cpu_before = cpu_seconds()
            start = time.perf_counter()
            result = filter_dataset(data.path, path, work / f"out-{spec}", threshold=0.5, workers=args.workers)
            seconds = time.perf_counter() - start
            cpu = cpu_seconds() - cpu_before
            start = time.perf_counter()
            peer_kept = peer_filter(data, classifier, 0.5)
            peer_seconds = time.perf_counter() - start
            assert peer_kept == len(result), (peer_kept, len(result))  # same decisions as the peer
            print(f"{spec:22s} {len(data) / seconds:10.1f} {megabytes / seconds:7.2f} {seconds:8.1f} {cpu:6.1f} "
                  f"{len(result):6d} {peer_seconds:7.1f} {peer_seconds / seconds:7.2f}x {os.getloadavg()[0]:5.1f}")
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        print(f"memory peak (largest process): {peak:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

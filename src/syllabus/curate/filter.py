"""Score every record with the educational-value classifier and keep the high-value ones.

A `syllabus.scale.Step`: each shard streams through in batches, every kept record gets
`edu_score` (P(score >= 3)), drops are counted as `dropped_low_edu_score`, and a 10-bin
histogram of all scores (kept or not) is counted per shard and summed into the manifest.

`--keep-fraction F` is turned into a threshold before the run, as the (1 - F) quantile of the
scores of a sample (up to `sample_size` records, taken evenly across shards). That costs one
extra scoring pass over the sample instead of the whole corpus; the kept fraction is then F up
to sampling error, and the threshold used is recorded in the manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from syllabus.config import Params, StageContext
from syllabus.curate import CLASSIFIER_FILE, stage_file
from syllabus.curate.builtin import BUILTIN, classifier_path
from syllabus.curate.classifier import EduClassifier
from syllabus.data.dataset import Dataset, OutputFormat
from syllabus.errors import BadInput
from syllabus.scale import run_step
from syllabus.summaries import FilterSummary, dataset_summary

BINS = 10
CV_SUMMARY = ("f1", "precision", "recall", "roc_auc", "spearman")  # the classifier's CV numbers, beside what it kept
# one classifier per worker process, not per shard; workers outlive a stage, so a retrained file is reloaded
_loaded: dict[tuple[str, int, int], EduClassifier] = {}


def _classifier(path: str) -> EduClassifier:
    stat = Path(path).stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = EduClassifier.load(path)
    return _loaded[key]


def _bin_key(score: float) -> str:
    low = min(int(score * BINS), BINS - 1) / BINS
    return f"edu_score_bin_{low:.1f}"


class EduFilter:
    name = "curate.filter"

    def __init__(self, classifier: str | Path, threshold: float, batch_size: int = 256,
                 cache_dir: str | Path | None = None):
        self.classifier = str(classifier)
        self.threshold = threshold
        self.batch_size = batch_size
        self.cache_dir = str(cache_dir) if cache_dir else None

    def run(self, records: Iterable[dict], stats: Counter) -> Iterator[dict]:
        classifier = _classifier(self.classifier)
        records = iter(records)
        while batch := list(islice(records, self.batch_size)):
            scores = classifier.score([r["text"] for r in batch], self.cache_dir, [r["id"] for r in batch])
            for record, score in zip(batch, scores):
                stats[_bin_key(float(score))] += 1
                if score >= self.threshold:
                    yield {**record, "edu_score": round(float(score), 4)}
                else:
                    stats["dropped_low_edu_score"] += 1


def threshold_for_fraction(data: Dataset, classifier: EduClassifier, keep_fraction: float,
                           sample_size: int = 2000) -> float:
    per_shard = max(1, sample_size // max(len(data.shards), 1))
    texts = [r["text"] for shard in data.shards for r in islice(data.read_shard(shard), per_shard)]
    if not texts:
        return 0.0
    return float(np.quantile(classifier.score(texts), 1.0 - keep_fraction))


def score_histogram(stats: dict[str, int]) -> dict[str, int]:
    return {key.removeprefix("edu_score_bin_"): stats.get(key, 0)
            for key in (f"edu_score_bin_{i / BINS:.1f}" for i in range(BINS))}


def filter_dataset(data: str | Path, classifier: str | Path, out: str | Path, *, threshold: float | None = None,
                   keep_fraction: float | None = None, workers: int = 1, executor: str = "local",
                   address: str | None = None, batch_size: int = 256, cache_dir: str | Path | None = None,
                   format: str | None = None) -> Dataset:
    if threshold is not None and keep_fraction is not None:
        raise BadInput("give one of --threshold or --keep-fraction, not both")
    if keep_fraction is not None and not 0 < keep_fraction <= 1:
        raise BadInput(f"--keep-fraction must be in (0, 1], got {keep_fraction}")
    if threshold is not None and not 0 <= threshold <= 1:
        raise BadInput(f"--threshold is a probability in [0, 1], got {threshold}")
    src = Dataset(data)
    classifier = classifier_path(classifier)
    model = EduClassifier.load(classifier)
    model.embedder  # noqa: B018 -- fail now, not in a worker, if the embedder changed since training
    if keep_fraction is not None:
        threshold = threshold_for_fraction(src, model, keep_fraction)
    elif threshold is None:
        threshold = model.threshold  # 0.5, or the one chosen by CV at training time
    step = EduFilter(Path(classifier).resolve(), threshold, batch_size, cache_dir)
    params = {"classifier": str(Path(classifier).resolve()), "embedder": model.embedder_key,
              "threshold": threshold, "keep_fraction": keep_fraction}

    def summary(result: Dataset) -> dict[str, Any]:
        stats = result.stats
        return {FilterSummary.kind: FilterSummary(
            threshold=round(threshold, 4), keep_fraction=keep_fraction, kept=stats.get("forwarded", 0),
            total=stats.get("total", 0), embedder=model.embedder_key, histogram=score_histogram(stats),
            classifier_cv={key: model.cv_metrics.get(key) for key in CV_SUMMARY}).dump()}

    return run_step(step, src, out, params=params, workers=workers, executor=executor, address=address,
                    format=format, summary=summary)


class FilterParams(Params):
    classifier: Path | None = None  # `builtin` (the shipped one), a file, or an input named `classifier`
    threshold: float | None = None
    keep_fraction: float | None = None
    batch_size: int = 256
    format: OutputFormat = None


def filter_stage(params: FilterParams, inputs: dict[str, Path | list[Path]], out: Path,
                 ctx: StageContext) -> FilterSummary:
    classifier = params.classifier or inputs.get("classifier")
    if classifier is None:
        raise BadInput("curate.filter needs params.classifier or an input named classifier")
    if str(classifier) != BUILTIN:
        classifier = stage_file(classifier, CLASSIFIER_FILE)
    result = filter_dataset(inputs["data"], classifier, out, threshold=params.threshold,
                            keep_fraction=params.keep_fraction, workers=ctx.workers, executor=ctx.executor,
                            address=ctx.address, batch_size=params.batch_size, format=params.format)
    return dataset_summary(result.manifest)

"""Report build time on a large run dir: `syllabus report` vs one `syllabus data stats` pass.

The run has a 100k-record filtered dataset, a 20k-step training log and two eval stages, their
summaries written through `syllabus.summaries` as the stages write them. Peer: `dataset_stats` over
the same dataset, the cheapest thing that reads every record once (the report reads none: its
histograms come from the summaries).

    python benchmarks/report.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from syllabus.data.dataset import write_dataset
from syllabus.data.stats import dataset_stats
from syllabus.report import build_report
from syllabus.summaries import BenchmarkScores, EvalSummary, FilterSummary, TrainSummary

RECORDS = 100_000
STEPS = 20_000


def make_run(run: Path) -> Path:
    stages = [("filtered", "curate.filter"), ("pretrain", "train.pretrain"), ("eval_base", "eval"), ("eval_ft", "eval")]
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"name": "bench", "stages": [{"name": n, "uses": u} for n, u in stages]}))
    filtered = write_dataset(run / "filtered", ({"id": str(i), "text": f"def f{i}(): return {i}\n",
                                                 "edu_score": (i * 7919 % 1000) / 1000} for i in range(RECORDS)),
                             stage="curate.filter", params={"threshold": 0.5})
    (run / "pretrain").mkdir()
    (run / "pretrain" / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "loss": 5 / (1 + s / 1000), "lr": 1e-3, "tokens_per_s": 9000.0,
                    **({"val_loss": 5.1 / (1 + s / 1000)} if s % 100 == 0 else {})}) + "\n" for s in range(STEPS)))
    (run / ".state").mkdir()
    scores = {b: BenchmarkScores(pass_at_k={1: p}, nll=n, tasks=164)
              for b, p, n in (("humaneval", 0.05, 1.1), ("mbpp", 0.06, 1.0))}
    summaries = {
        "filtered": FilterSummary(total=RECORDS, kept=RECORDS // 2, threshold=0.5, keep_fraction=None,
                                  embedder="hashing", histogram={i / 10: RECORDS // 10 for i in range(10)}),
        "pretrain": TrainSummary(steps=STEPS, loss=1.0, val_loss=1.1, tokens=STEPS * 2048, seconds=60.0,
                                 tokens_per_s=9000.0),
        "eval_base": EvalSummary(benchmarks=scores),
        "eval_ft": EvalSummary(benchmarks=scores),
    }
    for name, uses in stages:
        (run / ".state" / f"{name}.json").write_text(json.dumps({"status": "done", "uses": uses, "seconds": 1.0,
                                                                 "summary": summaries[name].dump()}))
    return filtered.path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dataset = make_run(Path(tmp) / "run")
        build_report(Path(tmp) / "run")  # warm: imports and matplotlib's font cache
        t = time.perf_counter()
        page = build_report(Path(tmp) / "run")
        ours = time.perf_counter() - t
        t = time.perf_counter()
        dataset_stats(dataset)
        peer = time.perf_counter() - t
        size = page.stat().st_size
    print(f"syllabus report      {ours:6.2f} s  page {size / 1e3:.0f} kB ({RECORDS:,} records, {STEPS:,} log steps)")
    print(f"syllabus data stats  {peer:6.2f} s  (one pass over the same {RECORDS:,} records)")
    print(f"time ratio report/stats: {ours / peer:.2f}x (the report parses the log and renders its figures)")


if __name__ == "__main__":
    main()

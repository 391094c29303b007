"""Report build time on a large run dir: `syllabus report` vs one `syllabus data stats` pass.

The run has a 100k-record filtered dataset whose stage left no score histogram (so the report
streams every record for it, its worst case), a 20k-step training log and two eval stages. Peer:
`dataset_stats` over the same dataset, the cheapest thing that reads every record once.

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
    summaries = {"filtered": {"kept": RECORDS}, "pretrain": {"steps": STEPS},
                 "eval_base": {"humaneval": {"pass@1": 0.02, "nll": 1.4}, "mbpp": {"pass@1": 0.03, "nll": 1.3}},
                 "eval_ft": {"humaneval": {"pass@1": 0.05, "nll": 1.1}, "mbpp": {"pass@1": 0.06, "nll": 1.0}}}
    for name, uses in stages:
        (run / ".state" / f"{name}.json").write_text(json.dumps({"status": "done", "uses": uses, "seconds": 1.0,
                                                                 "summary": summaries[name]}))
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
    print(f"time ratio report/stats: {ours / peer:.2f}x (the report also parses the log and renders 3 figures)")


if __name__ == "__main__":
    main()

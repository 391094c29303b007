"""`syllabus data stats`: what is in a dataset dir, in one streaming pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from syllabus.data.dataset import Dataset

BYTES_PER_TOKEN = 3.5  # a codegen-style BPE on Python source averages about this


def dataset_stats(path: str | Path) -> dict[str, Any]:
    dataset = Dataset(path)
    sizes = []
    languages: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for record in dataset.records():
        sizes.append(len(record.get("text", "").encode("utf-8", "surrogatepass")))
        languages[record.get("lang") or "unknown"] += 1
        sources[record.get("source") or "unknown"] += 1
    sizes_array = np.array(sizes or [0])
    total_bytes = int(sizes_array.sum())
    return {
        "path": str(dataset.path),
        "stage": dataset.stage,
        "records": len(sizes),
        "shards": len(dataset.shards),
        "text_bytes": total_bytes,
        "approx_tokens": int(total_bytes / BYTES_PER_TOKEN),
        "bytes_per_record": {
            "min": int(sizes_array.min()),
            "median": int(np.median(sizes_array)),
            "p95": int(np.percentile(sizes_array, 95)),
            "max": int(sizes_array.max()),
        },
        "languages": dict(languages.most_common()),
        "sources": dict(sources.most_common()),
        "stage_stats": dataset.stats,
    }

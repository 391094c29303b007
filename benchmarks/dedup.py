"""Dedup and decontamination on the standard library.

1. Near duplicates: the ingested stdlib plus 200 planted near copies (a line dropped, a line added,
   an identifier renamed). Ours (`syllabus.dedup.dedup`, end to end: read shards, sign with rensa,
   LSH, write the deduplicated dataset) against the peer most scripts use: plain datasketch
   `MinHash` + `MinHashLSH` (query, then insert) over the same shingles, texts already in memory.
   Prints docs/s, recall on the planted copies and the throughput ratio.
2. Decontamination of the whole ingested stdlib against HumanEval + MBPP: wall time and the cost
   of each method.

    python benchmarks/dedup.py [--workers 2]
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

from datasketch import MinHash, MinHashLSH

from syllabus.data import Dataset, DatasetWriter
from syllabus.ingest import IngestParams, ingest
from syllabus.decontam import DecontamParams, decontaminate
from syllabus.codetext import CODE_TOKEN, normalize_code
from syllabus.dedup import DedupParams, dedup, minhash_signatures

PLANTED = 200


def near_copy(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    del lines[rng.randrange(len(lines))]
    lines.insert(rng.randrange(len(lines)), "    pass  # edited")
    names = sorted(set(re.findall(r"\b[a-z_][a-z0-9_]{4,}\b", text)))
    out = "\n".join(lines)
    if names:
        name = rng.choice(names)
        out = re.sub(rf"\b{name}\b", name + "_x", out, count=1)
    return out


def shingles(text: str, k: int) -> set[str]:
    tokens = CODE_TOKEN.findall(normalize_code(text))
    return {" ".join(tokens[j : j + k]) for j in range(max(1, len(tokens) - k + 1))}


def datasketch_peer(texts: list[str], params: DedupParams) -> set[int]:
    """Indices the plain datasketch loop drops: any LSH candidate among earlier records."""
    lsh = MinHashLSH(threshold=params.threshold, num_perm=params.num_perm)
    dropped = set()
    for i, text in enumerate(texts):
        m = MinHash(num_perm=params.num_perm, seed=params.seed)
        m.update_batch([s.encode("utf-8", "surrogatepass") for s in shingles(text, params.shingle)])
        if lsh.query(m):
            dropped.add(i)
        else:
            lsh.insert(str(i), m)
    return dropped


def _jaccard(a: dict, b: dict, params: DedupParams) -> float:
    x, y = shingles(a["text"], params.shingle), shingles(b["text"], params.shingle)
    return len(x & y) / len(x | y)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        stdlib = ingest(IngestParams(sources=["stdlib"], records_per_shard=250), Path(tmp) / "stdlib")
        records = list(stdlib.records())
        sources = rng.sample([r for r in records if r["text"].count("\n") > 20], PLANTED)
        planted = [{**r, "id": f"planted-{i}", "text": near_copy(r["text"], rng)} for i, r in enumerate(sources)]
        writer = DatasetWriter(Path(tmp) / "corpus", stage="bench", records_per_shard=250)
        writer.write_many(records + planted)
        corpus = writer.close()
        texts = [r["text"] for r in corpus.records()]
        n = len(texts)
        params = DedupParams()

        started = time.perf_counter()
        out = dedup(corpus.path, Path(tmp) / "dedup", params, workers=args.workers)
        ours_s = time.perf_counter() - started
        kept = {r["id"] for r in Dataset(out.path).records()}
        ours_recall = sum(p["id"] not in kept for p in planted) / PLANTED
        # planted copies whose true shingle Jaccard with their source reaches the threshold
        true_pairs = [i for i, (s, p) in enumerate(zip(sources, planted)) if _jaccard(s, p, params) >= params.threshold]
        ours_true = sum(planted[i]["id"] not in kept for i in true_pairs) / len(true_pairs)

        started = time.perf_counter()
        minhash_signatures(texts, shingle=params.shingle, num_perm=params.num_perm, seed=params.seed)
        rensa_s = time.perf_counter() - started

        started = time.perf_counter()
        dropped = datasketch_peer(texts, params)
        peer_s = time.perf_counter() - started
        peer_recall = sum(i in dropped for i in range(len(records), n)) / PLANTED
        peer_true = sum(len(records) + i in dropped for i in true_pairs) / len(true_pairs)

        print(f"near-dup, {n} files ({len(records)} stdlib + {PLANTED} planted near copies), threshold {params.threshold}, "
              f"{params.num_perm} perm, shingle {params.shingle}")
        print(f"  syllabus dedup (rensa, {args.workers} workers, end to end): {ours_s:6.1f} s {n / ours_s:7.0f} docs/s "
              f"recall {ours_recall:.1%} (true J >= threshold: {ours_true:.1%}), dropped {n - len(kept)}")
        print(f"  plain datasketch MinHashLSH (in memory):      {peer_s:6.1f} s {n / peer_s:7.0f} docs/s "
              f"recall {peer_recall:.1%} (true J >= threshold: {peer_true:.1%}), dropped {len(dropped)}")
        print(f"  signing alone, one process: rensa {n / rensa_s:.0f} docs/s; datasketch sign+LSH {n / peer_s:.0f} docs/s")
        print(f"  {len(true_pairs)} of {PLANTED} planted copies have true Jaccard >= {params.threshold} with their source")
        print(f"  throughput ratio ours/datasketch: {peer_s / ours_s:.1f}x")

        report = decontaminate(stdlib.path, params=DecontamParams(benchmarks=["humaneval", "mbpp"]),
                               workers=args.workers)
        seconds = report["seconds"]
        print(f"decontam of the stdlib ({report['records']} files, {stdlib.manifest['bytes'] / 1e6:.0f} MB zstd) vs "
              f"HumanEval+MBPP ({sum(report['benchmarks'].values())} tasks), {args.workers} workers: "
              f"wall {seconds['wall']:.0f} s")
        print("  per-method CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items() if k != "wall"))
        print(f"  flagged {report['flagged_records']} records ({report['flagged_fraction']:.2%}): {report['by_method']}")


if __name__ == "__main__":
    main()

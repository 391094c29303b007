"""Exact and near-duplicate removal: normalized-text hashes, then MinHash LSH over token shingles.

Exact duplicates share the hash of `normalize_code(text)`: every line stripped, blank lines and
whole-line `#` comments dropped, runs of spaces collapsed. So re-indented copies, copies with
different comment lines or trailing whitespace count as the same file, while anything that
changes a token does not. Trailing `# ...` comments are kept because a `#` may sit inside a string
and telling them apart needs a tokenizer, which costs more than this whole stage.

Near duplicates: the normalized text is split into code tokens, each run of `shingle` tokens is one
shingle, and each record gets a MinHash signature of its shingle set. The signature of `rows`
consecutive permutations is one LSH band; records that agree on a whole band land in the same
bucket, and a bucket's members whose estimated Jaccard with the bucket's first member reaches the
threshold join its cluster (union-find). Each cluster keeps its first record in dataset order, so
the output is deterministic.

The pipeline is four separable steps so that the scale-out version can turn the middle two into a
shuffle (group by band key) and memory on one node does not grow with the corpus:

    shard_signatures   per shard, in parallel (syllabus.scale.map_shards): exact keys + MinHash
    band_keys          signatures -> (band, bucket hash, record) rows
    bucket_groups      rows grouped by (band, bucket hash) -> candidate groups
    cluster            groups -> union-find -> one representative per cluster

MinHash library: rensa (Rust), not datasketch. On the standard library (1756 files, 128
permutations) rensa's `digest_matrix_from_flat_token_hashes` computed all signatures in 0.7 s
against ~15 s for `datasketch.MinHash.bulk` (about 20x), and it takes the shingle hashes as one
numpy buffer, so no Python object is built per shingle. With tokenizing included, as
benchmarks/dedup.py measures it, signing runs 3.7x faster than datasketch's MinHash + LSH loop.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rensa
from pydantic import Field

from syllabus.config import Params, StageContext
from syllabus.console import console
from syllabus.data.dataset import Dataset, DatasetWriter, ShardInfo, write_shard
from syllabus.data.files import atomic_path
from syllabus.errors import BadInput
from syllabus.scale import map_shards

# identifiers/numbers, or one punctuation character: whitespace never makes a token
CODE_TOKEN = re.compile(r"[A-Za-z_0-9]+|[^\sA-Za-z_0-9]")
_SPACES = re.compile(r"[ \t\f\v]+")
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the rolling shingle/band hashes
EXAMPLE_CLUSTERS = 5


class DedupParams(Params):
    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard similarity that makes a near duplicate")
    shingle: int = Field(5, ge=1, description="tokens per shingle")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    seed: int = 1


def normalize_code(text: str) -> str:
    """The text that exact-duplicate detection compares (see the module docstring)."""
    lines = (_SPACES.sub(" ", line.strip()) for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def exact_key(text: str) -> str:
    return hashlib.blake2b(normalize_code(text).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def shingle_hashes(token_hashes: list[int], shingle: int) -> np.ndarray:
    """u64 hash of every run of `shingle` consecutive tokens (the whole text when it is shorter)."""
    tokens = np.asarray(token_hashes, dtype=np.uint64)
    width = min(shingle, len(tokens))
    if width == 0:
        return tokens
    n = len(tokens) - width + 1
    out = tokens[:n].copy()
    for j in range(1, width):
        out = out * _MIX + tokens[j : j + n]
    return out


def minhash_signatures(texts: list[str], *, shingle: int, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures [n, num_perm] uint32 of the shingle sets of normalized texts."""
    tokens = [CODE_TOKEN.findall(normalize_code(t)) for t in texts]
    per_doc = [shingle_hashes(h, shingle) for h in rensa.RMinHash.hash_token_sets(tokens)]
    offsets = np.zeros(len(per_doc) + 1, dtype=np.uint64)
    np.cumsum([len(s) for s in per_doc], out=offsets[1:])
    flat = np.concatenate(per_doc) if per_doc else np.zeros(0, dtype=np.uint64)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, num_perm, seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(len(texts), num_perm)


# ── step 1: per shard ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SignatureTask:
    src: Path
    shard: str
    cache: Path
    shingle: int
    num_perm: int
    seed: int


@dataclass
class ShardSignatures:
    shard: str
    ids: list[str]
    paths: list[str]
    exact: list[str]
    signatures: np.ndarray  # [records, num_perm] uint32


def shard_signatures(task: SignatureTask) -> ShardSignatures:
    """Exact keys and MinHash signatures of one shard; cached so a killed run resumes."""
    cache = task.cache / f"{task.shard}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return ShardSignatures(task.shard, list(z["ids"]), list(z["paths"]), list(z["exact"]), z["signatures"])
    records = list(Dataset(task.src).read_shard(task.shard))
    texts = [r["text"] for r in records]
    result = ShardSignatures(
        shard=task.shard,
        ids=[str(r.get("id", "")) for r in records],
        paths=[str(r.get("path", "")) for r in records],
        exact=[exact_key(t) for t in texts],
        signatures=minhash_signatures(texts, shingle=task.shingle, num_perm=task.num_perm, seed=task.seed),
    )
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.array(result.ids, dtype=str), paths=np.array(result.paths, dtype=str),
                 exact=np.array(result.exact, dtype=str), signatures=result.signatures)
    return result


# ── steps 2-4: bands -> buckets -> clusters ─────────────────────────────────────────────────


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimizing false positives + false negatives at threshold."""
    s = np.linspace(0, 1, 1001)
    best, best_cost = (1, num_perm), np.inf
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        candidate = 1 - (1 - s**rows) ** bands  # probability that two records share a bucket
        cost = np.trapezoid(np.where(s < threshold, candidate, 1 - candidate), s)
        if cost < best_cost:
            best, best_cost = (bands, rows), cost
    return best


def band_keys(signatures: np.ndarray, first_index: int, bands: int, rows: int) -> np.ndarray:
    """One (band, bucket, record) row per record and band; records numbered from first_index."""
    n = len(signatures)
    keys = np.empty((n * bands, 3), dtype=np.uint64)
    sig = signatures.astype(np.uint64)
    for b in range(bands):
        bucket = sig[:, b * rows]
        for j in range(1, rows):
            bucket = bucket * _MIX + sig[:, b * rows + j]
        keys[b * n : (b + 1) * n] = np.stack(
            [np.full(n, b, dtype=np.uint64), bucket, np.arange(first_index, first_index + n, dtype=np.uint64)], axis=1)
    return keys


def bucket_groups(keys: np.ndarray) -> list[np.ndarray]:
    """Records that share a (band, bucket), as arrays of record numbers (groups of 2+ only)."""
    if len(keys) == 0:
        return []
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    keys = keys[order]
    same = (keys[1:, 0] == keys[:-1, 0]) & (keys[1:, 1] == keys[:-1, 1])
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    sizes = np.diff(np.append(starts, len(keys)))
    return [keys[s : s + k, 2].astype(np.int64) for s, k in zip(starts, sizes) if k > 1]


class UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller record number stays root: the first record represents its cluster
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster(groups: list[np.ndarray], signatures: np.ndarray, threshold: float, uf: UnionFind) -> None:
    """Join each bucket member to the bucket's first member when their estimated Jaccard reaches threshold."""
    for group in groups:
        first = group[0]
        similar = (signatures[group[1:]] == signatures[first]).mean(axis=1) >= threshold
        for member in group[1:][similar]:
            uf.union(int(first), int(member))


# ── the stage ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class KeepTask:
    src: Path
    shard: str
    out: Path
    format: str
    drop: dict[int, str]  # position in shard -> reason


def write_kept(task: KeepTask) -> ShardInfo:
    stats: Counter = Counter()
    kept = []
    for position, record in enumerate(Dataset(task.src).read_shard(task.shard)):
        stats["total"] += 1
        reason = task.drop.get(position)
        if reason:
            stats[f"dropped_{reason}"] += 1
        else:
            kept.append(record)
    stats["forwarded"] = len(kept)
    return write_shard(task.out, task.shard, kept, task.format, stats)


def dedup(
    data: str | Path,
    out: str | Path,
    params: DedupParams | None = None,
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> Dataset:
    """Write `data` without exact and near duplicates to dataset dir `out`; resumable per shard."""
    params = params or DedupParams()
    src = Dataset(data)
    if len(src) == 0:
        raise BadInput("dataset is empty: nothing to deduplicate", file=src.path)
    writer = DatasetWriter(out, stage="dedup", params=params.model_dump(), parents=[src], format=src.format)
    tasks = [SignatureTask(src.path, s.name, writer.path / ".minhash", params.shingle, params.num_perm, params.seed)
             for s in src.shards]
    by_shard = {r.shard: r for r in map_shards(tasks, shard_signatures, workers=workers, executor=executor,
                                                 address=address, description="dedup: minhash")}
    shards = [by_shard[s.name] for s in src.shards]
    ids = [i for s in shards for i in s.ids]
    paths = [p for s in shards for p in s.paths]
    exact = [k for s in shards for k in s.exact]
    signatures = np.concatenate([s.signatures for s in shards])

    reason: dict[int, str] = {}
    first_of_key: dict[str, int] = {}
    uf = UnionFind(len(ids))
    for i, key in enumerate(exact):
        if key in first_of_key:
            uf.union(first_of_key[key], i)
            reason[i] = "exact_duplicate"
        else:
            first_of_key[key] = i
    unique = np.array(sorted(first_of_key.values()), dtype=np.int64)
    bands, rows = lsh_params(params.threshold, params.num_perm)
    keys = band_keys(signatures[unique], 0, bands, rows)
    keys[:, 2] = unique[keys[:, 2].astype(np.int64)]  # local numbering -> record number
    cluster(bucket_groups(keys), signatures, params.threshold, uf)

    members: dict[int, list[int]] = {}
    for i in range(len(ids)):
        root = uf.find(i)
        members.setdefault(root, []).append(i)
        if root != i and i not in reason:
            reason[i] = "near_duplicate"

    done = writer.done_shards()
    keep_tasks, start = [], 0
    for shard, sig in zip(src.shards, shards):
        n = len(sig.ids)
        if shard.name not in done:
            drop = {i - start: reason[i] for i in range(start, start + n) if i in reason}
            keep_tasks.append(KeepTask(src.path, shard.name, writer.path, src.format, drop))
        start += n
    for _ in map_shards(keep_tasks, write_kept, workers=workers, executor=executor, address=address,
                        description="dedup: write"):
        pass

    clusters = sorted((m for m in members.values() if len(m) > 1), key=lambda m: (-len(m), m[0]))
    counts = Counter(reason.values())
    summary = {
        "dedup": {
            "records": len(ids),
            "kept": len(ids) - len(reason),
            "exact_duplicates": counts["exact_duplicate"],
            "near_duplicates": counts["near_duplicate"],
            "clusters": len(clusters),
            "lsh": {"bands": bands, "rows": rows, "threshold": params.threshold, "shingle": params.shingle,
                    "num_perm": params.num_perm},
            "example_clusters": [
                [{"id": ids[i], "path": paths[i], "kept": i == m[0]} for i in m[:5]] + ([{"more": len(m) - 5}] if len(m) > 5 else [])
                for m in clusters[:EXAMPLE_CLUSTERS]
            ],
        }
    }
    dataset = writer.close(summary)
    shutil.rmtree(writer.path / ".minhash", ignore_errors=True)
    console.print(f"dedup: {len(ids)} records -> {len(dataset)} kept ({counts['exact_duplicate']} exact, "
                  f"{counts['near_duplicate']} near duplicates in {len(clusters)} clusters)")
    return dataset


def dedup_stage(params: DedupParams, inputs: dict, out: Path, ctx: StageContext) -> dict:
    if "data" not in inputs:
        raise BadInput("stage dedup needs inputs: {data: <stage or dataset dir>}")
    dataset = dedup(inputs["data"], out, params, workers=ctx.workers, executor=ctx.executor, address=ctx.address)
    return {k: v for k, v in dataset.manifest["summary"]["dedup"].items() if k != "example_clusters"}

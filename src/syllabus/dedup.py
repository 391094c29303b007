"""Exact and near-duplicate removal: normalized-text hashes, then MinHash LSH over token shingles.

Exact duplicates share the hash of `codetext.normalize_code(text)`: every line stripped, blank lines
and whole-line `#` comments dropped, runs of spaces collapsed. So re-indented copies, copies with
different comment lines or trailing whitespace count as the same file, while anything that
changes a token does not.

Near duplicates: the normalized text is split into code tokens (`codetext.code_tokens`), each run of `shingle` tokens is one
shingle, and each record gets a MinHash signature of its shingle set. The signature of `rows`
consecutive permutations is one LSH band; records that agree on a whole band land in the same
bucket, and a bucket's members whose estimated Jaccard with the bucket's first member reaches the
threshold join its cluster. Each cluster keeps its first record in dataset order, so the output is
deterministic.

The stage is a MapReduce over the dataset's shards, run by `syllabus.scale.map_shards` on local
processes or Ray alike, so that no node holds all signatures or band keys:

    map     per shard: exact keys and MinHash signatures; signatures go to an .npy file, and one
            (key, key, record) row per record for its exact key and per LSH band is written to
            the partition chosen by a hash of the key (the shuffle, P partition files per shard)
    reduce  per partition: rows grouped by key -> (first record, member) pairs; band pairs are kept
            when their estimated Jaccard reaches the threshold (signatures read back by record number)
    driver  connected components of those edges (one or so per duplicate, not per record), then
            each shard is rewritten without its duplicates

Records are numbered in dataset order (a shard's first number comes from the manifest's counts),
and every cluster is represented by its lowest number, so the result does not depend on P, on the
executor or on the order in which tasks finish. Exact duplicates are banded too: they land in every
bucket of their original, which is always the lower number, so they add edges but change no cluster.

MinHash library: rensa (Rust), not datasketch. On the standard library (1756 files, 128
permutations) rensa's `digest_matrix_from_flat_token_hashes` computed all signatures in 0.7 s
against ~15 s for `datasketch.MinHash.bulk` (about 20x), and it takes the shingle hashes as one
numpy buffer, so no Python object is built per shingle. With tokenizing included, as
benchmarks/dedup.py measures it, signing runs 3.7x faster than datasketch's MinHash + LSH loop.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from syllabus.codetext import CODE_TOKEN, MIX, band_hashes, code_tokens, normalize_code, shingle_signatures
from syllabus.config import Params, StageContext
from syllabus.console import console
from syllabus.data.dataset import Dataset, DatasetWriter, OutputFormat, ShardInfo, shard_name_as, write_shard
from syllabus.data.files import atomic_path, atomic_write_json, read_json
from syllabus.errors import BadInput
from syllabus.scale import map_shards
from syllabus.summaries import DedupSummary, dataset_summary

EXAMPLE_CLUSTERS = 5
ROWS_PER_PARTITION = 4_000_000  # shuffle rows one reduce task holds: 96 MB of (key, key, record) u64
VERIFY_BATCH = 8192  # candidate pairs compared at once


class DedupParams(Params):
    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard similarity that makes a near duplicate")
    shingle: int = Field(5, ge=1, description="tokens per shingle")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    seed: int = 1
    partitions: int | None = Field(None, ge=1, description="shuffle partitions of the LSH keys "
                                   "(default: one per 4M band rows); the output does not depend on it")
    format: OutputFormat = None


def exact_key(text: str) -> str:
    return _digest(normalize_code(text)).hex()


def _digest(normalized: str) -> bytes:
    return hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def minhash_signatures(texts: list[str], *, shingle: int, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures [n, num_perm] uint32 of the shingle sets of the texts, normalized."""
    return _signatures([normalize_code(t) for t in texts], shingle, num_perm, seed)


def _signatures(normalized: list[str], shingle: int, num_perm: int, seed: int) -> np.ndarray:
    return shingle_signatures([code_tokens(t) for t in normalized], shingle=shingle, num_perm=num_perm, seed=seed)


# ── map: per shard ──────────────────────────────────────────────────────────────────────────


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
    buckets = band_hashes(signatures, bands, rows)
    for b in range(bands):
        keys[b * n : (b + 1) * n] = np.stack(
            [np.full(n, b, dtype=np.uint64), buckets[:, b], np.arange(first_index, first_index + n, dtype=np.uint64)],
            axis=1)
    return keys


def exact_keys(normalized: list[str], first_index: int) -> np.ndarray:
    """One (key high word, key low word, record) row per normalized text."""
    words = np.frombuffer(b"".join(map(_digest, normalized)), dtype=np.uint64).reshape(len(normalized), 2)
    return np.column_stack([words, np.arange(first_index, first_index + len(normalized), dtype=np.uint64)])


def partition_of(rows: np.ndarray, partitions: int) -> np.ndarray:
    """The shuffle partition of each (key, key, record) row: a hash of its two key columns."""
    mixed = (rows[:, 0] * MIX ^ rows[:, 1]) * MIX
    return (mixed >> np.uint64(32)) % np.uint64(partitions)


@dataclass(frozen=True)
class SignatureTask:
    src: Path
    shard: str
    first: int  # record number of the shard's first record
    cache: Path
    params: DedupParams
    bands: int
    rows: int
    partitions: int


def sign_shard(task: SignatureTask) -> str:
    """Map: signatures and partitioned key rows of one shard; a shard a killed run finished is skipped."""
    done = task.cache / "map" / f"{task.shard}.npz"
    if done.exists():
        return task.shard
    records = list(Dataset(task.src).read_shard(task.shard))
    normalized = [normalize_code(r["text"]) for r in records]
    signatures = _signatures(normalized, task.params.shingle, task.params.num_perm, task.params.seed)
    with atomic_path(task.cache / "signatures" / f"{task.shard}.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, signatures)
    arrays = {"ids": np.array([str(r.get("id", "")) for r in records], dtype=str),
              "paths": np.array([str(r.get("path", "")) for r in records], dtype=str)}
    for kind, rows in (("exact", exact_keys(normalized, task.first)),
                       ("bands", band_keys(signatures, task.first, task.bands, task.rows))):
        part = partition_of(rows, task.partitions)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(task.partitions + 1))
        for j in range(task.partitions):
            arrays[f"{kind}_{j}"] = rows[order[bounds[j] : bounds[j + 1]]]
    with atomic_path(done) as tmp, open(tmp, "wb") as f:  # written last: marks the shard done
        np.savez(f, **arrays)
    return task.shard


# ── reduce: per partition ───────────────────────────────────────────────────────────────────


def grouped_pairs(rows: np.ndarray) -> np.ndarray:
    """(first, member) record pairs of the rows that share both key columns; first is the group's lowest record."""
    if len(rows) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    rows = rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]
    starts = np.concatenate([[True], (rows[1:, 0] != rows[:-1, 0]) | (rows[1:, 1] != rows[:-1, 1])])
    first = rows[np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0)), 2]
    return np.column_stack([first, rows[:, 2]])[~starts].astype(np.int64)


class SignatureStore:
    """Signatures by record number, read from the per-shard .npy files (memory-mapped: only those asked for).

    Each map holds a file descriptor, so only the `max_open` most recently used stay open: a
    partition's candidates can span more shards than the process may open files.
    """

    def __init__(self, cache: Path, shards: tuple[str, ...], firsts: tuple[int, ...], max_open: int = 64):
        self.files = [cache / "signatures" / f"{shard}.npy" for shard in shards]
        self.firsts = np.asarray(firsts)
        self.max_open = max_open
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()

    def _map(self, shard: int) -> np.ndarray:
        if shard in self._open:
            self._open.move_to_end(shard)
        else:
            if len(self._open) >= self.max_open:
                self._open.popitem(last=False)
            self._open[shard] = np.load(self.files[shard], mmap_mode="r")
        return self._open[shard]

    def rows(self, records: np.ndarray) -> np.ndarray:
        shard = np.searchsorted(self.firsts, records, side="right") - 1  # empty shards share the next one's first
        out = None
        for s in np.unique(shard):
            picked = shard == s
            rows = self._map(s)[records[picked] - self.firsts[s]]
            if out is None:
                out = np.empty((len(records), rows.shape[1]), dtype=rows.dtype)
            out[picked] = rows
        return out


@dataclass(frozen=True)
class PartitionTask:
    cache: Path
    part: int
    shards: tuple[str, ...]
    firsts: tuple[int, ...]
    threshold: float


def reduce_partition(task: PartitionTask) -> tuple[np.ndarray, np.ndarray]:
    """Reduce: the (first, duplicate) edges of one partition, exact and near; cached so a killed run resumes."""
    done = task.cache / "edges" / f"part-{task.part:05d}.npz"
    if not done.exists():
        exact_rows, band_rows = [], []
        for shard in task.shards:  # each map file closed after reading: a corpus has more shards than open files
            with np.load(task.cache / "map" / f"{shard}.npz") as m:
                exact_rows.append(m[f"exact_{task.part}"])
                band_rows.append(m[f"bands_{task.part}"])
        exact = grouped_pairs(np.concatenate(exact_rows))
        candidates = np.unique(grouped_pairs(np.concatenate(band_rows)), axis=0)
        store = SignatureStore(task.cache, task.shards, task.firsts)
        similar = np.zeros(len(candidates), dtype=bool)
        for start in range(0, len(candidates), VERIFY_BATCH):
            pairs = candidates[start : start + VERIFY_BATCH]
            similar[start : start + len(pairs)] = (store.rows(pairs[:, 0]) == store.rows(pairs[:, 1])).mean(axis=1) \
                >= task.threshold
        with atomic_path(done) as tmp, open(tmp, "wb") as f:
            np.savez(f, exact=exact, near=candidates[similar])
    with np.load(done) as edges:
        return edges["exact"], edges["near"]


# ── driver: clusters ────────────────────────────────────────────────────────────────────────


@dataclass
class Clusters:
    dropped: np.ndarray  # record numbers of duplicates, ascending
    exact: np.ndarray  # per dropped record: an exact duplicate (else a near one)
    count: int
    largest: list[np.ndarray]  # record numbers of the largest clusters, each ascending (the first is kept)


def duplicate_clusters(exact: np.ndarray, near: np.ndarray, examples: int = EXAMPLE_CLUSTERS) -> Clusters:
    """Connected components of the duplicate edges; every record but a component's lowest is dropped."""
    from scipy.sparse import coo_matrix  # here, not at the top: the driver needs scipy, workers do not
    from scipy.sparse.csgraph import connected_components

    nodes, ends = np.unique(np.concatenate([exact, near]), return_inverse=True)
    ends = ends.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])), shape=(len(nodes), len(nodes)))
    count, label = connected_components(graph, directed=False)
    root = np.full(count, len(nodes))
    np.minimum.at(root, label, np.arange(len(nodes)))  # nodes ascend, so the root is the lowest record
    dropped = nodes[root[label] != np.arange(len(nodes))]
    sizes = np.bincount(label, minlength=count)
    largest = np.lexsort((root, -sizes))[:examples]
    return Clusters(dropped, np.isin(dropped, exact[:, 1]), count, [nodes[label == c] for c in largest])


# ── the stage ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class KeepTask:
    src: Path
    shard: str
    out: Path
    format: str  # of the output shard
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
    return write_shard(task.out, shard_name_as(task.shard, task.format), kept, task.format, stats)


def _cache_dir(out: Path, key: dict) -> Path:
    """The dir of map/reduce outputs, emptied when they were made with other parameters."""
    cache = out / ".minhash"
    if cache.exists() and (not (cache / "params.json").exists() or read_json(cache / "params.json") != key):
        shutil.rmtree(cache)
    atomic_write_json(cache / "params.json", key)
    return cache


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
    writer = DatasetWriter(out, stage="dedup", params=params.model_dump(), parents=[src],
                           format=params.format or src.format)
    n = len(src)
    bands, rows = lsh_params(params.threshold, params.num_perm)
    partitions = params.partitions or -(-n * bands // ROWS_PER_PARTITION)
    cache = _cache_dir(writer.path, {**params.model_dump(), "partitions": partitions, "tokens": CODE_TOKEN.pattern})
    shards = tuple(s.name for s in src.shards)
    firsts = tuple(int(f) for f in np.cumsum([0] + [s.records for s in src.shards])[:-1])
    run = {"workers": workers, "executor": executor, "address": address}

    sign = [SignatureTask(src.path, shard, first, cache, params, bands, rows, partitions)
            for shard, first in zip(shards, firsts)]
    for _ in map_shards(sign, sign_shard, description="dedup: minhash", **run):
        pass
    reduce = [PartitionTask(cache, part, shards, firsts, params.threshold) for part in range(partitions)]
    edges = list(map_shards(reduce, reduce_partition, description="dedup: buckets", **run))
    clusters = duplicate_clusters(np.concatenate([e[0] for e in edges]), np.concatenate([e[1] for e in edges]))

    done = writer.resumable_shards()
    reasons = np.where(clusters.exact, "exact_duplicate", "near_duplicate")
    keep_tasks = []
    for shard, first, info in zip(shards, firsts, src.shards):
        lo, hi = np.searchsorted(clusters.dropped, [first, first + info.records])
        if shard_name_as(shard, writer.format) not in done:
            drop = {int(r) - first: str(reason) for r, reason in zip(clusters.dropped[lo:hi], reasons[lo:hi])}
            keep_tasks.append(KeepTask(src.path, shard, writer.path, writer.format, drop))
    for _ in map_shards(keep_tasks, write_kept, description="dedup: write", **run):
        pass

    def described(record: int) -> dict:
        s = int(np.searchsorted(firsts, record, side="right")) - 1
        with np.load(cache / "map" / f"{shards[s]}.npz") as m:
            return {"id": str(m["ids"][record - firsts[s]]), "path": str(m["paths"][record - firsts[s]])}

    exact_count = int(clusters.exact.sum())
    near_count = len(clusters.dropped) - exact_count
    summary = DedupSummary(
        records=n,
        kept=n - len(clusters.dropped),
        exact_duplicates=exact_count,
        near_duplicates=near_count,
        clusters=clusters.count,
        lsh={"bands": bands, "rows": rows, "threshold": params.threshold, "shingle": params.shingle,
             "num_perm": params.num_perm, "partitions": partitions},
        example_clusters=[
            [{**described(int(r)), "kept": i == 0} for i, r in enumerate(m[:5])]
            + ([{"more": len(m) - 5}] if len(m) > 5 else [])
            for m in clusters.largest
        ],
    )
    dataset = writer.close({summary.kind: summary.dump()})
    shutil.rmtree(cache, ignore_errors=True)
    console.print(f"dedup: {n} records -> {len(dataset)} kept ({exact_count} exact, "
                  f"{near_count} near duplicates in {clusters.count} clusters)")
    return dataset


def dedup_stage(params: DedupParams, inputs: dict, out: Path, ctx: StageContext) -> DedupSummary:
    if "data" not in inputs:
        raise BadInput("stage dedup needs inputs: {data: <stage or dataset dir>}")
    dataset = dedup(inputs["data"], out, params, workers=ctx.workers, executor=ctx.executor, address=ctx.address)
    return dataset_summary(dataset.manifest)

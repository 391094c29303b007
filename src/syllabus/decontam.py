"""Benchmark decontamination: which training records resemble HumanEval/MBPP problems, by three methods.

The phi-1 paper answered "did the training data leak HumanEval?" three ways, and so does this stage:

- ngram: a record shares a run of `ngram` (13) normalized tokens with a task's prompt + solution.
  Tokens are the words (identifiers, keywords, numbers) of the lower-cased text without `#`
  comments, so whitespace, punctuation, quotes, line breaks and comments do not hide a copy.
  Punctuation is left out because 13 punctuation-heavy tokens (`[1, 2, 3, 4, 5, 6, 7]`) are
  shared by unrelated code; 13 words are the classic (GPT-3) definition. The benchmark's n-grams are hashed once into a sorted array and
  every record's windows are hashed with numpy and looked up in it (a 64-bit polynomial hash over
  token ids; a false hit needs a 64-bit collision).
- embedding: each function of a record (the whole text when it has none) is embedded with a
  `syllabus.embed` embedder and compared with every task's prompt + solution; a cosine similarity
  at or above the cut-off (or an L2 distance at or below it) flags the pair. Catches a reworded
  docstring over the same code, given an embedder that reads meaning: HumanEval/0 with its
  docstring reworded scores cosine 0.92 with `minilm` but 0.75 with `hashing` (the fast default,
  which at 0.9 catches near-verbatim copies only).
- ast: every function of a record and every function of a task's canonical program is reduced to
  the set of hashes of its subtrees with identifiers, literals, docstrings, type annotations and
  load/store context abstracted away (leaves dropped: every function has a `Name`). The score of a pair is the
  Jaccard similarity of the two sets, computed for all pairs at once as a sparse product of binary
  matrices, so renamed variables and reformatting score 1.0. The paper's sweep over τ (0.95 → 0.8)
  reports the fraction of the dataset at or above each τ; `tau` is the one that flags.

Shards are scanned in parallel (`syllabus.scale.map_shards`); each worker builds the benchmark
index once. The report (`report.json`) lists, per benchmark task, the matching records with each
method's score; `prune_out` gets the dataset without flagged records and `split_out` the similar /
non-similar task lists of each benchmark, so pass@k can be reported on each part (Table 3).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from syllabus.codetext import CodeUnit, code_units, code_words, strip_comments, window_hashes
from syllabus.config import Params, StageContext
from syllabus.console import console
from syllabus.data.dataset import Dataset, OutputFormat
from syllabus.data.files import atomic_write_json
from syllabus.errors import BadInput
from syllabus.scale import map_shards, run_step
from syllabus.summaries import DecontamSummary

METHODS = ("ngram", "embedding", "ast")
DEFAULT_TAUS = (0.95, 0.9, 0.85, 0.8)
MAX_MATCHES_PER_TASK = 50  # report size bound: the best-scoring matches of each task are listed

_EMBED_BATCH = 512


class DecontamParams(Params):
    benchmarks: list[str] = Field(["humaneval", "mbpp"], min_length=1)
    ngram: int = Field(13, ge=2)
    embedder: str = "hashing"
    embed_metric: Literal["cosine", "l2"] = "cosine"
    embed_cutoff: float = Field(0.9, description="cosine similarity >= cutoff, or L2 distance <= cutoff, flags")
    taus: list[float] = Field(list(DEFAULT_TAUS), min_length=1)
    tau: float = Field(0.8, gt=0, le=1, description="AST similarity that flags a record")
    ast_min_nodes: int = Field(8, ge=1, description="smaller functions (distinct subtrees) are not AST-compared")
    prune: bool = True
    format: OutputFormat = None


@dataclass(frozen=True)
class Task:
    benchmark: str
    task_id: str
    program: str  # prompt + canonical solution: what a contaminated record would contain


def benchmark_tasks(names: Sequence[str]) -> list[Task]:
    from syllabus.benchmarks import load_benchmark

    tasks = []
    for name in names:
        label = Path(name).stem if Path(name).suffix else name
        tasks += [Task(label, str(p.task_id), p.prompt + p.canonical_solution) for p in load_benchmark(name)]
    if not tasks:
        raise BadInput("benchmark has no problems", file=", ".join(names))
    return tasks


# ── normalization shared by records and tasks ───────────────────────────────────────────────


def ngram_tokens(text: str) -> list[str]:
    return code_words(strip_comments(text.lower()))


def _known_windows(ids: np.ndarray, n: int) -> np.ndarray:
    """Window hash of every n token ids; windows holding an unknown id (< 0) hash to 0."""
    hashes = window_hashes(ids, n)
    hashes[_any_in_window(ids < 0, n)] = 0
    return hashes


def _any_in_window(flags: np.ndarray, n: int) -> np.ndarray:
    inside = np.concatenate([[0], np.cumsum(flags)])
    return (inside[n:] - inside[:-n]) > 0


def _all_in_window(flags: np.ndarray, n: int) -> np.ndarray:
    """Windows made only of literal tokens: runs of numbers or letters (`0 1 2 ... a b c`) are data, not code."""
    return ~_any_in_window(~flags, n)


# ── the benchmark index (built once per worker) ─────────────────────────────────────────────


@dataclass
class BenchmarkIndex:
    vocab: dict[str, int]
    ngram_hashes: np.ndarray  # sorted unique u64
    ngram_tasks: dict[int, set[int]]
    ngram_counts: np.ndarray  # distinct n-grams per task
    shape_vocab: dict[int, int]
    shapes: sp.csr_matrix  # [benchmark functions, shape vocab] binary
    shape_sizes: np.ndarray
    shape_task: np.ndarray  # benchmark function -> task index


def build_index(tasks: Sequence[Task], ngram: int, ast_min_nodes: int) -> BenchmarkIndex:
    vocab: dict[str, int] = {}
    ngram_tasks: dict[int, set[int]] = defaultdict(set)
    counts = np.zeros(len(tasks), dtype=np.int64)
    shape_vocab: dict[int, int] = {}
    rows, sizes, owners = [], [], []
    for t, task in enumerate(tasks):
        tokens = ngram_tokens(task.program)
        ids = np.array([vocab.setdefault(tok, len(vocab)) for tok in tokens], dtype=np.int64)
        literal = np.array([tok.isdigit() or len(tok) == 1 for tok in tokens], dtype=bool)
        hashes = _known_windows(ids, ngram)
        hashes = set(hashes[~_all_in_window(literal, ngram)].tolist()) - {0}
        counts[t] = len(hashes)
        for h in hashes:
            ngram_tasks[h].add(t)
        for unit in code_units(task.program):
            if unit.shape is not None and len(unit.shape) >= ast_min_nodes:
                rows.append([shape_vocab.setdefault(h, len(shape_vocab)) for h in unit.shape])
                sizes.append(len(unit.shape))
                owners.append(t)
    return BenchmarkIndex(
        vocab=vocab,
        ngram_hashes=np.array(sorted(ngram_tasks), dtype=np.uint64),
        ngram_tasks=dict(ngram_tasks),
        ngram_counts=counts,
        shape_vocab=shape_vocab,
        shapes=_binary_rows(rows, len(shape_vocab)),
        shape_sizes=np.array(sizes, dtype=np.int64),
        shape_task=np.array(owners, dtype=np.int64),
    )


def _binary_rows(rows: list[list[int]], width: int) -> sp.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.array([c for r in rows for c in r], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), width))


# ── scanning one shard ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ScanTask:
    src: Path
    shard: str
    tasks: tuple[Task, ...]
    params: DecontamParams
    task_vectors: np.ndarray  # [tasks, dim] embeddings of the task programs


@dataclass
class ShardScan:
    shard: str
    records: int
    # (position, record id, path, task index, method, score)
    matches: list[tuple[int, str, str, int, str, float]] = field(default_factory=list)
    seconds: Counter = field(default_factory=Counter)


@lru_cache(maxsize=2)
def _cached_index(tasks: tuple[Task, ...], ngram: int, ast_min_nodes: int) -> BenchmarkIndex:
    return build_index(tasks, ngram, ast_min_nodes)


@lru_cache(maxsize=2)
def _cached_embedder(spec: str):
    from syllabus.embed import get_embedder

    return get_embedder(spec)


def scan_shard(task: ScanTask) -> ShardScan:
    params = task.params
    index = _cached_index(task.tasks, params.ngram, params.ast_min_nodes)
    records = list(Dataset(task.src).read_shard(task.shard))
    scan = ShardScan(task.shard, len(records))

    def add(position: int, t: int, method: str, score: float) -> None:
        r = records[position]
        scan.matches.append((position, str(r.get("id", "")), str(r.get("path", "")), t, method, round(float(score), 4)))

    started = time.perf_counter()
    for position, record in enumerate(records):
        for t, score in _ngram_matches(record["text"], index, params.ngram).items():
            add(position, t, "ngram", score)
    scan.seconds["ngram"] += time.perf_counter() - started

    started = time.perf_counter()
    units = [(p, u) for p, r in enumerate(records) for u in code_units(r["text"])]
    scan.seconds["parse"] += time.perf_counter() - started

    started = time.perf_counter()
    for (position, t), score in _ast_matches(units, index, min(params.taus)).items():
        add(position, t, "ast", score)
    scan.seconds["ast"] += time.perf_counter() - started

    started = time.perf_counter()
    for (position, t), score in _embedding_matches(units, task.task_vectors, params).items():
        add(position, t, "embedding", score)
    scan.seconds["embedding"] += time.perf_counter() - started
    return scan


def _ngram_matches(text: str, index: BenchmarkIndex, n: int) -> dict[int, float]:
    """task -> fraction of the task's n-grams that occur in text."""
    ids = np.array([index.vocab.get(tok, -1) for tok in ngram_tokens(text)], dtype=np.int64)
    hashes = _known_windows(ids, n)
    if len(index.ngram_hashes) == 0:
        return {}
    found = np.minimum(np.searchsorted(index.ngram_hashes, hashes), len(index.ngram_hashes) - 1)
    hits = np.unique(hashes[index.ngram_hashes[found] == hashes])
    shared: Counter = Counter()
    for h in hits.tolist():
        shared.update(index.ngram_tasks[h])
    return {t: k / index.ngram_counts[t] for t, k in shared.items()}


def _ast_matches(units: list[tuple[int, CodeUnit]], index: BenchmarkIndex, min_score: float) -> dict[tuple[int, int], float]:
    """(record position, task) -> best Jaccard of their functions' shapes, where >= min_score."""
    functions = [(p, u.shape) for p, u in units if u.shape is not None]
    if not functions or index.shapes.shape[0] == 0:
        return {}
    rows = [[index.shape_vocab[h] for h in shape if h in index.shape_vocab] for _, shape in functions]
    sizes = np.array([len(shape) for _, shape in functions], dtype=np.float64)
    shared = (_binary_rows(rows, len(index.shape_vocab)) @ index.shapes.T).tocoo()
    jaccard = shared.data / (sizes[shared.row] + index.shape_sizes[shared.col] - shared.data)
    hit = jaccard >= min_score
    best: dict[tuple[int, int], float] = {}
    for i, j, score in zip(shared.row[hit].tolist(), shared.col[hit].tolist(), jaccard[hit].tolist()):
        key = (functions[i][0], int(index.shape_task[j]))
        best[key] = max(best.get(key, 0.0), score)
    return best


def _embedding_matches(units: list[tuple[int, CodeUnit]], task_vectors: np.ndarray,
                       params: DecontamParams) -> dict[tuple[int, int], float]:
    """(record position, task) -> best similarity (cosine) or smallest distance (L2) past the cut-off."""
    embedder = _cached_embedder(params.embedder)
    best: dict[tuple[int, int], float] = {}
    for start in range(0, len(units), _EMBED_BATCH):
        batch = units[start : start + _EMBED_BATCH]
        vectors = embedder.embed([u.source for _, u in batch])
        if params.embed_metric == "cosine":
            scores = _normalized(vectors) @ _normalized(task_vectors).T
            hit = scores >= params.embed_cutoff
        else:
            scores = np.sqrt(np.maximum(
                (vectors**2).sum(1)[:, None] + (task_vectors**2).sum(1)[None, :] - 2 * vectors @ task_vectors.T, 0))
            hit = scores <= params.embed_cutoff
        for i, t in zip(*np.nonzero(hit)):
            key, score = (batch[i][0], int(t)), float(scores[i, t])
            if key not in best or (score > best[key] if params.embed_metric == "cosine" else score < best[key]):
                best[key] = score
    return best


def _normalized(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ── the report ──────────────────────────────────────────────────────────────────────────────


class DropIds:
    """Step that drops records whose id is in `ids` (the prune)."""

    name = "decontam"

    def __init__(self, ids: set[str]):
        self.ids = ids

    def run(self, records: Iterable[dict], stats: Counter) -> Iterator[dict]:
        for record in records:
            if record.get("id") in self.ids:
                stats["dropped_contaminated"] += 1
            else:
                yield record


def decontaminate(
    data: str | Path,
    benchmarks: Sequence[str] | None = None,
    *,
    params: DecontamParams | None = None,
    report_dir: str | Path | None = None,
    prune_out: str | Path | None = None,
    split_out: str | Path | None = None,
    tasks: Sequence[Task] | None = None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Scan dataset `data` against benchmarks; write report.json, the pruned dataset and the splits.

    `tasks` replaces loading `benchmarks` by name (tests and callers with their own problems).
    """
    params = params or DecontamParams()
    if benchmarks is not None:
        params = params.model_copy(update={"benchmarks": list(benchmarks)})
    started = time.perf_counter()
    src = Dataset(data)
    if len(src) == 0:
        raise BadInput("dataset is empty: nothing to decontaminate", file=src.path)
    tasks = tuple(tasks if tasks is not None else benchmark_tasks(params.benchmarks))
    embed_started = time.perf_counter()
    task_vectors = _cached_embedder(params.embedder).embed([t.program for t in tasks])
    seconds: Counter = Counter({"embedding": time.perf_counter() - embed_started})

    scans = list(map_shards([ScanTask(src.path, s.name, tasks, params, task_vectors) for s in src.shards], scan_shard,
                            workers=workers, executor=executor, address=address, description="decontam"))
    for scan in scans:
        seconds.update(scan.seconds)
    report, flagged_ids = _report(src, tasks, params, scans)
    report["seconds"] = {"wall": round(time.perf_counter() - started, 2),
                         **{k: round(v, 2) for k, v in sorted(seconds.items())}}

    if split_out is not None:
        for name, split in report["split"].items():
            atomic_write_json(Path(split_out) / f"{name}.json", {"benchmark": name, "tau": params.tau, **split})
    if prune_out is not None:
        pruned = run_step(DropIds(flagged_ids), src, prune_out, params=params.model_dump(), workers=workers,
                          executor=executor, address=address, format=params.format)
        report["pruned"] = {"path": str(pruned.path), "records": len(pruned)}
    if report_dir is not None:
        atomic_write_json(Path(report_dir) / "report.json", report)
    print_report(report)
    return report


def _report(src: Dataset, tasks: Sequence[Task], params: DecontamParams,
            scans: list[ShardScan]) -> tuple[dict[str, Any], set[str]]:
    """The report, and the ids of the records flagged at params.tau."""
    # (shard, position) -> task -> {"method": score}
    found: dict[tuple[str, int], dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    about: dict[tuple[str, int], tuple[str, str]] = {}
    for scan in scans:
        for position, rid, path, t, method, score in scan.matches:
            found[(scan.shard, position)][t][method] = score
            about[(scan.shard, position)] = (rid, path)

    def flags(scores: dict[str, float], tau: float) -> bool:
        return "ngram" in scores or "embedding" in scores or scores.get("ast", 0.0) >= tau

    n = len(src)
    by_task: dict[int, list[dict]] = defaultdict(list)
    flagged_records, by_method = set(), Counter()
    for key, per_task in found.items():
        rid, path = about[key]
        for t, scores in per_task.items():
            flagged = flags(scores, params.tau)
            by_task[t].append({"id": rid, "path": path, "shard": key[0], "position": key[1], "flagged": flagged,
                               "methods": scores})
            if flagged:
                flagged_records.add(key)
        methods = {m for s in per_task.values() for m in s if m != "ast" or s[m] >= params.tau}
        by_method.update(methods)

    sweep = []
    for tau in sorted(params.taus, reverse=True):
        ast_records = {k for k, per_task in found.items() if any(s.get("ast", 0) >= tau for s in per_task.values())}
        any_records = {k for k, per_task in found.items() if any(flags(s, tau) for s in per_task.values())}
        similar = {t for per_task in found.values() for t, s in per_task.items() if flags(s, tau)}
        sweep.append({"tau": tau, "ast_records": len(ast_records), "ast_fraction": len(ast_records) / n,
                      "flagged_records": len(any_records), "flagged_fraction": len(any_records) / n,
                      "similar_tasks": len(similar)})

    task_report, split = {}, {}
    for t, task in enumerate(tasks):
        matches = sorted(by_task.get(t, []), key=lambda m: (-m["flagged"], -max(m["methods"].values())))
        task_report[f"{task.benchmark}:{task.task_id}"] = {
            "benchmark": task.benchmark, "task_id": task.task_id, "similar": any(m["flagged"] for m in matches),
            "n_matches": len(matches), "matches": matches[:MAX_MATCHES_PER_TASK]}
        part = split.setdefault(task.benchmark, {"similar": [], "non_similar": []})
        part["similar" if task_report[f"{task.benchmark}:{task.task_id}"]["similar"] else "non_similar"].append(task.task_id)

    return {
        "data": str(src.path),
        "records": n,
        "benchmarks": dict(Counter(t.benchmark for t in tasks)),
        "params": params.model_dump(),
        "flagged_records": len(flagged_records),
        "flagged_fraction": len(flagged_records) / n,
        "by_method": {m: by_method[m] for m in METHODS},
        "tau_sweep": sweep,
        "split": split,
        "tasks": task_report,
    }, {about[k][0] for k in flagged_records}


def print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    sweep = Table(title=f"decontamination of {report['data']} ({report['records']} records)")
    for column in ("τ", "AST ≥ τ records", "fraction", "flagged (any method)", "fraction", "similar tasks"):
        sweep.add_column(column, justify="right")
    for row in report["tau_sweep"]:
        sweep.add_row(f"{row['tau']:.2f}", str(row["ast_records"]), f"{row['ast_fraction']:.2%}",
                      str(row["flagged_records"]), f"{row['flagged_fraction']:.2%}", str(row["similar_tasks"]))
    console.print(sweep)
    split = ", ".join(f"{b}: {len(s['similar'])} similar / {len(s['non_similar'])} non-similar"
                      for b, s in report["split"].items())
    methods = ", ".join(f"{m} {n}" for m, n in report["by_method"].items())
    cost = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    console.print(f"records flagged per method: {methods}\n{split}\ntime: {cost}")


def decontam_stage(params: DecontamParams, inputs: dict, out: Path, ctx: StageContext) -> DecontamSummary:
    """Recipe stage: `out` is the pruned dataset (when params.prune) with report.json and split/ inside it."""
    if "data" not in inputs:
        raise BadInput("stage decontam needs inputs: {data: <stage or dataset dir>}")
    report = decontaminate(inputs["data"], params=params, report_dir=out, prune_out=out if params.prune else None,
                           split_out=Path(out) / "split", workers=ctx.workers, executor=ctx.executor,
                           address=ctx.address)
    split = report["split"]
    return DecontamSummary(
        records=report["records"], flagged_records=report["flagged_records"],
        flagged_fraction=report["flagged_fraction"], tau=params.tau,
        kept=report["pruned"]["records"] if "pruned" in report else None, by_method=report["by_method"],
        tau_sweep=report["tau_sweep"], tasks=report["benchmarks"],
        similar_tasks={b: len(s["similar"]) for b, s in split.items()},
        similar_task_ids={b: s["similar"] for b, s in split.items()}, seconds=report["seconds"])

"""Build the raw code corpus: `.py` trees, git checkouts, JSONL and Parquet files (The Stack's layout).

Every source is read as a stream of candidate files; files that are not UTF-8, look binary, are
empty or exceed the size limit are skipped and counted, never fatal. Each record keeps where it
came from: `path`, `repo`, `license` (an SPDX expression or "unknown", see data/licenses.py) and
the `source` argument it was found under.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sysconfig
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from syllabus.config import Params, StageContext
from syllabus.data.dataset import Dataset, DatasetWriter, OutputFormat, record_id, remove_shard, write_shard
from syllabus.data.files import installed_package_roots, iter_jsonl
from syllabus.data.licenses import UNKNOWN, tree_licenses
from syllabus.errors import BadInput
from syllabus.scale import map_shards
from syllabus.summaries import IngestSummary, dataset_summary

# named sources available offline on every machine
NAMED_SOURCES = {
    "stdlib": lambda: Path(sysconfig.get_paths()["stdlib"]),
    "site-packages": lambda: Path(sysconfig.get_paths()["purelib"]),
}
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".tox", ".mypy_cache", "site-packages"}
TEXT_COLUMNS = ("content", "text")
# The Stack's provenance columns, first match wins
PATH_COLUMNS = ("max_stars_repo_path", "path", "max_forks_repo_path", "max_issues_repo_path")
REPO_COLUMNS = ("max_stars_repo_name", "repo_name", "repo", "max_forks_repo_name")
LICENSE_COLUMNS = ("max_stars_repo_licenses", "license", "licenses")


class IngestParams(Params):
    sources: list[str] = Field(min_length=1)
    max_bytes: int = Field(1_000_000, ge=1)
    min_bytes: int = Field(1, ge=0)
    max_files: int | None = Field(None, ge=1)
    records_per_shard: int = Field(2_000, ge=1)
    extensions: list[str] = [".py"]
    format: OutputFormat = None
    # JSONL files whose `text` fields must stay out of the corpus (e.g. the labelled snippets an
    # embedder pretrained on it is evaluated on): a file containing one of them verbatim is skipped
    exclude: list[Path] = []
    # glob patterns on a file's path relative to its source dir (`test/*`, `pydoc_data/*`): data held
    # out of this corpus, e.g. because another stage turns it into textbook text or a held-out set
    exclude_paths: list[str] = []


class Candidate:
    """One file-like thing to ingest: bytes (or text) plus provenance."""

    __slots__ = ("data", "path", "repo", "license")

    def __init__(self, data: bytes | str, path: str, repo: str = "", license: str = ""):
        self.data, self.path, self.repo, self.license = data, path, repo, license


def decode_code(data: bytes | str) -> tuple[str | None, str | None]:
    """(text, None) for usable source text, else (None, skip reason)."""
    if isinstance(data, str):
        text = data
    else:
        if b"\x00" in data[:8192]:
            return None, "skipped_binary"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, "skipped_not_utf8"
    if "\x00" in text:
        return None, "skipped_binary"
    if not text.strip():
        return None, "skipped_empty"
    return text, None


def _git_files(root: Path) -> list[Path] | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [root / p for p in out.stdout.decode("utf-8", "replace").split("\0") if p]


def _git_remote(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True)
    except OSError:
        return root.name
    return out.stdout.strip() or root.name


def _walk_py(root: Path, extensions: tuple[str, ...]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(extensions):
                yield Path(dirpath) / name


@dataclass(frozen=True)
class Unit:
    """A group of candidates that becomes one output shard: some files of one tree, or one table file."""

    source: str  # the argument it was found under
    files: tuple[Path, ...] = ()
    root: Path | None = None  # record paths are relative to it
    repo: str = ""
    licenses: tuple[str, ...] = ()  # of each file
    table: Path | None = None


def _directory_units(source: str, root: Path, params: IngestParams) -> list[Unit]:
    extensions = tuple(params.extensions)
    is_git = (root / ".git").exists()
    files = _git_files(root) if is_git else None
    paths = [p for p in files if p.name.endswith(extensions)] if files is not None else list(_walk_py(root, extensions))
    paths = [p for p in paths if not any(fnmatch.fnmatch(str(p.relative_to(root)), pattern) for pattern in params.exclude_paths)]
    repo = _git_remote(root) if is_git else root.name
    license_of = tree_licenses(root)
    licenses = [license_of(path.relative_to(root).as_posix()) for path in paths]
    size = params.records_per_shard
    return [Unit(source, tuple(paths[i : i + size]), root, repo, tuple(licenses[i : i + size]))
            for i in range(0, len(paths), size)]


def plan_units(params: IngestParams) -> list[Unit]:
    """Every source split into units, in source order: the same plan whatever runs it."""
    units = []
    for source in params.sources:
        if source.startswith("package:"):  # an installed package's source, e.g. a held-out set
            for root in installed_package_roots(source.removeprefix("package:")):
                units += _directory_units(source, root, params) if root.is_dir() else [Unit(source, (root,), root.parent)]
            continue
        path = NAMED_SOURCES[source]() if source in NAMED_SOURCES else Path(source)
        if not path.exists():
            raise BadInput("no such file or directory", file=path)
        if path.is_dir():
            units += _directory_units(source, path, params)
        elif path.suffix in (".jsonl", ".parquet"):
            units.append(Unit(source, table=path))
        elif path.name.endswith(tuple(params.extensions)):
            units.append(Unit(source, (path,), path.parent, licenses=(tree_licenses(path.parent)(path.name),)))
        else:
            raise BadInput("expected a directory, a .py file, or a .jsonl/.parquet file", file=path)
    return units


def _file_candidates(unit: Unit, params: IngestParams, stats: Counter) -> Iterator[Candidate]:
    for path, license in zip(unit.files, unit.licenses):
        try:
            size = path.stat().st_size
            if size > params.max_bytes:
                stats["skipped_too_large"] += 1
                continue
            data = path.read_bytes()
        except OSError:
            stats["skipped_unreadable"] += 1
            continue
        yield Candidate(data, str(path.relative_to(unit.root)), unit.repo, license)


def _first(row: dict, columns: tuple[str, ...]) -> str:
    for column in columns:
        value = row.get(column)
        if value:
            return ",".join(value) if isinstance(value, list) else str(value)
    return ""


def _table_candidates(path: Path) -> Iterator[Candidate]:
    """Rows of a JSONL or Parquet file with a `content` or `text` column."""
    if path.suffix == ".parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise BadInput(f"unreadable Parquet ({e})", file=path) from None
        columns = parquet.schema_arrow.names
        text_column = next((c for c in TEXT_COLUMNS if c in columns), None)
        if text_column is None:
            raise BadInput(f"no 'content' or 'text' column (columns: {', '.join(columns)})", file=path)
        for batch in parquet.iter_batches(batch_size=512):
            for row in batch.to_pylist():
                yield _row_candidate(row, text_column, path)
        return
    for lineno, row in iter_jsonl(path):
        text_column = next((c for c in TEXT_COLUMNS if c in row), None)
        if text_column is None:
            raise BadInput("record has no 'content' or 'text' field", file=path, record=f"line {lineno}")
        yield _row_candidate(row, text_column, path)


def _row_candidate(row: dict, text_column: str, file: Path) -> Candidate:
    value = row[text_column]
    data = value if isinstance(value, (str, bytes)) else json.dumps(value)
    return Candidate(data, _first(row, PATH_COLUMNS) or file.name, _first(row, REPO_COLUMNS),
                     _first(row, LICENSE_COLUMNS) or UNKNOWN)


class ExcludedTexts:
    """Finds whether a file contains any of many snippets without one substring search per snippet:
    each snippet is indexed by its longest line, and only files holding such a line are searched."""

    def __init__(self, texts: list[str]):
        self.by_anchor: dict[str, list[str]] = defaultdict(list)
        for text in texts:
            lines = [line.strip() for line in text.strip().splitlines()]
            if lines and max(lines, key=len):
                self.by_anchor[max(lines, key=len)].append(text.strip())

    def found_in(self, text: str) -> bool:
        return any(snippet in text for line in {line.strip() for line in text.splitlines()} & self.by_anchor.keys()
                   for snippet in self.by_anchor[line])


@cache
def excluded_texts(paths: tuple[Path, ...]) -> ExcludedTexts:
    texts = []
    for path in paths:
        for lineno, row in iter_jsonl(path):
            if not isinstance(row.get("text"), str):
                raise BadInput("expected a 'text' field (a snippet to keep out of the corpus)", file=path,
                               record=f"line {lineno}")
            texts.append(row["text"])
    return ExcludedTexts(texts)


@dataclass(frozen=True)
class IngestTask:
    unit: Unit
    params: IngestParams
    out: Path
    shard: str
    limit: int | None  # stop after this many records


def ingest_unit(task: IngestTask) -> tuple[str, int, Counter]:
    """Read one unit into one shard (none when nothing in it is kept); returns (shard, records, stats)."""
    stats: Counter = Counter()
    licenses: Counter = Counter()
    candidates = _table_candidates(task.unit.table) if task.unit.table else \
        _file_candidates(task.unit, task.params, stats)
    excluded = excluded_texts(tuple(task.params.exclude)) if task.params.exclude else None

    def records() -> Iterator[dict]:
        kept = 0
        for candidate in candidates:
            stats["total"] += 1
            text, skip = decode_code(candidate.data)
            size = len(text.encode("utf-8", "surrogatepass")) if skip is None else 0
            if skip is None and size > task.params.max_bytes:  # table rows have no file size to check first
                skip = "skipped_too_large"
            if skip is None and size < task.params.min_bytes:
                skip = "skipped_too_small"
            if skip is None and excluded is not None and excluded.found_in(text):
                skip = "skipped_excluded"
            if skip:
                stats[skip] += 1
                continue
            stats["kept_bytes"] += size
            licenses[candidate.license] += 1
            yield {"id": record_id(text), "text": text, "path": candidate.path, "repo": candidate.repo,
                   "license": candidate.license, "source": task.unit.source, "lang": "python"}
            kept += 1
            if task.limit is not None and kept >= task.limit:
                return

    info = write_shard(task.out, task.shard, records(), task.params.format or "jsonl.zst", stats, licenses)
    if info.records == 0:
        remove_shard(task.out, task.shard)
    return task.shard, info.records, stats


def ingest(
    params: IngestParams,
    out: str | Path,
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> Dataset:
    """Read every source into the dataset dir `out`, unit i into shard i; returns the finished dataset.

    The output depends only on the sources and params, not on the executor or the number of workers.
    A re-run with the same params after a kill keeps the shards already written.
    With `max_files`, units run in waves of `workers` until enough records are kept, and the unit
    that passes the limit is read again up to it, so the dataset is the first `max_files` records.
    """
    units = plan_units(params)
    for path in params.exclude:
        if not path.is_file():
            raise BadInput("exclude: no such file", file=path)
    writer = DatasetWriter(out, stage="data.ingest", params=params.model_dump(), format=params.format or "jsonl.zst",
                           records_per_shard=params.records_per_shard)
    done = {name: (info.records, Counter(info.stats)) for name, info in writer.resumable_shards().items()}
    stats: Counter = Counter(total=0, kept=0, kept_bytes=0)
    wanted = params.max_files
    wave = len(units) if wanted is None else max(workers, 1)
    for start in range(0, len(units), max(wave, 1)):
        if wanted is not None and stats["kept"] >= wanted:
            break
        limit = None if wanted is None else wanted - stats["kept"]
        tasks = [IngestTask(unit, params, writer.path, writer.shard_name(start + i), limit)
                 for i, unit in enumerate(units[start : start + wave])]
        done.update({shard: (n, unit_stats) for shard, n, unit_stats in map_shards(
            [task for task in tasks if task.shard not in done], ingest_unit, workers=workers, executor=executor,
            address=address, description="ingest")})
        for task in tasks:  # in unit order
            n, unit_stats = done[task.shard]
            if wanted is not None and stats["kept"] >= wanted:
                remove_shard(writer.path, task.shard)
                continue
            if wanted is not None and stats["kept"] + n > wanted:
                _, n, unit_stats = ingest_unit(replace(task, limit=wanted - stats["kept"]))
            stats.update(unit_stats)
            stats["kept"] += n
    return writer.close(summary={IngestSummary.kind: IngestSummary(**stats).dump()})


def ingest_stage(params: IngestParams, inputs: dict, out: Path, ctx: StageContext) -> IngestSummary:
    dataset = ingest(params, out, workers=ctx.workers, executor=ctx.executor, address=ctx.address)
    return dataset_summary(dataset.manifest)

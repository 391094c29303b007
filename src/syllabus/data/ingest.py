"""Build the raw code corpus: `.py` trees, git checkouts, JSONL and Parquet files (The Stack's layout).

Every source is read as a stream of candidate files; files that are not UTF-8, look binary, are
empty or exceed the size limit are skipped and counted, never fatal. Each record keeps where it
came from: `path`, `repo`, `license` and the `source` argument it was found under.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from syllabus.config import Params, StageContext
from syllabus.console import progress_bar
from syllabus.data.dataset import Dataset, DatasetWriter, record_id
from syllabus.data.files import iter_jsonl
from syllabus.errors import BadInput

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
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "LICENCE")


class IngestParams(Params):
    sources: list[str] = Field(min_length=1)
    max_bytes: int = Field(1_000_000, ge=1)
    min_bytes: int = Field(1, ge=0)
    max_files: int | None = Field(None, ge=1)
    records_per_shard: int = Field(2_000, ge=1)
    extensions: list[str] = [".py"]


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


def _license_of(root: Path) -> str:
    for name in LICENSE_FILES:
        path = root / name
        if path.is_file():
            head = path.read_text(encoding="utf-8", errors="replace")[:400]
            first = next((line.strip() for line in head.splitlines() if line.strip()), "")
            return first[:80]
    return ""


def _walk_py(root: Path, extensions: tuple[str, ...]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(extensions):
                yield Path(dirpath) / name


def _directory_candidates(root: Path, params: IngestParams, stats: Counter) -> Iterator[Candidate]:
    extensions = tuple(params.extensions)
    is_git = (root / ".git").exists()
    files = _git_files(root) if is_git else None
    paths = [p for p in files if p.name.endswith(extensions)] if files is not None else _walk_py(root, extensions)
    repo = _git_remote(root) if is_git else root.name
    license = _license_of(root)
    for path in paths:
        try:
            size = path.stat().st_size
            if size > params.max_bytes:
                stats["skipped_too_large"] += 1
                continue
            data = path.read_bytes()
        except OSError:
            stats["skipped_unreadable"] += 1
            continue
        yield Candidate(data, str(path.relative_to(root)), repo, license)


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
    return Candidate(data, _first(row, PATH_COLUMNS) or file.name, _first(row, REPO_COLUMNS), _first(row, LICENSE_COLUMNS))


def _candidates(source: str, params: IngestParams, stats: Counter) -> Iterator[Candidate]:
    if source in NAMED_SOURCES:
        root = NAMED_SOURCES[source]()
        yield from _directory_candidates(root, params, stats)
        return
    path = Path(source)
    if not path.exists():
        raise BadInput("no such file or directory", file=path)
    if path.is_dir():
        yield from _directory_candidates(path, params, stats)
    elif path.suffix in (".jsonl", ".parquet"):
        yield from _table_candidates(path)
    elif path.name.endswith(tuple(params.extensions)):
        yield Candidate(path.read_bytes(), path.name, "", "")
    else:
        raise BadInput("expected a directory, a .py file, or a .jsonl/.parquet file", file=path)


def ingest(params: IngestParams, out: str | Path) -> Dataset:
    """Read every source into the dataset dir `out`; returns the finished dataset."""
    for source in params.sources:  # fail on a missing path before any work
        if source not in NAMED_SOURCES and not Path(source).exists():
            raise BadInput("no such file or directory", file=source)
    stats: Counter = Counter()
    writer = DatasetWriter(out, stage="data.ingest", params=params.model_dump(), records_per_shard=params.records_per_shard)
    for stale in writer.done_shards():  # ingest is cheap: restart from scratch rather than resume
        (writer.path / stale).unlink()
        (writer.path / f"{stale}.json").unlink()
    kept = 0
    with progress_bar() as bar:
        task = bar.add_task("ingest", total=params.max_files, status="")
        for source in params.sources:
            for candidate in _candidates(source, params, stats):
                stats["total"] += 1
                text, skip = decode_code(candidate.data)
                size = len(text.encode("utf-8", "surrogatepass")) if skip is None else 0
                if skip is None and size > params.max_bytes:  # table rows have no file size to check first
                    skip = "skipped_too_large"
                if skip is None and size < params.min_bytes:
                    skip = "skipped_too_small"
                if skip:
                    stats[skip] += 1
                    continue
                writer.write({"id": record_id(text), "text": text, "path": candidate.path, "repo": candidate.repo,
                              "license": candidate.license, "source": source, "lang": "python"})
                kept += 1
                stats["kept_bytes"] += size
                bar.update(task, advance=1, status=f"{kept} files")
                if params.max_files is not None and kept >= params.max_files:
                    break
            if params.max_files is not None and kept >= params.max_files:
                break
    stats["kept"] = kept
    return writer.close(summary={"ingest": dict(stats)})


def ingest_stage(params: IngestParams, inputs: dict, out: Path, ctx: StageContext) -> dict:
    dataset = ingest(params, out)
    return {"records": len(dataset), "bytes": dataset.manifest["bytes"], **dataset.manifest["summary"]["ingest"]}

"""Dataset directories: shards of records plus a manifest that says how they were made.

Layout of a dataset dir (a ready Hugging Face dataset repo: `datasets.load_dataset(DIR)` reads it):

    manifest.json               written last: its presence means the dataset is complete
    README.md                   dataset card: its YAML names the shards as the data files (data/card.py)
    shard-00000.jsonl.zst       (or .parquet) one shard of records, written atomically
    .shard-00000.jsonl.zst.json sidecar: records, bytes, sha256 and step stats of that shard
    .params.json                stage and params of the run that wrote the shards

A stage that is killed leaves finished shards and their sidecars behind but no manifest, so a
re-run can skip the finished shards (`DatasetWriter.done_shards`) and nothing half-written is ever
read as complete. Every record is a dict with at least `id` and `text`. Sidecars are hidden files,
which `load_dataset` never reads as data.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from pydantic import Field

from syllabus.data.card import render_card
from syllabus.data.files import atomic_path, atomic_write_json, atomic_write_text, read_json, sha256_file
from syllabus.errors import BadInput

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CARD = "README.md"
RUN_PARAMS = ".params.json"  # the params of the run that wrote the shards, written before them
FORMATS = {"jsonl.zst", "parquet"}
# the `format` param of every stage that writes a dataset dir (None: its input's format, or jsonl.zst)
OutputFormat = Annotated[Literal["jsonl.zst", "parquet"] | None,
                         Field(description="shard format of the output: jsonl.zst or parquet")]
_READ_BATCH = 1024


def record_id(text: str) -> str:
    """Stable id of a text: the first 16 hex digits of its sha1 (the edu_labels convention)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class ShardInfo:
    name: str
    records: int
    bytes: int
    sha256: str
    stats: dict[str, int] = field(default_factory=dict)
    licenses: dict[str, int] = field(default_factory=dict)  # records per declared license, where a stage knows it


class _HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._f.write(b)
        self.sha256.update(b)
        self.size += len(b)
        return len(b)


def _write_shard_file(path: Path, records: Iterable[dict], fmt: str) -> tuple[int, int, str]:
    """Write records to `path` atomically; returns (records, bytes, sha256)."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        out = _HashingFile(raw)
        if fmt == "jsonl.zst":
            with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as z:
                for record in records:
                    z.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass"))
                    n += 1
        else:
            rows = list(records)
            n = len(rows)
            table = pa.Table.from_pylist(rows) if rows else pa.table({"id": pa.array([], pa.string())})
            pq.write_table(table, out, compression="zstd")
    return n, out.size, out.sha256.hexdigest()


def shard_name_as(name: str, format: str) -> str:
    """The name of shard `name` (shard-00003.jsonl.zst) written in another format (shard-00003.parquet)."""
    return f"{name.split('.', 1)[0]}.{format}"


def sidecar_path(dataset_dir: Path, name: str) -> Path:
    return Path(dataset_dir) / f".{name}.json"


def write_shard(
    dataset_dir: Path, name: str, records: Iterable[dict], format: str, stats: dict[str, int] | None = None,
    licenses: dict[str, int] | None = None,
) -> ShardInfo:
    """Write one finished shard and its sidecar; safe to call from worker processes. `stats` and
    `licenses` may be counters that `records` fills as it is consumed."""
    n, size, sha = _write_shard_file(Path(dataset_dir) / name, records, format)
    info = ShardInfo(name=name, records=n, bytes=size, sha256=sha, stats=dict(stats or {}),
                     licenses=dict(licenses or {}))
    atomic_write_json(sidecar_path(dataset_dir, name), asdict(info))
    return info


def remove_shard(dataset_dir: Path, name: str) -> None:
    (dataset_dir / name).unlink(missing_ok=True)
    sidecar_path(dataset_dir, name).unlink(missing_ok=True)


def _read_shard_file(path: Path, fmt: str) -> Iterator[dict]:
    if fmt == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise BadInput(f"unreadable Parquet shard ({e})", file=path) from None
        for batch in parquet.iter_batches(batch_size=_READ_BATCH):
            yield from batch.to_pylist()
        return
    with open(path, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        lines = io.TextIOWrapper(reader, encoding="utf-8", errors="surrogateescape")
        try:
            for lineno, line in enumerate(lines, 1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise BadInput(f"not valid JSON ({e.msg})", file=path, record=f"line {lineno}") from None
        except zstandard.ZstdError as e:
            raise BadInput(f"corrupt zstd shard ({e})", file=path) from None


class Dataset:
    """A complete dataset dir, read as a stream of records (constant memory)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise BadInput("no such dataset directory", file=self.path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            raise BadInput(
                "not a complete dataset (no manifest.json; was the stage that writes it interrupted?)",
                file=self.path,
            )
        self.manifest: dict[str, Any] = read_json(manifest_path)
        if self.manifest.get("schema_version") != SCHEMA_VERSION or "shards" not in self.manifest:
            raise BadInput(f"unsupported manifest (schema_version {self.manifest.get('schema_version')!r})",
                           file=manifest_path)
        self.format: str = self.manifest["format"]
        self.shards = [ShardInfo(**s) for s in self.manifest["shards"]]

    @staticmethod
    def is_complete(path: str | Path) -> bool:
        return (Path(path) / MANIFEST).exists()

    def __len__(self) -> int:
        return self.manifest["records"]

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, records={len(self)}, shards={len(self.shards)})"

    @property
    def stage(self) -> str:
        return self.manifest.get("stage", "")

    @property
    def stats(self) -> dict[str, int]:
        return self.manifest.get("stats", {})

    def shard_path(self, shard: ShardInfo | str) -> Path:
        return self.path / (shard if isinstance(shard, str) else shard.name)

    def read_shard(self, shard: ShardInfo | str, verify: bool = False) -> Iterator[dict]:
        if isinstance(shard, str):
            shard = next(s for s in self.shards if s.name == shard)
        path = self.shard_path(shard)
        if not path.exists():
            raise BadInput("shard listed in manifest.json is missing", file=path)
        if verify:
            self._verify_shard(shard)
        yield from _read_shard_file(path, self.format)

    def records(self, verify: bool = False) -> Iterator[dict]:
        for shard in self.shards:
            yield from self.read_shard(shard, verify=verify)

    def __iter__(self) -> Iterator[dict]:
        return self.records()

    def _verify_shard(self, shard: ShardInfo) -> None:
        path = self.shard_path(shard)
        actual = sha256_file(path)
        if actual != shard.sha256:
            raise BadInput(f"sha256 mismatch (manifest {shard.sha256[:12]}…, file {actual[:12]}…)", file=path)

    def verify(self) -> None:
        """Check every shard's sha256 against the manifest; raise BadInput on the first mismatch."""
        for shard in self.shards:
            if not self.shard_path(shard).exists():
                raise BadInput("shard listed in manifest.json is missing", file=self.shard_path(shard))
            self._verify_shard(shard)


class DatasetWriter:
    """Writes a dataset dir: stream records with `write`, or whole shards with `write_shard`.

    `write_shard` is for resumable stages that map input shards to output shards: a re-run asks
    `done_shards()` and skips those. The manifest is written by `close()` and only then is the
    dataset complete. Opening a writer on a complete dataset removes its manifest first, so a
    failed rewrite can never pass for the old, complete one. A stage whose output is fixed by its
    params resumes with `resumable_shards()`, which drops shards a run with other params left.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        stage: str,
        params: dict[str, Any] | None = None,
        parents: Iterable[str | Path | Dataset] = (),
        format: str = "jsonl.zst",
        records_per_shard: int = 20_000,
    ):
        if format not in FORMATS:
            raise BadInput(f"unknown dataset format {format!r} (expected one of {sorted(FORMATS)})")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.stage = stage
        self.params = json.loads(json.dumps(params or {}, default=str))  # as the manifest will hold them
        self.previous_params = self._previous_params()
        (self.path / MANIFEST).unlink(missing_ok=True)
        (self.path / CARD).unlink(missing_ok=True)
        atomic_write_json(self.path / RUN_PARAMS, {"stage": stage, "params": self.params})
        parents = [p if isinstance(p, Dataset) else Dataset(p) for p in parents]
        self.parents = [{"path": str(p.path), "stage": p.stage, "records": len(p)} for p in parents]
        self.parent_licenses = {spdx for p in parents for spdx in p.manifest.get("licenses", [])}
        self.format = format
        self.records_per_shard = records_per_shard
        self._buffer: list[dict] = []
        self._next_index = 0
        self.started = time.time()

    def _previous_params(self) -> dict[str, Any] | None:
        for name in (RUN_PARAMS, MANIFEST):
            if (self.path / name).exists():
                run = read_json(self.path / name)
                return run["params"] if run.get("stage") == self.stage else None
        return None

    def shard_name(self, index: int) -> str:
        return f"shard-{index:05d}.{self.format}"

    def done_shards(self) -> dict[str, ShardInfo]:
        """Shards finished by this or an earlier (killed) run, by name."""
        done = {}
        for sidecar in sorted(self.path.glob(f".shard-*.{self.format}.json")):
            info = ShardInfo(**read_json(sidecar))
            if (self.path / info.name).exists():
                done[info.name] = info
        return done

    def resumable_shards(self) -> dict[str, ShardInfo]:
        """`done_shards()` when the run that left them had these params; otherwise they are removed."""
        done = self.done_shards()
        if done and self.previous_params != self.params:
            for name in done:
                remove_shard(self.path, name)
            return {}
        return done

    def write_shard(self, name: str, records: Iterable[dict], stats: dict[str, int] | None = None) -> ShardInfo:
        return write_shard(self.path, name, records, self.format, stats)

    def write(self, record: dict) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.records_per_shard:
            self._flush()

    def write_many(self, records: Iterable[dict]) -> None:
        for record in records:
            self.write(record)

    def _flush(self) -> None:
        if not self._buffer:
            return
        while (self.path / self.shard_name(self._next_index)).exists():
            self._next_index += 1
        self.write_shard(self.shard_name(self._next_index), self._buffer)
        self._buffer = []
        self._next_index += 1

    def close(self, summary: dict[str, Any] | None = None) -> Dataset:
        """Flush, write the card and manifest.json (the completion mark); return the finished Dataset.

        A dataset's licenses are those its records declare, else its parents'."""
        self._flush()
        for stale in self.path.glob(".*.tmp"):  # left by workers killed mid-write
            stale.unlink(missing_ok=True)
        done = self.done_shards()
        for orphan in self.path.glob(f"shard-*.{self.format}"):  # written, but killed before its sidecar
            if orphan.name not in done:
                orphan.unlink()
        shards = list(done.values())
        stats: Counter[str] = Counter()
        licenses: Counter[str] = Counter()
        for shard in shards:
            stats.update(shard.stats)
            licenses.update(shard.licenses)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "stage": self.stage,
            "params": self.params,
            "parents": self.parents,
            "format": self.format,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "records": sum(s.records for s in shards),
            "bytes": sum(s.bytes for s in shards),
            "shards": [asdict(s) for s in shards],
            "stats": dict(stats),
            "licenses": sorted(licenses or self.parent_licenses),
            "summary": summary or {},
        }
        atomic_write_text(self.path / CARD, render_card(manifest, self.path.resolve().name))
        atomic_write_json(self.path / MANIFEST, manifest)
        return Dataset(self.path)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


def write_dataset(
    path: str | Path,
    records: Iterable[dict],
    *,
    stage: str,
    params: dict[str, Any] | None = None,
    parents: Iterable[str | Path | Dataset] = (),
    format: str = "jsonl.zst",
    summary: dict[str, Any] | None = None,
) -> Dataset:
    """Write a whole dataset from an iterable of records in one call."""
    writer = DatasetWriter(path, stage=stage, params=params, parents=parents, format=format)
    writer.write_many(records)
    return writer.close(summary)

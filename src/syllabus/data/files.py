"""Atomic file writes and strict JSONL reading: the two habits every stage relies on.

A file a stage writes is either absent or complete: content goes to a temporary file in the
same directory, is flushed to disk, and is renamed over the final name in one step.
"""

from __future__ import annotations

import contextlib
import hashlib
import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from syllabus.errors import BadInput


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; set it straight back
    os.umask(mask)
    return mask


# Files are made readable as open() would make them (0666 less the umask), not mkstemp's 0600:
# a dataset dir is for others to read, serve and upload.
_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, _FILE_MODE)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in blocks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write records as JSON lines atomically; returns how many were written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput("no such file", file=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"not valid JSON ({e})", file=path) from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; a bad line is a BadInput naming it.

    A path ending in .gz is decompressed on the fly.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        f = opener(path, "rt", encoding="utf-8")
    except FileNotFoundError:
        raise BadInput("no such file", file=path) from None
    except IsADirectoryError:
        raise BadInput("is a directory, expected a JSONL file", file=path) from None
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise BadInput(f"not valid JSON ({e.msg})", file=path, record=f"line {lineno}") from None
                if not isinstance(obj, dict):
                    raise BadInput("expected a JSON object", file=path, record=f"line {lineno}")
                yield lineno, obj
        except UnicodeDecodeError:
            raise BadInput("not UTF-8 text", file=path) from None
        except (gzip.BadGzipFile, EOFError) as e:
            raise BadInput(f"not a valid gzip file ({e})", file=path) from None


def read_jsonl(path: str | Path) -> list[dict]:
    return [obj for _, obj in iter_jsonl(path)]


def installed_package_roots(name: str) -> list[Path]:
    """The source dir(s) of an installed package, or its one .py file for a plain module, found
    without importing it (nothing of the package runs)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise BadInput(f"no installed package or module named {name!r}")
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []

"""A run dir, read leniently: the report shows whatever each stage left behind and where it came from.

Stage output formats still change, so nothing here insists on a schema: a missing or unreadable file
reads as absent (and is listed with its problem), and values are looked up by key at any depth of a
stage's documents. Every lookup returns the file the value came from, so each number on the page
can name its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from syllabus.data.dataset import Dataset
from syllabus.errors import BadInput

# files a stage may leave in its output dir besides manifest.json, read when present
KNOWN_FILES = ("summary.json", "metrics.json", "results.json", "report.json", "ablation.json")
MAX_RECORDS = 200_000  # records streamed for a histogram the stage did not summarize itself


def deep_find(obj: Any, keys: tuple[str, ...]) -> Any:
    """The value of the first of `keys` found in nested dicts, shallowest first; None if none is."""
    level = [obj]
    while level:
        for key in keys:
            for d in level:
                if isinstance(d, dict) and d.get(key) is not None:
                    return d[key]
        level = [v for d in level if isinstance(d, dict) for v in d.values() if isinstance(v, dict)]
    return None


def flatten(obj: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for every scalar leaf of nested dicts; lists count as leaves."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from flatten(value, (*prefix, str(key)))
    elif prefix:
        yield prefix, obj


def lenient_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    """Objects of a JSONL file, skipping lines that do not parse (a log may be mid-append)."""
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    rows.append(obj)
                    if limit is not None and len(rows) >= limit:
                        break
    except OSError:
        return []
    return rows


@dataclass
class Stage:
    name: str
    uses: str
    status: str  # done / running / not run
    seconds: float | None
    dir: Path
    manifest: dict | None
    documents: list[tuple[str, dict]] = field(default_factory=list)  # (source file, object), most specific first

    def find(self, *keys: str) -> tuple[Any, str | None]:
        """(value, source file) of the first of `keys` in this stage's documents."""
        for source, obj in self.documents:
            value = deep_find(obj, keys)
            if value is not None:
                return value, source
        return None, None

    def leaves(self) -> dict[tuple[str, ...], tuple[Any, str]]:
        """Every leaf of every document by path, the first document holding a path winning.

        A stage's summary is often repeated in its manifest under another nesting ({"kept": 3} and
        {"ingest": {"kept": 3}}): a leaf whose last key and value an earlier document had is left out.
        """
        out: dict[tuple[str, ...], tuple[Any, str]] = {}
        seen: set[tuple[str, str]] = set()  # (last key, value) of the documents before this one
        for source, obj in self.documents:
            leaves = [(path, value, (path[-1], json.dumps(value, sort_keys=True, default=str)))
                      for path, value in flatten(obj)]
            for path, value, key in leaves:
                if path not in out and key not in seen:
                    out[path] = (value, source)
            seen.update(key for _, _, key in leaves)
        return out

    def is_kind(self, *kinds: str) -> bool:
        return any(self.uses == k or self.uses.startswith(k + ".") for k in kinds)


class Run:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        if not self.dir.is_dir():
            raise BadInput("not a directory" if self.dir.exists() else "no such run dir", file=run_dir)
        if not (self.dir / "recipe.json").is_file() and not (self.dir / ".state").is_dir():
            raise BadInput("not a run dir (no recipe.json or .state/; make one with `syllabus run`)", file=run_dir)
        self.read: dict[str, str] = {}  # every file consulted -> "" or what was wrong with it
        recipe = self.json(self.dir / "recipe.json")
        self.recipe: dict = recipe if isinstance(recipe, dict) else {}
        self.stages = self._stages()

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.dir))
        except ValueError:
            return str(path)

    def json(self, path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            self.read[self.rel(path)] = f"unreadable: {e.__class__.__name__}"
            return None
        self.read[self.rel(path)] = ""
        return value

    def jsonl(self, path: Path) -> list[dict]:
        rows = lenient_jsonl(path)
        self.read[self.rel(path)] = "" if rows else "no JSON objects"
        return rows

    def records(self, stage: Stage, limit: int = MAX_RECORDS) -> Iterator[dict]:
        """A stage's dataset records (at most `limit`), or nothing if it has no readable dataset."""
        if stage.manifest is None:
            return
        try:
            for i, record in enumerate(Dataset(stage.dir).records()):
                if i >= limit:
                    break
                yield record
        except (BadInput, OSError, ValueError, zstandard.ZstdError) as e:
            self.read[self.rel(stage.dir)] = f"unreadable records: {e}"

    def find_jsonl(self, stage: Stage, names: tuple[str, ...], needs: tuple[str, ...]) -> Path | None:
        """A JSONL file of the stage: one of `names`, else the first whose first row has all of `needs`."""
        for name in names:
            if (stage.dir / name).is_file():
                return stage.dir / name
        if not stage.dir.is_dir():
            return None
        for path in sorted(stage.dir.glob("*.jsonl")) + sorted(stage.dir.glob("*/*.jsonl")):
            first = lenient_jsonl(path, limit=1)
            if first and all(k in first[0] for k in needs):
                return path
        return None

    def using(self, *kinds: str) -> list[Stage]:
        return [s for s in self.stages if s.is_kind(*kinds)]

    def _stages(self) -> list[Stage]:
        specs = [s for s in self.recipe.get("stages") or [] if isinstance(s, dict) and s.get("name")]
        names = [str(s["name"]) for s in specs]
        uses = {str(s["name"]): str(s.get("uses", "")) for s in specs}
        state_dir = self.dir / ".state"
        if state_dir.is_dir():
            names += sorted(p.stem for p in state_dir.glob("*.json") if p.stem not in uses)
        return [self._stage(name, uses.get(name, "")) for name in names]

    def _stage(self, name: str, uses: str) -> Stage:
        state = self.json(self.dir / ".state" / f"{name}.json")
        state = state if isinstance(state, dict) else {}
        out = self.dir / name
        manifest = self.json(out / "manifest.json")
        manifest = manifest if isinstance(manifest, dict) else None
        seconds = state.get("seconds")
        stage = Stage(
            name=name,
            uses=str(state.get("uses") or uses),
            status=str(state.get("status") or "not run"),
            seconds=seconds if isinstance(seconds, (int, float)) else None,
            dir=out,
            manifest=manifest,
        )
        state_rel = self.rel(self.dir / ".state" / f"{name}.json")
        if isinstance(state.get("summary"), dict):
            stage.documents.append((state_rel, state["summary"]))
        for file in KNOWN_FILES:
            obj = self.json(out / file)
            if isinstance(obj, dict):
                stage.documents.append((self.rel(out / file), obj))
        if manifest is not None:
            manifest_rel = self.rel(out / "manifest.json")
            for part in ("summary", "stats"):
                if isinstance(manifest.get(part), dict):
                    stage.documents.append((manifest_rel, manifest[part]))
        return stage

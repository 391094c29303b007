"""A run dir as the report reads it: every stage's state, its summary read through its model
(`syllabus.summaries`), and its dataset manifest.

A summary that does not fit its model (a run dir from an older syllabus, a hand-edited file) is not
guessed at: the stage keeps the one-line problem (file, field, what is wrong) and the page shows that
line where the stage's numbers would be. Every file consulted is recorded with what was wrong with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from syllabus.config import validation_error_line
from syllabus.errors import BadInput
from syllabus.summaries import SUMMARIES, TRAIN_LOG, Summary, TrainLogLine, read_summary


@dataclass
class Stage:
    name: str
    uses: str
    status: str  # done / running / not run
    seconds: float | None
    dir: Path
    state_file: str  # relative to the run dir
    manifest: dict | None
    summary: Summary | None = None
    problem: str | None = None  # why the summary could not be read

    def is_kind(self, *kinds: str) -> bool:
        """Whether this stage is of one of `kinds`: a stage kind (`eval`: only eval itself, not
        eval.scaling) or a family that is no kind itself (`synth`: every synth.* stage)."""
        return any(self.uses == k or (k not in SUMMARIES and self.uses.startswith(k + ".")) for k in kinds)


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

    def train_log(self, stage: Stage) -> list[TrainLogLine]:
        """The stage's metrics log; a line cut off mid-append (a running stage) is skipped, a wrong one reported."""
        path, file = stage.dir / TRAIN_LOG, self.rel(stage.dir / TRAIN_LOG)
        rows: list[TrainLogLine] = []
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return rows
        for number, line in enumerate(lines, 1):
            try:
                rows.append(TrainLogLine.model_validate(json.loads(line)))
            except json.JSONDecodeError:
                continue
            except ValidationError as e:
                self.read[file] = f"{file}: {validation_error_line(e, f'line {number}')}"
                return rows
        self.read.setdefault(file, "" if rows else "no lines")
        return rows

    def using(self, *kinds: str) -> list[Stage]:
        """The stages of these kinds that have run (with a summary, or the problem that kept it from the page)."""
        return [s for s in self.stages if s.is_kind(*kinds) and s.status != "not run"]

    def in_recipe(self, *kinds: str) -> bool:
        return any(s.is_kind(*kinds) for s in self.stages)

    def _stages(self) -> list[Stage]:
        specs = [s for s in self.recipe.get("stages") or [] if isinstance(s, dict) and s.get("name")]
        names = [str(s["name"]) for s in specs]
        uses = {str(s["name"]): str(s.get("uses", "")) for s in specs}
        state_dir = self.dir / ".state"
        if state_dir.is_dir():
            names += sorted(p.stem for p in state_dir.glob("*.json") if p.stem not in uses)
        return [self._stage(name, uses.get(name, "")) for name in names]

    def _stage(self, name: str, uses: str) -> Stage:
        state_path = self.dir / ".state" / f"{name}.json"
        state = self.json(state_path)
        state = state if isinstance(state, dict) else {}
        manifest = self.json(self.dir / name / "manifest.json")
        seconds = state.get("seconds")
        stage = Stage(name=name, uses=str(state.get("uses") or uses), status=str(state.get("status") or "not run"),
                      seconds=seconds if isinstance(seconds, (int, float)) else None, dir=self.dir / name,
                      state_file=self.rel(state_path), manifest=manifest if isinstance(manifest, dict) else None)
        if stage.status == "done" and stage.uses in SUMMARIES:
            try:
                stage.summary = read_summary(stage.uses, state.get("summary"), file=stage.state_file)
            except BadInput as e:
                stage.problem = e.line()
                self.read[stage.state_file] = e.line()
        return stage

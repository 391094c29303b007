"""Run a recipe: its stages in order, each from input dataset dirs to an output dir, skipping finished work.

A stage function has the signature `fn(params: ParamsModel, inputs, out, ctx) -> SummaryModel`;
its params model is read from the annotation of `params`, its summary is the model of its kind in
`syllabus.summaries`. The runner records each finished stage
in `RUN_DIR/.state/NAME.json` with a hash of what it was asked to do; a re-run skips a stage whose
record matches and re-runs one that was interrupted, where the stage itself resumes from its
finished shards or its last checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rich.table import Table

from syllabus.config import Launch, Params, Recipe, StageContext, StageSpec, load_recipe, validate
from syllabus.console import console
from syllabus.data.files import atomic_write_json, read_json
from syllabus.errors import BadInput
from syllabus.estimate import PLAN_COLUMNS, plan_totals, stage_estimate
from syllabus.summaries import SUMMARIES, Summary

# stage kind -> "module:function"; stages are imported only when a recipe uses them
STAGES: dict[str, str] = {
    "data.ingest": "syllabus.ingest:ingest_stage",
    "tokenizer.train": "syllabus.train.pack:tokenizer_stage",
    "report": "syllabus.report:report_stage",
    "dedup": "syllabus.dedup:dedup_stage",
    "decontam": "syllabus.decontam:decontam_stage",
    "train.pack": "syllabus.train.pack:pack_stage",
    "train.pretrain": "syllabus.train.loop:pretrain_stage",
    "train.finetune": "syllabus.train.loop:finetune_stage",
    "synth.textbook": "syllabus.synth.textbook:textbook_stage",
    "synth.exercises": "syllabus.synth.exercises:exercises_stage",
    "synth.expand": "syllabus.synth.expand:expand_stage",
    "synth.mined_exercises": "syllabus.synth.mined:mined_exercises_stage",
    "synth.human_textbook": "syllabus.synth.mined:human_textbook_stage",
    "curate.annotate": "syllabus.curate.judge:annotate_stage",
    "curate.train": "syllabus.curate.classifier:train_stage",
    "curate.filter": "syllabus.curate.filter:filter_stage",
    "eval": "syllabus.eval.stage:eval_stage",
    "eval.mutants": "syllabus.eval.mutants:mutants_stage",
    "eval.scaling": "syllabus.eval.scaling:scaling_eval_stage",
    "ablation": "syllabus.report.ablation:ablation_stage",
}

StageFunction = Callable[..., Summary]


def stage_function(kind: str, *, file: Path | None = None, key: str = "") -> tuple[StageFunction, type[Params]]:
    if kind not in STAGES:
        raise BadInput(f"{key}: unknown stage {kind!r} (known: {', '.join(sorted(STAGES))})", file=file)
    module_name, fn_name = STAGES[kind].split(":")
    fn = getattr(importlib.import_module(module_name), fn_name)
    params_model = typing.get_type_hints(fn)["params"]
    return fn, params_model


def packaged_recipe(name: str) -> Path | None:
    candidate = resources.files("syllabus") / "recipes" / f"{name.removesuffix('.yaml')}.yaml"
    return Path(str(candidate)) if candidate.is_file() else None


def find_recipe(ref: str | Path) -> Path:
    """A recipe path, or the name of a packaged recipe (`quickstart`, `recipes/quickstart.yaml`)."""
    path = Path(ref)
    if path.exists():
        return path
    return packaged_recipe(path.name) or path


@dataclass
class PlannedStage:
    spec: StageSpec
    fn: StageFunction
    params: Params
    inputs: dict[str, Path | list[Path]]
    out: Path
    fingerprint: str
    launch: Launch  # how it runs, not what it computes: not part of the fingerprint


def _fingerprint(spec: StageSpec, params: Params, upstream: list[str], seed: int) -> str:
    """What a stage was asked to do, including the recipe's seed and its input stages' fingerprints: a
    changed stage re-runs everything downstream of it."""
    blob = json.dumps({"uses": spec.uses, "inputs": spec.inputs, "params": params.model_dump(mode="json"),
                       "upstream": upstream, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan(recipe: Recipe, run_dir: Path) -> list[PlannedStage]:
    """Validate every stage's params and resolve its inputs, before any work starts."""
    planned = []
    fingerprints: dict[str, str] = {}
    for i, spec in enumerate(recipe.stages):
        key = f"stages[{i}]"
        fn, params_model = stage_function(spec.uses, file=recipe.source, key=f"{key}.uses")
        params = validate(params_model, spec.params, file=recipe.source, prefix=f"{key}.params")
        inputs: dict[str, Path | list[Path]] = {}
        upstream: list[str] = []
        for name, ref in spec.inputs.items():
            refs = ref if isinstance(ref, list) else [ref]
            paths = []
            for r in refs:
                kind, target = recipe.resolve_input(r, spec.name)
                if kind == "stage":
                    upstream.append(fingerprints[str(target)])
                paths.append(run_dir / target if kind == "stage" else Path(target))
            inputs[name] = paths if isinstance(ref, list) else paths[0]
        fingerprints[spec.name] = _fingerprint(spec, params, upstream, recipe.defaults.seed)
        planned.append(PlannedStage(spec, fn, params, inputs, run_dir / spec.name, fingerprints[spec.name],
                                    recipe.launch_of(i)))
    return planned


def _state_path(run_dir: Path, name: str) -> Path:
    return run_dir / ".state" / f"{name}.json"


def stage_status(run_dir: Path, stage: PlannedStage) -> str:
    path = _state_path(run_dir, stage.spec.name)
    if not path.exists():
        return "pending"
    state = read_json(path)
    if state.get("status") == "done":
        return "done" if state.get("fingerprint") == stage.fingerprint else "changed"
    return "interrupted"


def run_recipe(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    from_stage: str | None = None,
    only: str | None = None,
    dry_run: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run the recipe's stages in order into run_dir; returns each stage's summary."""
    run_dir = Path(run_dir).resolve()
    stages = plan(recipe, run_dir)
    names = [s.spec.name for s in stages]
    for flag, value in (("--from", from_stage), ("--only", only)):
        if value is not None and value not in names:
            raise BadInput(f"{flag} {value!r}: no such stage (stages: {', '.join(names)})", file=recipe.source)
    start = names.index(from_stage) if from_stage else 0

    if dry_run:
        _print_plan(run_dir, stages)
        return {}

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "recipe.json", recipe.model_dump(mode="json") | {"source": str(recipe.source)})
    summaries: dict[str, dict[str, Any]] = {}
    for i, stage in enumerate(stages):
        name = stage.spec.name
        if only is not None and name != only:
            continue
        forced = from_stage is not None and i >= start
        if from_stage is not None and i < start:
            continue
        status = stage_status(run_dir, stage)
        if status == "done" and not forced and only is None:
            console.print(f"[dim]✓ {name} ({stage.spec.uses}) already done[/dim]")
            summaries[name] = read_json(_state_path(run_dir, name)).get("summary", {})
            continue
        if status == "changed" or (status == "done" and (forced or only is not None)):
            shutil.rmtree(stage.out, ignore_errors=True)  # a fresh start: finished shards of other params are stale
        verb = "resuming" if status == "interrupted" else "running"
        console.print(f"[bold]▶ {verb} {name}[/bold] ({stage.spec.uses})")
        state_path = _state_path(run_dir, name)
        atomic_write_json(state_path, {"status": "running", "fingerprint": stage.fingerprint,
                                       "started": time.time()})
        ctx = StageContext(run_dir=run_dir, stage=name, workers=recipe.defaults.workers,
                           executor=recipe.defaults.executor, address=recipe.defaults.address,
                           seed=recipe.defaults.seed, launch=stage.launch)
        started = time.time()
        result = stage.fn(stage.params, stage.inputs, stage.out, ctx)
        if not isinstance(result, SUMMARIES[stage.spec.uses]):
            raise TypeError(f"stage {stage.spec.uses} returned {type(result).__name__}, not its "
                            f"{SUMMARIES[stage.spec.uses].__name__}")
        summary = result.dump()
        seconds = round(time.time() - started, 2)
        atomic_write_json(state_path, {"status": "done", "fingerprint": stage.fingerprint, "uses": stage.spec.uses,
                                       "seconds": seconds, "finished": time.time(), "summary": summary})
        console.print(f"[green]✓ {name}[/green] in {seconds:.1f}s")
        summaries[name] = summary
    return summaries


def _print_plan(run_dir: Path, stages: list[PlannedStage]) -> None:
    specs = {stage.spec.name: stage.spec for stage in stages}
    table = Table(title=f"plan for {run_dir}")
    for column in ("stage", "uses", "status", *(header for header, _ in PLAN_COLUMNS)):
        table.add_column(column)
    estimates = []
    for stage in stages:
        estimate = stage_estimate(stage.spec, stage.params, specs, stage.launch)
        estimates.append(estimate)
        table.add_row(stage.spec.name, stage.spec.uses, stage_status(run_dir, stage),
                      *(cell(estimate) for _, cell in PLAN_COLUMNS))
    console.print(table)
    console.print(plan_totals(estimates))


def load_and_run(recipe_ref: str | Path, out: str | Path | None = None, **kwargs: Any) -> tuple[Path, dict]:
    recipe = load_recipe(find_recipe(recipe_ref))
    run_dir = Path(out or recipe.out or Path("runs") / recipe.name)
    return run_dir, run_recipe(recipe, run_dir, **kwargs)

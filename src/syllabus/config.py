"""Recipes: a YAML file listing stages, each a function from input dataset dirs to an output dir.

    name: quickstart
    out: runs/quickstart
    defaults: {workers: 2, executor: local, launch: {engine: process}}
    stages:
      - name: raw                 # unique; also the stage's output dir under the run dir
        uses: data.ingest         # which stage function (see syllabus.recipe.STAGES)
        params: {sources: [stdlib]}
      - name: labels
        uses: curate.annotate
        inputs: {data: raw}       # an earlier stage's name, or a path (relative to the recipe)
        params: {judge: heuristic, n: 400}
      - name: base
        uses: train.pretrain
        inputs: {data: packed}
        launch: {engine: torchrun, nproc_per_node: 8}   # overrides defaults.launch key by key

Structure is validated here; each stage's `params` is validated by that stage's own pydantic model
(`syllabus.recipe`), and every error names the file, the key and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from syllabus.errors import BadInput

M = TypeVar("M", bound=BaseModel)


class Params(BaseModel):
    """Base of every stage's parameters: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Launch(Params):
    """How a train stage runs (see syllabus.train.launch), and the GPUs its estimate assumes.

    process: in the runner's own process (one device). torchrun: `nproc_per_node` processes on this node.
    slurm: torchrun on each of `nnodes` nodes of the Slurm allocation the runner is in (srun, c10d
    rendezvous). ray: Ray Train, `nnodes` x `nproc_per_node` workers on the recipe's Ray cluster.
    """

    engine: Literal["process", "torchrun", "slurm", "ray"] = "process"
    nproc_per_node: int = Field(1, ge=1)  # processes per node: one per GPU
    nnodes: int = Field(1, ge=1)
    port: int = Field(29500, ge=1, le=65535)  # rendezvous port on the first node (slurm)
    srun_args: list[str] = []  # extra srun options, e.g. [--gpus-per-node=8, --cpus-per-task=64]
    gpu: str = "A100"  # the GPU type estimates assume (syllabus.train.flops.GPU_PEAK_FLOPS)
    mfu: float = Field(0.4, gt=0, le=1)  # the model-FLOPs utilisation estimates assume

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    @model_validator(mode="after")
    def _engine_fits_size(self) -> Launch:
        if self.engine == "process" and self.world_size > 1:
            raise ValueError("engine process runs one process: use torchrun, slurm or ray for more")
        if self.engine == "torchrun" and self.nnodes > 1:
            raise ValueError("engine torchrun launches one node: use slurm or ray for nnodes > 1")
        return self


class Defaults(Params):
    workers: int = Field(2, ge=1)
    executor: str = Field("local", pattern="^(local|ray)$")
    address: str | None = None
    seed: int = 0
    launch: Launch = Launch()


class StageSpec(Params):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    uses: str
    inputs: dict[str, str | list[str]] = {}
    params: dict[str, Any] = {}
    launch: dict[str, Any] = {}  # keys of Launch that override defaults.launch for this stage


class Recipe(Params):
    name: str
    description: str = ""
    out: str | None = None
    defaults: Defaults = Defaults()
    stages: list[StageSpec] = Field(min_length=1)
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _stage_names_unique_and_inputs_earlier(self) -> Recipe:
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name!r} is used twice")
            seen.add(stage.name)
        return self

    def stage(self, name: str) -> StageSpec:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise BadInput(f"no stage named {name!r} (stages: {', '.join(s.name for s in self.stages)})",
                       file=self.source)

    def launch_of(self, index: int) -> Launch:
        """defaults.launch with stage `index`'s own launch keys on top, validated."""
        merged = {**self.defaults.launch.model_dump(), **self.stages[index].launch}
        return validate(Launch, merged, file=self.source, prefix=f"stages[{index}].launch")

    def resolve_input(self, ref: str, before: str) -> tuple[str, str | Path]:
        """('stage', name) for an earlier stage's output, else ('path', absolute path)."""
        names = [s.name for s in self.stages]
        if ref in names:
            if names.index(ref) >= names.index(before):
                raise BadInput(f"stage {before!r} takes input {ref!r}, which runs after it", file=self.source)
            return "stage", ref
        base = self.source.parent if self.source else Path.cwd()
        return "path", (base / ref).resolve()


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_error_line(error: ValidationError, prefix: str = "") -> str:
    """The first problem of a pydantic error as 'key.path: message'."""
    first = error.errors()[0]
    key = _key_path(tuple(first["loc"]))
    key = f"{prefix}.{key}" if prefix and key else (prefix or key)
    return f"{key}: {first['msg']}" if key else first["msg"]


def validate(model: type[M], data: Any, *, file: str | Path | None, prefix: str = "") -> M:
    """Validate data against a pydantic model; problems become one-line BadInput errors."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadInput(validation_error_line(e, prefix), file=file) from None


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput("no such file", file=path) from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise BadInput(f"unreadable ({e.__class__.__name__})", file=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise BadInput(f"malformed YAML ({getattr(e, 'problem', e)})", file=path, record=where) from None


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise BadInput("a recipe must be a YAML mapping with 'name' and 'stages'", file=path)
    recipe = validate(Recipe, data, file=path)
    recipe.source = path.resolve()
    return recipe


@dataclass
class StageContext:
    """What a stage function gets besides its params, inputs and output dir."""

    run_dir: Path
    stage: str
    workers: int = 2
    executor: str = "local"
    address: str | None = None
    seed: int = 0
    launch: Launch = field(default_factory=Launch)
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

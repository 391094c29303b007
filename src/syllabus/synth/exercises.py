"""Synthetic CodeExercises, verified: the teacher writes a function and its tests, the sandbox runs them.

Diversity comes from constraining the function name (and its topic) from a large editable vocabulary
(`function_names.txt`: `topic: name` lines). The teacher must answer in a strict format, a SOLUTION
block (imports, one function with a docstring) and a TESTS block (asserts); both are parsed with
`ast`, the solution runs against its tests in `syllabus.sandbox` (the tests in a checker process
that calls the solution across a process boundary, so a solution cannot forge its verdict), and
only passing exercises are kept, split for finetuning into `prompt` (signature + docstring) and
`completion` (the body).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import Field

from syllabus.config import StageContext
from syllabus.data.dataset import Dataset
from syllabus.errors import BadInput
from syllabus.llm import Reply
from syllabus.sandbox import Check, run_programs
from syllabus.summaries import ExercisesSummary, dataset_summary
from syllabus.synth.batches import Job, TeacherParams, base_summary, make_client, synthesize
from syllabus.synth.diversity import coverage
from syllabus.synth.prompts import PromptSpace, constraint_axes, corpus_seeds, render_with_constraints

PROMPT = '''Write one Python exercise for a student learning basic coding concepts.
Topic: {topic}
Function name: {function_name}
{constraints}
Reply in exactly this format and nothing else:
### SOLUTION
```python
# imports, if any
def {function_name}(...) -> ...:
    """What the function does, with one example."""
    # the body
```
### TESTS
```python
assert {function_name}(...) == ...
# 3 to 6 asserts in all
```'''

ANSWER = re.compile(r"###\s*SOLUTION\s*```(?:python|py)?[ \t]*\n(.*?)```\s*###\s*TESTS\s*```(?:python|py)?[ \t]*\n(.*?)```",
                    re.DOTALL)


class ExercisesParams(TeacherParams):
    teacher: str = "offline:exercises"
    temperature: float = 0.5
    max_tokens: int = 800
    names: str | None = Field(None, description="function-name vocabulary file (default: the packaged one)")
    timeout: float = Field(5.0, gt=0, description="seconds a solution may run against its tests")
    workers: int = Field(2, ge=1, description="sandbox processes")


@dataclass
class Exercise:
    prompt: str  # imports + signature + docstring
    completion: str  # the body after the docstring
    tests: str

    def check(self, name: str) -> Check:
        """The solution under test; its tests run in the sandbox's checker, calling `name` across
        the process boundary (the prompt's imports run there too, for the tests' use)."""
        return Check(program=self.prompt + self.completion, helpers=self.prompt, test=self.tests, entry_point=name)


def names_file(path: str | Path | None) -> Path:
    return Path(path) if path else Path(str(resources.files("syllabus.synth") / "function_names.txt"))


def load_names(path: str | Path | None = None) -> list[tuple[str, str]]:
    """(topic, function name) pairs of a vocabulary file: `topic: name` lines, or bare names."""
    path = names_file(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as e:
        raise BadInput(f"unreadable function-name file ({e.__class__.__name__})", file=path) from None
    pairs = []
    for lineno, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        topic, _, name = line.rpartition(":")
        name = name.strip()
        if not name.isidentifier():
            raise BadInput(f"{name!r} is not a Python function name", file=path, record=f"line {lineno}")
        pairs.append((topic.strip() or "general", name))
    if not pairs:
        raise BadInput("no function names", file=path)
    return pairs


def exercise_space(names: list[tuple[str, str]], params: ExercisesParams, seeds: str | Path | None = None) -> PromptSpace:
    """(topic, function name) x the recipe's extra axes (x corpus snippets, when seeded)."""
    seeds = seeds or params.seeds
    return PromptSpace({"names": [{"topic": t, "function_name": n} for t, n in names], **constraint_axes(params.axes),
                        "seeds": corpus_seeds(seeds, limit=params.seed_limit) if seeds else None})


def parse_exercise(text: str, name: str) -> Exercise | str:
    """The exercise in a teacher's answer, or why there is none."""
    match = ANSWER.search(text)
    if not match:
        return "no_parse"
    solution, tests = match.group(1), match.group(2)
    solution = solution if solution.endswith("\n") else solution + "\n"
    try:
        module, test_module = ast.parse(solution), ast.parse(tests)
    except (SyntaxError, ValueError):
        return "syntax_error"
    functions = [node for node in module.body if isinstance(node, ast.FunctionDef)]
    if len(functions) != 1 or len(functions) + sum(isinstance(n, (ast.Import, ast.ImportFrom)) for n in module.body) \
            != len(module.body):
        return "no_parse"
    function = functions[0]
    if function.name != name:
        return "wrong_name"
    if ast.get_docstring(function) is None or len(function.body) < 2:
        return "no_docstring"
    if not any(isinstance(node, ast.Assert) for node in ast.walk(test_module)):
        return "no_tests"
    lines = solution.splitlines(keepends=True)
    split = function.body[0].end_lineno
    return Exercise("".join(lines[:split]), "".join(lines[split:]), tests)


@dataclass(frozen=True)
class VerifyExercises:
    """The batch acceptor: parse every answer, run the parsed ones in the sandbox, keep the passing."""

    workers: int  # sandbox processes
    timeout: float

    def __call__(self, jobs: list[Job], replies: list[Reply], stats: Counter) -> list[dict]:
        parsed = []
        for job, reply in zip(jobs, replies):
            exercise = parse_exercise(reply.text, job.meta["function_name"])
            if isinstance(exercise, str):
                stats[f"dropped_{exercise}"] += 1
            else:
                parsed.append((job, reply, exercise))
        checks = [exercise.check(job.meta["function_name"]) for job, _, exercise in parsed]
        verdicts = run_programs(checks, workers=self.workers, timeout=self.timeout)
        records = []
        for (job, reply, exercise), verdict in zip(parsed, verdicts):
            if not verdict.passed:  # an uncheckable test is never taken on the solution's word
                stats["dropped_timed_out" if verdict.result == "timed out" else
                      "dropped_uncheckable" if verdict.uncheckable else "dropped_tests_failed"] += 1
                continue
            stats["verified"] += 1
            records.append({"text": exercise.prompt + exercise.completion, "prompt": exercise.prompt,
                            "completion": exercise.completion, "tests": exercise.tests, **job.meta,
                            "source": "synth.exercises", "teacher": reply.provenance["endpoint"],
                            "provenance": reply.provenance})
        return records


def synth_exercises(params: ExercisesParams, out: str | Path, *, workers: int = 1, executor: str = "local",
                    address: str | None = None, seeds: str | Path | None = None) -> Dataset:
    """Exercises into dataset dir `out`; each batch is verified as one task on the executor, `workers` at a
    time; `seeds`: a dataset dir whose snippets seed the prompts."""
    names = load_names(params.names)
    space = exercise_space(names, params, seeds)
    jobs = space.jobs(PROMPT, params.n, seed=params.seed, max_repeats=params.max_repeats, stage="synth.exercises",
                      render=render_with_constraints)
    client = make_client(params, out)
    writer, stopped = synthesize(
        jobs, out, client=client, stage="synth.exercises", params=params.model_dump(mode="json"),
        sampling={"temperature": params.temperature, "max_tokens": params.max_tokens},
        accept=VerifyExercises(params.workers, params.timeout), batch_size=params.batch_size,
        dedup_threshold=params.dedup_threshold, format=params.format or "jsonl.zst", workers=workers,
        executor=executor, address=address)
    dataset = writer.close()
    records = list(dataset.records())
    asked = {(job.meta["topic"], job.meta["function_name"]) for job in jobs}
    summary = ExercisesSummary(
        **base_summary(dataset, params, client, stopped, space.summary(params.n, params.max_repeats)), verified=dataset.stats.get("verified", 0),
        coverage={"names": coverage((r["function_name"] for r in records), {n for _, n in asked}),
                  "topics": coverage((r["topic"] for r in records), {t for t, _ in asked}),
                  "vocabulary": len(names)})
    return writer.close({summary.kind: summary.dump()})


def exercises_stage(params: ExercisesParams, inputs: dict, out: Path, ctx: StageContext) -> ExercisesSummary:
    if inputs.get("vocabulary") and not params.names:  # a synth.expand stage's grown vocabulary
        params = params.model_copy(update={"names": str(Path(inputs["vocabulary"]) / "function_names.txt")})
    dataset = synth_exercises(params, out, workers=ctx.workers, executor=ctx.executor, address=ctx.address,
                              seeds=inputs.get("seeds"))
    return dataset_summary(dataset.manifest)

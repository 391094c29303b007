"""Library probes: can a model use libraries its exercises never showed (phi-1, section 3)?

Each probe is a HumanEval-shaped problem with two more fields: `library`, the name it is reported
under, and `module`, what must import for it to run (null for the pygame-style probes, which
bring their own tiny event API in the prompt). Samples are executed like any benchmark's, but
only for probes whose module imports in the sandbox, and pass@1 is reported per library, so the
"emergent library use" claim can be compared checkpoint by checkpoint.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from syllabus.benchmarks import Problem, problem_from_record, task_key
from syllabus.console import console
from syllabus.data.files import iter_jsonl, write_jsonl
from syllabus.eval.run import DEFAULT_TIMEOUT, execute, read_samples, score
from syllabus.sandbox import run_programs

PROBES_FILE = "library_probes.jsonl"  # in syllabus/data/benchmarks/; also the benchmark "library_probes"


@dataclass(frozen=True)
class Probe:
    problem: Problem
    library: str
    module: str | None  # must import for the probe to run; None: nothing beyond the standard library


def load_probes() -> list[Probe]:
    path = resources.files("syllabus.data") / "benchmarks" / PROBES_FILE
    with resources.as_file(path) as file:
        return [Probe(problem_from_record(record), record["library"], record["module"])
                for _, record in iter_jsonl(file)]


def importable(modules: set[str], timeout: float = 10.0) -> dict[str, bool]:
    """Whether each module imports where completions run: in the sandbox, not in this process."""
    names = sorted(modules)
    verdicts = run_programs([f"import {name}" for name in names], workers=1, timeout=timeout)
    return {name: verdict.passed for name, verdict in zip(names, verdicts)}


def run_probes(samples_path: str | Path, *, out: str | Path | None = None, workers: int | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> dict:
    """`syllabus eval probes`: execute the samples of importable probes; pass@1 per library.

    The results file (default SAMPLES_results.jsonl) holds the executed samples only.
    """
    probes = {probe.problem.task_id: probe for probe in load_probes()}
    samples = read_samples(samples_path, {task_id: probe.problem for task_id, probe in probes.items()})
    available = importable({probe.module for probe in probes.values() if probe.module})

    def runs(probe: Probe) -> bool:
        return probe.module is None or available[probe.module]

    runnable = [s for s in samples if runs(probes[s.problem.task_id])]
    results = execute(runnable, workers=workers, timeout=timeout) if runnable else []
    out = Path(out) if out else Path(f"{samples_path}_results.jsonl")
    write_jsonl(out, results)

    results_by_library: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        results_by_library[probes[task_key(result["task_id"])].library].append(result)
    sampled_tasks = {s.problem.task_id for s in samples}
    libraries = {}
    for library in sorted({probe.library for probe in probes.values()}):
        members = [p for p in probes.values() if p.library == library]
        runnable_here = runs(members[0])
        libraries[library] = {
            "importable": runnable_here,
            "tasks": sum(p.problem.task_id in sampled_tasks for p in members),
            "samples": sum(probes[s.problem.task_id].library == library for s in samples),
            "pass@1": score(results_by_library[library], ks=(1,)).get("pass@1") if runnable_here else None,
        }
        if not runnable_here:
            console.print(f"[yellow]{library}: `import {members[0].module}` fails in the sandbox; "
                          "its probes were not run[/yellow]")
    console.print(f"{len(results)} of {len(samples)} probe samples executed -> {out}")
    return {"libraries": libraries, "pass@1": score(results, ks=(1,)).get("pass@1")}

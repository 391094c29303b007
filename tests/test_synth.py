"""Synthetic textbooks and verified exercises: offline teacher, real HTTP teacher, faults, budget, resume."""

import ast
import importlib.util
import json

import pytest

from syllabus.data.dataset import Dataset
from syllabus.errors import BadInput
from syllabus.llm import register_offline
from syllabus.synth.diversity import NearDuplicates
from syllabus.synth.exercises import ExercisesParams, load_names, parse_exercise, synth_exercises
from syllabus.synth.offline import write_exercise
from syllabus.synth.tasks import TASKS
from syllabus.synth.textbook import CODE_BLOCK, TextbookParams, check_section, load_topics, synth_textbook
from syllabus.testing.fault_server import FaultServer

# a fault server answering as the offline textbook teacher, which synth.offline registers on import
TEXTBOOK_TEACHER = {"respond": "offline:textbook", "register": "syllabus.synth.offline"}

needs_sandbox = pytest.mark.skipif(importlib.util.find_spec("syllabus.sandbox") is None,
                                   reason="syllabus.sandbox (eval helper) not on this branch yet")


def test_shipped_vocabulary_has_hundreds_of_names_the_offline_teacher_can_write():
    names = load_names()
    assert len(names) >= 200 and {name for _, name in names} == set(TASKS)
    for _, name in names:
        exercise = parse_exercise(write_exercise(f"Function name: {name}", 0), name)
        assert not isinstance(exercise, str), (name, exercise)
        assert ast.parse(exercise.prompt + exercise.completion)
    leaves, audiences, styles = load_topics()
    assert len(leaves) >= 50 and leaves[0].startswith("Python basics > ") and len(audiences) * len(styles) >= 25


SOLUTION = '''### SOLUTION
```python
import math


def area(r: float) -> float:
    """Area of a circle of radius r."""
    return math.pi * r * r
```
### TESTS
```python
assert area(1) == math.pi
```'''


def test_parse_exercise_splits_prompt_and_completion_and_names_each_rejection():
    exercise = parse_exercise(SOLUTION, "area")
    assert exercise.prompt.endswith('"""Area of a circle of radius r."""\n') and exercise.prompt.startswith("import math")
    assert exercise.completion == "    return math.pi * r * r\n"
    assert parse_exercise("here you go: def area(r): ...", "area") == "no_parse"
    assert parse_exercise(SOLUTION, "volume") == "wrong_name"
    assert parse_exercise(SOLUTION.replace("* r * r", "* r *"), "area") == "syntax_error"
    assert parse_exercise(SOLUTION.replace('    """Area of a circle of radius r."""\n', ""), "area") == "no_docstring"
    assert parse_exercise(SOLUTION.replace("assert area(1) == math.pi", "print(area(1))"), "area") == "no_tests"
    assert parse_exercise(SOLUTION.replace("import math", "x = 1"), "area") == "no_parse"


def test_bad_vocabulary_and_topic_files_are_one_line_errors(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("strings: count_vowels\nlists: not a name\n")
    with pytest.raises(BadInput, match=r"names.txt: line 2: 'not a name' is not a Python function name"):
        load_names(names)
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics: {A: [b]}\naudiences: []\nstyles: [x]\n")
    with pytest.raises(BadInput, match="audiences"):
        load_topics(topics)


def test_check_section_counts_and_syntax_checks_code_blocks():
    assert check_section("## T\n\nno code here") == ("no_code", 0)
    assert check_section("```python\nx = 1\n```\n```python\ndef f(:\n```") == ("syntax_error", 2)
    assert check_section("```python\nx = 1\n```\n```\nprint(x)\n```") == (None, 2)


def test_textbook_cli_offline_then_rerun_resends_nothing(cli, tmp_path):
    out = tmp_path / "book"
    first = cli("synth", "textbook", "--out", str(out), "--n", "40", "--batch-size", "16")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout.splitlines()[-1])
    assert "offline template teacher" in first.stderr and "not a language model" in first.stderr
    dataset = Dataset(out)
    records = list(dataset.records())
    assert result["records"] == len(records) >= 35 and len(dataset.shards) == 3
    for record in records:
        assert record["text"].startswith("## ") and record["teacher"] == "offline:textbook"
        assert {"topic", "audience", "style"} <= record.keys() and len(record["provenance"]["prompt_hash"]) == 16
        assert all(ast.parse(block) for block in CODE_BLOCK.findall(record["text"]))
    summary = dataset.manifest["summary"]["synth.textbook"]
    assert summary["teacher_note"].startswith("offline template teacher")
    assert 0 < summary["diversity"]["distinct_4gram_ratio"] < 1 and summary["diversity"]["embedding_clusters"]["clusters"] > 1
    assert summary["coverage"]["audiences"]["ratio"] == 1.0 and summary["code_blocks"]["total"] >= 2 * len(records)

    (out / dataset.shards[1].name).unlink()  # as if killed while writing shard 1
    second = cli("synth", "textbook", "--out", str(out), "--n", "40", "--batch-size", "16")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.splitlines()[-1])["llm"] == {
        "sent": 0, "succeeded": 0, "cached": 16, "retries": 0, "failed": 0, "prompt_tokens": 0,
        "completion_tokens": 0, "cost_usd": 0.0, "errors": {}, "by_endpoint": {}}
    assert sorted(r["id"] for r in Dataset(out).records()) == sorted(r["id"] for r in records)


def test_near_duplicate_sections_are_removed(tmp_path):
    register_offline("parrot", lambda prompt, sample: "## Loops\n\nThe same section every time, word for word.\n\n"
                                                      "```python\nfor i in range(3):\n    print(i)\n```\n")
    dataset = synth_textbook(TextbookParams(teacher="offline:parrot", n=10, batch_size=4), tmp_path / "b")
    assert len(dataset) == 1 and dataset.stats["dropped_near_duplicate"] == 9


def test_near_duplicates_keep_distinct_texts_and_drop_a_one_word_edit():
    lesson = " ".join(f"step {i}: add {i} to the total and print it." for i in range(30))
    near = NearDuplicates(threshold=0.8)
    assert not near.seen(lesson) and near.seen(lesson)
    assert near.seen(lesson.replace("step 7:", "stage 7:"))
    assert not near.seen("A stack keeps the last item on top: push adds one, pop takes it back off.")


def test_textbook_over_http_with_faults_and_a_budget_that_runs_out_then_resumes(tmp_path):
    out = tmp_path / "book"
    with FaultServer(plan="500,garbled", retry_after=0.01, **TEXTBOOK_TEACHER) as server:
        # $10 per 1M tokens: a worst-case request (~150 prompt + 1200 completion tokens) reserves ~$0.0135
        params = dict(teacher=server.url, model="teacher", n=12, batch_size=4, concurrency=4, prices=(10.0, 10.0))
        partial = synth_textbook(TextbookParams(**params, budget_usd=0.06), out)
        summary = partial.manifest["summary"]["synth.textbook"]
        assert summary["stopped"] == "budget exhausted" and summary["pending"] > 0
        assert 0 < len(partial) < 12 and summary["llm"]["cost_usd"] <= 0.06
        done = synth_textbook(TextbookParams(**params, budget_usd=1.0), out)
        stats = server.stats()
    assert len(done) == 12 and done.manifest["summary"]["synth.textbook"]["stopped"] is None
    assert stats.get("duplicates", 0) == 0 and stats["succeeded"] == 12
    assert stats["fault_500"] == stats["fault_garbled"] == 12


def test_textbook_cli_spreads_requests_over_several_teachers(cli, tmp_path):
    out = tmp_path / "book"
    with FaultServer(latency=0.02, **TEXTBOOK_TEACHER) as a, FaultServer(latency=0.02, **TEXTBOOK_TEACHER) as b:
        result = cli("synth", "textbook", "--out", str(out), "--n", "16", "--batch-size", "8", "--concurrency", "2",
                     "--model", "teacher", "--teacher", a.url, "--teacher", b.url)
        answered = [a.stats().get("succeeded", 0), b.stats().get("succeeded", 0)]
    assert result.returncode == 0, result.stderr
    assert min(answered) > 0 and sum(answered) == 16
    assert {record["teacher"] for record in Dataset(out).records()} == {a.url, b.url}
    assert TextbookParams(teacher=[f"{a.url},{b.url}"]).teacher == TextbookParams(teacher=[a.url, b.url]).teacher


def test_textbook_stage_runs_in_a_recipe(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\nstages:\n  - name: book\n    uses: synth.textbook\n    params: {n: 6, batch_size: 3}\n")
    result = cli("run", str(recipe), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert len(Dataset(tmp_path / "run" / "book")) == 6


BAD_ANSWERS = {
    "hangs": "### SOLUTION\n```python\ndef hangs(n: int) -> int:\n    \"\"\"Never returns.\"\"\"\n    while True:\n"
             "        n += 1\n```\n### TESTS\n```python\nassert hangs(1) == 2\n```",
    "wrong": "### SOLUTION\n```python\ndef wrong(n: int) -> int:\n    \"\"\"Adds one, badly.\"\"\"\n    return n + 2\n```\n"
             "### TESTS\n```python\nassert wrong(1) == 2\n```",
    "chatty": "Sure! Here is a function that does it: def chatty(): pass",
}


@needs_sandbox
def test_exercises_are_verified_in_the_sandbox_and_rejections_counted(tmp_path):
    def teacher(prompt: str, sample: int) -> str:
        name = prompt.split("Function name: ")[1].split()[0]
        return BAD_ANSWERS.get(name) or write_exercise(prompt, sample)

    register_offline("mixed", teacher)
    names = tmp_path / "names.txt"
    names.write_text("loops: hangs\nmath: wrong\nstrings: chatty\nstrings: count_vowels\nlists: sum_of_even_numbers\n"
                     "algorithms: binary_search\n")
    dataset = synth_exercises(ExercisesParams(teacher="offline:mixed", names=str(names), n=6, timeout=2), tmp_path / "ex")
    summary = dataset.manifest["summary"]["synth.exercises"]
    assert summary["rejected"] == {"timed_out": 1, "tests_failed": 1, "no_parse": 1}
    assert summary["records"] == summary["verified"] == 3 and summary["acceptance_rate"] == 0.5
    assert summary["coverage"]["names"] == {"covered": 3, "of": 6, "ratio": 0.5}
    for record in dataset.records():
        assert record["text"] == record["prompt"] + record["completion"] and record["prompt"].rstrip().endswith('"""')


@needs_sandbox
def test_exercises_cli_offline(cli, tmp_path):
    result = cli("synth", "exercises", "--out", str(tmp_path / "ex"), "--n", "30", "--batch-size", "15")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["records"] >= 28 and summary["acceptance_rate"] >= 0.93
    assert summary["coverage"]["names"]["of"] == 30


@needs_sandbox
def test_exercises_verified_on_ray_equal_local_and_resume_per_shard(tmp_path, ray_cluster):
    params = ExercisesParams(n=12, batch_size=3)
    local = synth_exercises(params, tmp_path / "local")
    on_ray = synth_exercises(params, tmp_path / "ray", workers=2, executor="ray")
    assert len(local.shards) == 4 and len(local) >= 10
    assert list(local.records()) == list(on_ray.records()) and local.stats == on_ray.stats
    # a killed run: the manifest and one shard gone; the re-run redoes that shard only, from the reply cache
    (tmp_path / "ray" / "manifest.json").unlink()
    on_ray.shard_path(on_ray.shards[2]).unlink()
    kept = on_ray.shard_path(on_ray.shards[0]).stat().st_mtime_ns
    again = synth_exercises(params, tmp_path / "ray", workers=2, executor="ray")
    assert again.shard_path(again.shards[0]).stat().st_mtime_ns == kept
    assert list(again.records()) == list(local.records())
    assert again.manifest["summary"]["synth.exercises"]["llm"]["sent"] == 0

"""`syllabus eval grade`: score parsing, retries of score-less replies, ungraded counted, the
offline stand-in said plainly, and the CLI against a real HTTP judge server with faults."""

from __future__ import annotations

import json

import pytest

from syllabus.benchmarks import load_benchmark
from syllabus.errors import BadInput
from syllabus.eval.grade import MAX_ATTEMPTS, OFFLINE_NOTE, grade_file, grade_with_judge, parse_score, read_rubric
from syllabus.llm import LLMClient, register_offline
from syllabus.testing.fault_server import FaultServer


@pytest.fixture(scope="module")
def problems():
    return load_benchmark("unconventional")[:4]


def write_samples(path, problems, passed=None):
    """Canonical completions for even problems, `pass` for odd ones; with `passed`, a results file."""
    lines = []
    for i, p in enumerate(problems):
        record = {"task_id": p.task_id, "completion": p.canonical_solution if i % 2 == 0 else "    pass\n"}
        if passed is not None:
            record |= {"passed": i % 2 == 0, "result": "passed" if i % 2 == 0 else "failed: AssertionError"}
        lines.append(json.dumps(record) + "\n")
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("reply, score", [
    ("Right approach, one slip.\nSCORE: 8", 8.0),
    ("**Score:** 7/10", 7.0),
    ("score = 9.5", 9.5),
    ("First I thought SCORE: 3, but on reflection\nSCORE: 6", 6.0),
    ("SCORE: 0", 0.0),
    ("SCORE: 11", None),
    ("I would give it an 8 out of 10.", None),
    ("SCORE: N", None),
    ("", None),
])
def test_parse_score(reply, score):
    assert parse_score(reply) == score


def test_score_less_replies_are_asked_again_then_counted_ungraded(problems):
    asked = []

    def judge(prompt: str, sample: int) -> str:
        asked.append((prompt, sample))
        name = next(p.entry_point for p in problems if f"def {p.entry_point}(" in prompt)
        if name == problems[0].entry_point:
            return "Correct and complete.\nSCORE: 10"
        if name == problems[1].entry_point:  # a score only on the second ask
            return "Hmm." if sample == 0 else "The approach is right but the loop is off by one.\n**Score: 7/10**"
        if name == problems[2].entry_point:
            return "A fine attempt, I'd say."  # never a score
        return "SCORE: 42"  # out of range is no score either

    register_offline("test-grade-judge", judge)
    solutions = [(p, "    return 1\n") for p in problems]
    grades = grade_with_judge(LLMClient("offline:test-grade-judge"), "RUBRIC", solutions)

    assert [g.score for g in grades] == [10.0, 7.0, None, None]
    assert [g.attempts for g in grades] == [1, 2, MAX_ATTEMPTS, MAX_ATTEMPTS]
    assert grades[1].justification == "The approach is right but the loop is off by one."
    assert "no parseable score" in grades[2].justification and "A fine attempt" in grades[2].justification
    assert len(asked) == 1 + 2 + 2 * MAX_ATTEMPTS
    # the judge reads the problem and the solution
    assert all("    return 1" in prompt and "## Problem" in prompt for prompt, _ in asked)


def test_offline_judge_is_the_test_result_and_says_so(tmp_path, problems, capsys):
    samples = write_samples(tmp_path / "results.jsonl", problems, passed=True)
    summary = grade_file(samples, judge="offline")
    assert summary["note"] == OFFLINE_NOTE and OFFLINE_NOTE in capsys.readouterr().err
    assert summary["mean_score"] == 5.0 and summary["pass@1"] == 0.5
    assert (summary["samples"], summary["graded"], summary["ungraded"]) == (4, 4, 0)
    graded = [json.loads(line) for line in (tmp_path / "results.jsonl_graded.jsonl").read_text().splitlines()]
    assert [g["score"] for g in graded] == [10.0, 0.0, 10.0, 0.0]
    assert all(g["judge"] == "offline" and g["justification"] == OFFLINE_NOTE for g in graded)


def test_samples_without_verdicts_are_executed_first(tmp_path, problems):
    register_offline("test-grade-seven", lambda prompt, sample: "Half right.\nSCORE: 7")
    samples = write_samples(tmp_path / "samples.jsonl", problems)
    summary = grade_file(samples, judge="offline:test-grade-seven", out=tmp_path / "graded.jsonl")
    assert summary["pass@1"] == 0.5 and summary["mean_score"] == 7.0 and summary["llm"]["sent"] == 4
    graded = [json.loads(line) for line in (tmp_path / "graded.jsonl").read_text().splitlines()]
    assert [g["passed"] for g in graded] == [True, False, True, False]
    assert all(g["graded"] and g["justification"] == "Half right." for g in graded)


def test_rubric_file_is_packaged_and_bad_ones_are_refused(tmp_path):
    assert "partial credit" in read_rubric(None).lower()
    (tmp_path / "empty.md").write_text("  \n")
    with pytest.raises(BadInput, match="empty"):
        read_rubric(tmp_path / "empty.md")
    with pytest.raises(BadInput, match="no such rubric"):
        read_rubric(tmp_path / "missing.md")


def test_cli_grades_through_an_http_judge_with_faults_and_cache(tmp_path, cli, problems):
    samples = write_samples(tmp_path / "samples.jsonl", problems, passed=True)
    rubric = tmp_path / "rubric.md"
    rubric.write_text("Grade it.")
    with FaultServer(plan="429") as server:
        args = ("eval", "grade", "--samples", str(samples), "--judge", server.url, "--rubric", str(rubric))
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.splitlines()[-1])
        # the server echoes the question, which holds no score: every solution is asked
        # MAX_ATTEMPTS times, then counted as ungraded, never given a guessed score
        assert (summary["samples"], summary["graded"], summary["ungraded"]) == (4, 0, 4)
        assert summary["mean_score"] is None and summary["pass@1"] == 0.5
        assert summary["llm"]["retries"] == 4 * MAX_ATTEMPTS and server.stats()["distinct"] == 4 * MAX_ATTEMPTS
        sent = server.stats()["requests"]

        # a re-run finds every reply in the cache and sends nothing
        rerun = grade_file(samples, judge=server.url, rubric_path=rubric)
        assert server.stats()["requests"] == sent and rerun["llm"]["sent"] == 0 and rerun["ungraded"] == 4

    missing = cli("eval", "grade", "--samples", str(samples), "--judge", "offline", "--rubric", str(tmp_path / "nope.md"))
    assert missing.returncode == 2 and "nope.md: no such rubric file" in missing.stderr and "Traceback" not in missing.stderr

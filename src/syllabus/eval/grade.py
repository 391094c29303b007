"""`syllabus eval grade`: a judge scores how well each solution understands its problem, 0 to 10.

phi-1 graded its models' solutions to 50 unconventional problems with GPT-4, which gave credit for
the right approach and not only for passing tests. Here the judge is any `syllabus.llm` endpoint
(so it has the teacher client's cache, retries and budget). It reads a rubric (an editable
Markdown file; `grade_rubric.md` beside this module by default), the problem and the solution, and
must end its reply with a line `SCORE: <0-10>`. A reply without a parseable score is asked again,
as a new sample with some temperature; after MAX_ATTEMPTS replies without one, the solution is
recorded as ungraded and counted, never given a guessed score.

`--judge offline` uses no model: the test result stands in for the judge's score (10 if the tests
passed, else 0), and the output says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from syllabus.benchmarks import Problem
from syllabus.console import console
from syllabus.data.files import write_jsonl
from syllabus.errors import BadInput
from syllabus.eval.run import DEFAULT_TIMEOUT, execute, load_problems, read_samples
from syllabus.eval.run import score as pass_scores
from syllabus.llm import LLMClient
from syllabus.llm.spend import SpendParams

OFFLINE = "offline"
OFFLINE_NOTE = ("offline judge: no model graded these solutions; the score is the test result "
                "(10 if the tests passed, else 0)")
MAX_ATTEMPTS = 3
MAX_REPLY_TOKENS = 400
REPLY_FORMAT = ("End your reply with one line of the form `SCORE: N`, where N is your score, "
                "a whole number from 0 to 10.")
SCORE_LINE = re.compile(r"score\s*[:=]\s*(\d+(?:\.\d+)?)\s*(?:/\s*10\b)?", re.IGNORECASE)


@dataclass(frozen=True)
class Grade:
    score: float | None  # None: ungraded
    justification: str
    attempts: int  # judge replies read (0 for the offline stand-in)


def parse_score(reply: str) -> float | None:
    """The last `SCORE: N` (or `Score = N/10`, in Markdown bold or not) of a reply, if in 0..10."""
    matches = SCORE_LINE.findall(reply.replace("*", ""))
    if not matches:
        return None
    value = float(matches[-1])
    return value if 0 <= value <= 10 else None


def justification(reply: str) -> str:
    """The reply without its score line(s): the judge's reasons."""
    lines = [line for line in reply.strip().splitlines() if not SCORE_LINE.search(line.replace("*", ""))]
    return "\n".join(lines).strip()[:1000]


def judge_messages(rubric: str, problem: Problem, completion: str) -> list[dict[str, str]]:
    task = (f"## Problem\n```python\n{problem.prompt.strip()}\n```\n\n"
            f"## Student's code\n```python\n{(problem.prompt + completion).strip()}\n```\n\n{REPLY_FORMAT}")
    return [{"role": "system", "content": rubric}, {"role": "user", "content": task}]


def grade_with_judge(client: LLMClient, rubric: str, solutions: Sequence[tuple[Problem, str]],
                     attempts: int = MAX_ATTEMPTS) -> list[Grade]:
    """One Grade per (problem, completion); replies without a score are asked again."""
    conversations = [judge_messages(rubric, problem, completion) for problem, completion in solutions]
    grades: list[Grade | None] = [None] * len(solutions)
    last_reply = [""] * len(solutions)
    pending = list(range(len(solutions)))
    for attempt in range(attempts):
        if not pending:
            break
        # The first ask is greedy; a retry must be a new sample (a new cache key) and may differ.
        replies = client.chat_many([conversations[i] for i in pending], samples=[attempt] * len(pending),
                                   description=f"grading, attempt {attempt + 1}",
                                   temperature=0.0 if attempt == 0 else 0.7, max_tokens=MAX_REPLY_TOKENS)
        unparsed = []
        for i, reply in zip(pending, replies):
            if not reply.ok:  # the client already retried; asking again would only spend more
                grades[i] = Grade(None, f"judge error: {reply.error}", attempt + 1)
                continue
            score = parse_score(reply.text)
            if score is None:
                last_reply[i] = reply.text
                unparsed.append(i)
            else:
                grades[i] = Grade(score, justification(reply.text), attempt + 1)
        pending = unparsed
    for i in pending:
        grades[i] = Grade(None, f"no parseable score in {attempts} replies; the last began "
                                f"{last_reply[i][:200]!r}", attempts)
    return grades


def read_rubric(path: str | Path | None) -> str:
    if path is None:
        return (resources.files("syllabus.eval") / "grade_rubric.md").read_text(encoding="utf-8")
    try:
        rubric = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise BadInput("no such rubric file", file=path) from None
    except UnicodeDecodeError:
        raise BadInput("rubric is not UTF-8 text", file=path) from None
    if not rubric.strip():
        raise BadInput("rubric is empty", file=path)
    return rubric


def grade_file(samples_path: str | Path, *, judge: str, rubric_path: str | Path | None = None,
               benchmark: str = "unconventional", problems_path: str | Path | None = None,
               out: str | Path | None = None, model: str | None = None, concurrency: int = 8,
               cache_dir: str | Path | None = None, spend: SpendParams | None = None,
               workers: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Grade a samples file (or the results file of `eval execute`, whose verdicts are reused).

    Writes every sample back with `score`, `graded`, `justification` and `judge` (default
    SAMPLES_graded.jsonl) and returns the summary: mean score of the graded samples next to pass@1.
    """
    rubric = read_rubric(rubric_path)
    out = Path(out) if out else Path(f"{samples_path}_graded.jsonl")
    client = None if judge == OFFLINE else LLMClient(  # a budget it cannot price is refused before any work
        judge, model=model, concurrency=concurrency, cache_dir=cache_dir or f"{out}.llm-cache",
        **(spend or SpendParams()).client_options())
    samples = read_samples(samples_path, load_problems(benchmark, problems_path))
    if all(isinstance(s.record.get("passed"), bool) for s in samples):
        results = [s.record for s in samples]
    else:
        results = execute(samples, workers=workers, timeout=timeout)

    summary: dict = {"benchmark": str(problems_path or benchmark), "judge": judge}
    if client is None:
        grades = [Grade(10.0 if r["passed"] else 0.0, OFFLINE_NOTE, 0) for r in results]
        summary["note"] = OFFLINE_NOTE
        console.print(f"[yellow]{OFFLINE_NOTE}[/yellow]", soft_wrap=True)
    else:
        grades = grade_with_judge(client, rubric, [(s.problem, s.record["completion"]) for s in samples])
        summary["model"] = client.model
        summary["llm"] = client.ledger.as_dict()
    write_jsonl(out, [{**r, "score": g.score, "graded": g.score is not None, "justification": g.justification,
                       "judge": judge} for r, g in zip(results, grades)])

    scores = [g.score for g in grades if g.score is not None]
    if len(scores) < len(grades):
        console.print(f"[yellow]{len(grades) - len(scores)} of {len(grades)} solutions ungraded "
                      "(no parseable score or judge error); see `justification` in the output[/yellow]")
    console.print(f"{len(grades)} solutions graded by {judge} -> {out}")
    return summary | {
        "samples": len(grades),
        "graded": len(scores),
        "ungraded": len(grades) - len(scores),
        "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
        "pass@1": pass_scores(results, ks=(1,)).get("pass@1"),
    }

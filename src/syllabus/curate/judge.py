"""Educational-value judges and `annotate`: rate a stratified sample of a dataset 0-5.

Judges: an LLM behind `syllabus.llm.LLMClient` (any OpenAI-compatible endpoint or an offline
backend) asked the phi-1 question with an editable prompt file, and an offline heuristic judge
over structural code features (a demo and a baseline). A reply without a parseable score is
retried with a fresh sample, then recorded as unlabeled (score null) and counted, never guessed.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syllabus.config import StageContext
from syllabus.console import console, track
from syllabus.curate import LABELS_FILE
from syllabus.curate.features import code_features
from syllabus.data.dataset import Dataset
from syllabus.data.files import iter_jsonl, write_jsonl
from syllabus.errors import BadInput
from syllabus.llm.spend import SpendParams
from syllabus.summaries import AnnotateSummary

DEFAULT_PROMPT = Path(__file__).with_name("judge_prompt.md")
SCORE_LINE = re.compile(r"score\W{0,3}\s*([0-5])\b", re.IGNORECASE)
REASON_LINE = re.compile(r"reason\W{0,3}\s*(.+)", re.IGNORECASE)
MAX_SNIPPET_CHARS = 6000  # long files are judged on their head, as the classifier embeds their head


@dataclass
class Judgement:
    score: int | None
    reason: str = ""
    error: str | None = None


def parse_judgement(reply: str | None) -> Judgement:
    if reply is None:
        return Judgement(None, error="no reply")
    match = SCORE_LINE.search(reply)
    if not match:
        return Judgement(None, error=f"no score in reply: {reply[:80]!r}")
    reason = REASON_LINE.search(reply)
    return Judgement(int(match.group(1)), reason.group(1).strip() if reason else "")


def heuristic_score(text: str) -> Judgement:
    """Points for what the rubric rewards: documentation, self-containedness, real computation."""
    f = code_features(text)
    if f["generated_marker"] or f["log_lines"] < 1.1 or (f["parses"] and f["literal_data_frac"] > 0.6):
        return Judgement(0, "generated, trivial or data-only")
    points = {
        "documented": f["documented_defs_frac"] >= 0.5 or f["docstring_frac"] > 0.08,
        "self-contained": f["defined_used_frac"] >= 0.6 and f["import_frac"] < 0.15,
        "real computation": f["control_flow_frac"] >= 0.12 and (f["log_functions"] > 0 or f["log_classes"] > 0),
        "explained": f["comment_frac"] >= 0.08 or f["doctest_lines"] > 0 or f["main_guard"] > 0,
    }
    score = 1 + sum(points.values())
    if not f["parses"] or f["long_line_frac"] > 0.2 or f["stub_frac"] > 0.5:
        score -= 1
    has = [name for name, ok in points.items() if ok]
    return Judgement(max(0, min(score, 5)), ", ".join(has) or "boilerplate or glue")


class HeuristicJudge:
    name = "heuristic"
    model = "heuristic-v1"
    prompt_hash = None

    def judge_many(self, texts: Sequence[str]) -> list[Judgement]:
        return [heuristic_score(t) for t in texts]


class LLMJudge:
    """The judge prompt through an LLMClient; unparseable replies are retried `retries` times."""

    def __init__(self, endpoint: str, *, model: str | None = None, prompt_file: str | Path | None = None,
                 retries: int = 2, concurrency: int = 8, cache_dir: str | Path | None = None,
                 spend: SpendParams | None = None):
        from syllabus.llm import LLMClient

        path = Path(prompt_file) if prompt_file else DEFAULT_PROMPT
        if not path.is_file():
            raise BadInput(f"judge prompt file not found: {path}")
        self.template = path.read_text()
        if "{code}" not in self.template:
            raise BadInput("judge prompt has no {code} placeholder", file=path)
        self.prompt_hash = hashlib.sha256(self.template.encode()).hexdigest()[:16]
        self.client = LLMClient(endpoint, model, concurrency=concurrency, cache_dir=cache_dir,
                                **(spend or SpendParams()).client_options())
        self.name, self.model, self.retries = endpoint, self.client.model, retries

    def judge_many(self, texts: Sequence[str]) -> list[Judgement]:
        prompts = [[{"role": "user", "content": self.template.replace("{code}", t[:MAX_SNIPPET_CHARS])}]
                   for t in texts]
        results: list[Judgement] = [Judgement(None, error="not asked")] * len(texts)
        pending = list(range(len(texts)))
        for attempt in range(self.retries + 1):
            # a new sample index per attempt: a retry must not be answered from the reply cache
            replies = self.client.chat_many([prompts[i] for i in pending], samples=[attempt] * len(pending),
                                            description="judge", temperature=0.0 if attempt == 0 else 0.7)
            for i, reply in zip(pending, replies):
                results[i] = parse_judgement(reply.text) if reply.text is not None else Judgement(
                    None, error=reply.error or "no reply")
            pending = [i for i in pending if results[i].score is None]
            if not pending:
                break
        return results


def get_judge(spec: str, **options: Any):
    """'heuristic', or an LLM endpoint (http(s)://..., offline:NAME, local:DIR)."""
    if spec == "heuristic":
        return HeuristicJudge()
    return LLMJudge(spec, **options)


def stratified_sample(data: Dataset, n: int, seed: int = 0) -> list[dict]:
    """n records spread over sources in proportion to their sizes (at least one from each).

    A record's rank within its source is a hash of (seed, id), so the sample is reproducible and
    needs one pass over ids plus one to fetch the chosen texts.
    """
    strata: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record in data.records():
        key = hashlib.sha1(f"{seed}:{record['id']}".encode()).hexdigest()
        strata[str(record.get("source") or record.get("repo") or "")].append((key, record["id"]))
    total = sum(len(v) for v in strata.values())
    n = min(n, total)
    quota = {s: max(1, round(n * len(v) / total)) for s, v in strata.items()}
    while sum(quota.values()) > n:  # rounding overshoot: trim the largest quotas
        quota[max(quota, key=quota.get)] -= 1
    chosen = {rid for s, v in strata.items() for _, rid in sorted(v)[: quota[s]]}
    return [r for r in data.records() if r["id"] in chosen]


def annotate(data_dir: str | Path, judge, n: int, out_labels: str | Path, *, seed: int = 0,
             batch_size: int = 64) -> AnnotateSummary:
    """Judge a stratified sample of n records into a labels JSONL; re-running resumes."""
    out_labels = Path(out_labels)
    rows = [row for _, row in iter_jsonl(out_labels)] if out_labels.exists() else []
    done = {row["id"] for row in rows}
    todo = [r for r in stratified_sample(Dataset(data_dir), n, seed) if r["id"] not in done]
    provenance = {"judge": judge.name, "model": judge.model, "prompt_sha256": judge.prompt_hash}
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    for batch in track(batches, "judging"):
        for record, verdict in zip(batch, judge.judge_many([r["text"] for r in batch])):
            rows.append({"id": record["id"], "text": record["text"], "score": verdict.score,
                         "reason": verdict.reason, "source": record.get("source") or record.get("path", ""),
                         **({"error": verdict.error} if verdict.error else {}), **provenance})
        write_jsonl(out_labels, rows)  # whole file, atomically: a killed run loses at most one batch
    unlabeled = sum(row["score"] is None for row in rows)
    if unlabeled:
        console.print(f"[yellow]{unlabeled} record(s) unlabeled: the judge gave no parseable score[/]")
    histogram = {s: sum(row["score"] == s for row in rows) for s in range(6)}
    return AnnotateSummary(labels=len(rows), labelled=len(rows) - unlabeled, unlabeled=unlabeled, resumed=len(done),
                           histogram=histogram, **provenance)


class AnnotateParams(SpendParams):
    judge: str = "heuristic"
    n: int = 200
    model: str | None = None
    prompt: Path | None = None
    seed: int = 0


def annotate_stage(params: AnnotateParams, inputs: dict[str, Path | list[Path]], out: Path,
                   ctx: StageContext) -> AnnotateSummary:
    options = {} if params.judge == "heuristic" else {"model": params.model, "prompt_file": params.prompt,
                                                      "cache_dir": ctx.run_dir / "cache" / "llm", "spend": params}
    return annotate(inputs["data"], get_judge(params.judge, **options), params.n, Path(out) / LABELS_FILE,
                    seed=params.seed)

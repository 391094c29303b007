"""The loop both synthesis stages share: jobs in fixed batches, one output shard per batch.

Batch i always holds the same jobs, so a re-run skips the shards already written and redoes a
shard that has `pending` requests (ones that failed, ran out of budget or were interrupted); the
reply cache answers everything that had succeeded, so nothing is re-sent or re-billed and no
accepted record is lost. When the budget runs out the stage stops after that batch and still
writes a complete (partial) dataset; a re-run with a larger budget continues.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from syllabus.console import console
from syllabus.data.dataset import Dataset, DatasetWriter, OutputFormat, _read_shard_file, record_id
from syllabus.llm import BUDGET_EXHAUSTED, LLMClient, Reply, split_endpoints
from syllabus.llm.spend import SpendParams
from syllabus.scale import map_shards
from syllabus.synth.diversity import NearDuplicates, diversity_summary
from syllabus.synth.offline import NOTE as OFFLINE_NOTE


@dataclass
class Job:
    """One request to the teacher and the constraints it carries (topic, audience, function name...)."""

    prompt: str
    sample: int
    meta: dict[str, Any] = field(default_factory=dict)


# (jobs, replies that came back, stats to count drops in) -> accepted records (without id/teacher)
AcceptBatch = Callable[[list[Job], list[Reply], Counter], list[dict]]


@dataclass(frozen=True)
class AcceptTask:
    accept: AcceptBatch
    shard: str
    jobs: list[Job]
    replies: list[Reply]


def accept_batch(task: AcceptTask) -> tuple[str, list[dict], Counter]:
    """Run the acceptor over one batch's answers; a task of the executor."""
    stats: Counter = Counter()
    return task.shard, task.accept(task.jobs, task.replies, stats), stats


def synthesize(
    jobs: list[Job],
    out: str | Path,
    *,
    client: LLMClient,
    stage: str,
    params: dict[str, Any],
    sampling: dict[str, Any],
    accept: AcceptBatch,
    batch_size: int,
    dedup_threshold: float,
    format: str = "jsonl.zst",
    system: str | None = None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> tuple[DatasetWriter, str | None]:
    """Run every batch not yet written; returns the writer (close it with a summary) and why the
    run stopped early (None if it did not).

    The teacher is asked from here, one batch after another; accepting the answers (for exercises,
    running them in the sandbox) runs on the executor, `workers` batches at a time, one task each.
    Shards are then written in batch order, so the near-duplicate filter sees the same sequence
    whatever runs the tasks."""
    writer = DatasetWriter(out, stage=stage, params=params, format=format)
    done = writer.done_shards()
    near = NearDuplicates(dedup_threshold)
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    stopped = None
    asked: list[tuple[Counter, AcceptTask]] = []

    def write_asked() -> None:
        accepted = {shard: (records, stats) for shard, records, stats in map_shards(
            [task for _, task in asked], accept_batch, workers=workers, executor=executor, address=address,
            description=f"{stage}: accept")}
        for stats, task in asked:
            records, accept_stats = accepted[task.shard]
            stats.update(accept_stats)
            kept = []
            for record in records:
                record["id"] = record_id(record["text"])
                if near.seen(record["text"]):
                    stats["dropped_near_duplicate"] += 1
                    continue
                kept.append(record)
            stats["accepted"] = len(kept)
            writer.write_shard(task.shard, kept, dict(stats))
        asked.clear()

    for index, batch in enumerate(batches):
        name = writer.shard_name(index)
        if name in done and not done[name].stats.get("pending"):
            write_asked()
            for record in _read_shard_file(writer.path / name, writer.format):
                near.seen(record["text"])
            continue
        conversations = [([{"role": "system", "content": system}] if system else []) +
                         [{"role": "user", "content": job.prompt}] for job in batch]
        replies = client.chat_many(conversations, samples=[job.sample for job in batch],
                                   description=f"{stage} {index + 1}/{len(batches)}", **sampling)
        stats: Counter = Counter(total=len(batch))
        answered = [(job, reply) for job, reply in zip(batch, replies) if reply.ok]
        stats["pending"] = len(batch) - len(answered)
        asked.append((stats, AcceptTask(accept, name, [j for j, _ in answered], [r for _, r in answered])))
        if any(reply.error == BUDGET_EXHAUSTED for reply in replies):
            stopped = BUDGET_EXHAUSTED
            console.print(f"[yellow]{stage}: budget exhausted after batch {index + 1}/{len(batches)}; "
                          "re-run with a larger --budget-usd to continue (nothing is re-sent)[/yellow]")
            break
        if len(asked) >= workers:
            write_asked()
    write_asked()
    return writer, stopped


class TeacherParams(SpendParams):
    """What both synthesis stages take: who the teacher is, how much to ask and how to ask."""

    teacher: str = Field("offline:textbook", description="http(s) URL (or a list of them: the requests are "
                                                          "spread over the servers), offline:NAME or local:DIR")
    model: str | None = None
    n: int = Field(100, ge=1, description="prompts to send")
    max_repeats: int = Field(2, ge=1, description="samples of one distinct prompt at most: a stage whose n "
                                                   "needs more stops before sending")
    axes: dict[str, list[str]] = Field({}, description="more constraints, each a prompt line: every prompt "
                                                       "takes one value of each ({difficulty: [easy, hard]})")
    seeds: str | None = Field(None, description="dataset dir whose code snippets seed the prompts, one each "
                                                "(or the stage input `seeds`)")
    seed_limit: int = Field(100_000, ge=1, description="snippets read from the seeds dataset at most")
    concurrency: int = Field(8, ge=1, description="requests in flight at once, per teacher server")
    temperature: float = Field(0.8, ge=0)
    max_tokens: int = Field(1024, ge=1)
    batch_size: int = Field(64, ge=1, description="prompts per output shard")
    seed: int = 0
    dedup_threshold: float = Field(0.8, gt=0, le=1)
    cache_dir: str | None = Field(None, description="reply cache (default: OUT/llm-cache)")
    format: OutputFormat = None

    @field_validator("teacher", mode="before")
    @classmethod
    def several_teachers(cls, value: Any) -> Any:
        """A list of servers is kept as LLMClient reads it: one comma-separated string."""
        return ",".join(split_endpoints(value)) if isinstance(value, list) else value


def make_client(params: TeacherParams, out: str | Path) -> LLMClient:
    if params.teacher.startswith("offline:"):
        console.print(f"[yellow]teacher {params.teacher}: {OFFLINE_NOTE}[/yellow]", soft_wrap=True)
    return LLMClient(params.teacher, model=params.model, concurrency=params.concurrency,
                     cache_dir=params.cache_dir or Path(out) / "llm-cache", **params.client_options())


def base_summary(dataset: Dataset, params: TeacherParams, client: LLMClient, stopped: str | None,
                 prompts: dict[str, Any]) -> dict[str, Any]:
    """Counts, acceptance, drop reasons, diversity and spend: what every synthesis manifest reports."""
    stats = dataset.stats
    answered = stats.get("total", 0) - stats.get("pending", 0)
    texts = [record["text"] for record in dataset.records()]
    summary = {
        "teacher": params.teacher,
        "model": client.model,
        "requested": params.n,
        "records": len(dataset),
        "acceptance_rate": round(len(dataset) / answered, 4) if answered else 0.0,
        "pending": stats.get("pending", 0),
        "rejected": {k.removeprefix("dropped_"): v for k, v in sorted(stats.items()) if k.startswith("dropped_")},
        "diversity": diversity_summary(texts),
        "prompts": prompts,
        "llm": client.ledger.as_dict(),
        "stopped": stopped,
    }
    if params.teacher.startswith("offline:"):
        summary["teacher_note"] = OFFLINE_NOTE
    return summary


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers a run prints and a recipe's state keeps."""
    keys = ("records", "acceptance_rate", "rejected", "coverage", "diversity", "llm", "stopped")
    return {k: summary[k] for k in keys if k in summary}

"""Synthetic textbook sections: a topic tree crossed with audiences and styles, one prompt each.

Diversity comes from the constraints, as in the paper: every prompt names one leaf of the topic
tree, one audience and one style (`topics.yaml`, or the user's own file). A section is kept when it
has at least one code block and every code block parses; near-duplicates are removed with MinHash.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from syllabus.config import StageContext, load_yaml, validate
from syllabus.data.dataset import Dataset
from syllabus.llm import Reply
from syllabus.summaries import TextbookSummary, dataset_summary
from syllabus.synth.batches import Job, TeacherParams, base_summary, make_client, synthesize
from syllabus.synth.diversity import coverage
from syllabus.synth.prompts import PromptSpace, constraint_axes, corpus_seeds, render_with_constraints

PROMPT = """Write one section of a Python textbook.
Topic: {topic}
Audience: {audience}
Style: {style}
{constraints}
Write for that audience, in that style, about that topic only. Use markdown: start with a "## " heading,
explain the idea in clear prose, and include at least one complete, runnable Python example in a
```python code block (show what it prints). 300 to 700 words."""

CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


class TextbookParams(TeacherParams):
    teacher: str = "offline:textbook"
    max_tokens: int = 1200
    topics: str | None = Field(None, description="topic tree YAML (default: the packaged topics.yaml)")


class TopicFile(BaseModel):
    topics: dict[str, Any]
    audiences: list[str] = Field(min_length=1)
    styles: list[str] = Field(min_length=1)


def topic_file(path: str | Path | None) -> Path:
    return Path(path) if path else Path(str(resources.files("syllabus.synth") / "topics.yaml"))


def _leaves(tree: Any, path: tuple[str, ...]) -> list[str]:
    if isinstance(tree, dict):
        return [leaf for key, sub in tree.items() for leaf in _leaves(sub, (*path, str(key)))]
    if isinstance(tree, list):
        return [leaf for item in tree for leaf in _leaves(item, path)]
    if tree is None:
        return [" > ".join(path)]
    return [" > ".join((*path, str(tree)))]


def load_topics(path: str | Path | None = None) -> tuple[list[str], list[str], list[str]]:
    """(leaf topic paths, audiences, styles) of a topic YAML file."""
    path = topic_file(path)
    spec = validate(TopicFile, load_yaml(path), file=path)
    return _leaves(spec.topics, ()), spec.audiences, spec.styles


def textbook_space(topics: list[str], audiences: list[str], styles: list[str], params: TextbookParams,
                   seeds: str | Path | None = None) -> PromptSpace:
    """Topic leaf x audience x style x the recipe's extra axes (x corpus snippets, when seeded)."""
    seeds = seeds or params.seeds
    return PromptSpace({"topics": [{"topic": t} for t in topics], "audiences": [{"audience": a} for a in audiences],
                        "styles": [{"style": s} for s in styles], **constraint_axes(params.axes),
                        "seeds": corpus_seeds(seeds, limit=params.seed_limit) if seeds else None})


def check_section(text: str) -> tuple[str | None, int]:
    """(rejection reason or None, number of code blocks)."""
    blocks = CODE_BLOCK.findall(text)
    if not blocks:
        return "no_code", 0
    for block in blocks:
        try:
            ast.parse(block)
        except (SyntaxError, ValueError):
            return "syntax_error", len(blocks)
    return None, len(blocks)


def accept_sections(jobs: list[Job], replies: list[Reply], stats: Counter) -> list[dict]:
    records = []
    for job, reply in zip(jobs, replies):
        text = reply.text.strip() + "\n"
        reason, blocks = check_section(text)
        stats["code_blocks"] += blocks
        if reason:
            stats[f"dropped_{reason}"] += 1
            continue
        records.append({"text": text, **job.meta, "code_blocks": blocks, "source": "synth.textbook",
                        "teacher": reply.provenance["endpoint"], "provenance": reply.provenance})
    return records


def synth_textbook(params: TextbookParams, out: str | Path, *, seeds: str | Path | None = None) -> Dataset:
    """Sections into dataset dir `out`; `seeds`: a dataset dir whose snippets seed the prompts."""
    topics, audiences, styles = load_topics(params.topics)
    space = textbook_space(topics, audiences, styles, params, seeds)
    jobs = space.jobs(PROMPT, params.n, seed=params.seed, max_repeats=params.max_repeats, stage="synth.textbook",
                      render=render_with_constraints)
    client = make_client(params, out)
    writer, stopped = synthesize(
        jobs, out, client=client, stage="synth.textbook", params=params.model_dump(mode="json"),
        sampling={"temperature": params.temperature, "max_tokens": params.max_tokens},
        accept=accept_sections, batch_size=params.batch_size, dedup_threshold=params.dedup_threshold,
        format=params.format or "jsonl.zst")
    dataset = writer.close()
    records = list(dataset.records())
    summary = TextbookSummary(
        **base_summary(dataset, params, client, stopped, space.summary(params.n, params.max_repeats)),
        code_blocks={"total": dataset.stats.get("code_blocks", 0),
                     "in_kept_sections": sum(r["code_blocks"] for r in records)},
        coverage={"topics": coverage((r["topic"] for r in records), topics),
                  "audiences": coverage((r["audience"] for r in records), audiences),
                  "styles": coverage((r["style"] for r in records), styles)})
    return writer.close({summary.kind: summary.dump()})


def textbook_stage(params: TextbookParams, inputs: dict, out: Path, ctx: StageContext) -> TextbookSummary:
    if inputs.get("vocabulary") and not params.topics:  # a synth.expand stage's grown tree
        params = params.model_copy(update={"topics": str(Path(inputs["vocabulary"]) / "topics.yaml")})
    return dataset_summary(synth_textbook(params, out, seeds=inputs.get("seeds")).manifest)

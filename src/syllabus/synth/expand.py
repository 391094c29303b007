"""Teacher-expanded vocabularies (`synth.expand`): the teacher splits each leaf of the topic tree
into subtopics, breadth first, until the tree has `target_topics` leaves, then lists function names
for each leaf until there are `target_names`. A few thousand cheap requests buy the vocabulary that
a million-prompt synthesis stage needs to ask distinct questions.

The stage writes two editable files into its dir, `topics.yaml` (the grown tree, with the source
file's audiences, styles and axes) and `function_names.txt` (`topic: name` lines); a user reviews
and edits them before the big spend (`syllabus run RECIPE --only NAME`, then edit, then run the
rest: a finished stage is not re-run). synth.textbook and synth.exercises read them from their
input `vocabulary`. Every reply is in the stage's reply cache, so a killed or re-run expansion
re-sends nothing it already paid for and writes the same files.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from syllabus.config import StageContext
from syllabus.data.files import atomic_write_text
from syllabus.llm import LLMClient
from syllabus.llm.spend import SpendParams
from syllabus.summaries import ExpandSummary
from syllabus.synth.exercises import load_names
from syllabus.synth.textbook import TopicFile, load_topics, topic_file

SUBTOPICS = """List {k} distinct subtopics of this topic, for a Python textbook for students learning basic coding concepts.
Topic: {topic}

One subtopic per line, a few words each, no numbering, nothing else."""

NAMES = """List {k} distinct Python function names (snake_case) for short coding exercises on this topic: functions a
student could write in 5 to 20 lines.
Topic: {topic}

One name per line, nothing else."""

TOPICS_FILE, NAMES_FILE = "topics.yaml", "function_names.txt"


class ExpandParams(SpendParams):
    teacher: str = Field("offline:expand", description="http(s) URL, offline:NAME or local:DIR")
    model: str | None = None
    concurrency: int = Field(8, ge=1)
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(400, ge=1)
    topics: str | None = Field(None, description="topic tree YAML to grow (default: the packaged topics.yaml)")
    names: str | None = Field(None, description="function names to keep and add to (default: the packaged ones)")
    target_topics: int = Field(1000, ge=1, description="leaves the grown topic tree has at least")
    target_names: int = Field(10_000, ge=1, description="function names to reach")
    fanout: int = Field(8, ge=2, description="subtopics asked for per leaf")
    max_rounds: int = Field(4, ge=0, description="levels a leaf may be split into")
    cache_dir: str | None = Field(None, description="reply cache (default: OUT/llm-cache)")


def listed(text: str | None) -> list[str]:
    """The items of a one-per-line list reply, without bullets or numbering, in order, distinct."""
    items = []
    for line in (text or "").splitlines():
        item = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().strip("`'\"").rstrip(".")
        if item and item not in items and ">" not in item and ":" not in item:
            items.append(item)
    return items


def grow_topics(client: LLMClient, leaves: list[str], params: ExpandParams) -> list[str]:
    """Split leaves breadth first until there are target_topics; a leaf with no usable reply stays."""
    for _ in range(params.max_rounds):
        if len(leaves) >= params.target_topics:
            break
        split = min(len(leaves), math.ceil((params.target_topics - len(leaves)) / (params.fanout - 1)))
        chosen, rest = leaves[:split], leaves[split:]
        replies = client.chat_many([[{"role": "user", "content": SUBTOPICS.format(k=params.fanout, topic=leaf)}]
                                    for leaf in chosen], description="expand topics",
                                   temperature=params.temperature, max_tokens=params.max_tokens)
        grown = []
        for leaf, reply in zip(chosen, replies):
            children = [f"{leaf} > {item}" for item in listed(reply.text)[:params.fanout]]
            grown.extend(children or [leaf])
        leaves = rest + grown  # breadth first: the shallower leaves are split first next round
    return leaves


def grow_names(client: LLMClient, leaves: list[str], names: list[tuple[str, str]],
               params: ExpandParams) -> list[tuple[str, str]]:
    """The given names, then names the teacher lists for each leaf, until target_names."""
    need = params.target_names - len(names)
    if need <= 0:
        return names[:params.target_names]
    k = min(50, max(1, math.ceil(need / len(leaves))))
    replies = client.chat_many([[{"role": "user", "content": NAMES.format(k=k, topic=leaf)}] for leaf in leaves],
                               description="expand names", temperature=params.temperature,
                               max_tokens=params.max_tokens)
    seen = {name for _, name in names}
    grown = list(names)
    for leaf, reply in zip(leaves, replies):
        for item in listed(reply.text)[:k]:
            name = item.split("(")[0].strip()
            if name.isidentifier() and name.islower() and name not in seen and len(grown) < params.target_names:
                seen.add(name)
                grown.append((leaf, name))
    return grown


def topic_tree(leaves: list[str]) -> dict[str, Any]:
    """Leaf paths ("a > b > c") as the nested mapping topics.yaml holds (lists of leaves at the bottom)."""
    tree: dict[str, Any] = {}
    for leaf in leaves:
        *path, last = [part.strip() for part in leaf.split(">")]
        node = tree
        for part in path:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node.setdefault(last, None)

    def compact(node: dict[str, Any]) -> dict[str, Any] | list[str]:
        if all(child is None for child in node.values()):
            return list(node)
        return {key: None if child is None else compact(child) for key, child in node.items()}

    return compact(tree)


def expand(params: ExpandParams, out: str | Path) -> ExpandSummary:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = topic_file(params.topics)
    spec = TopicFile.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")))
    leaves, _, _ = load_topics(source)
    names = load_names(params.names)
    client = LLMClient(params.teacher, model=params.model, concurrency=params.concurrency,
                       cache_dir=params.cache_dir or out / "llm-cache", **params.client_options())
    grown = grow_topics(client, list(leaves), params)
    vocabulary = grow_names(client, grown, names, params)
    header = (f"# Grown by synth.expand from {source} with {params.teacher} ({params.model or 'default model'}).\n"
              "# Review and edit before the synthesis stages run: they read this file.\n")
    body = {"topics": topic_tree(grown), "audiences": spec.audiences, "styles": spec.styles}
    atomic_write_text(out / TOPICS_FILE, header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120))
    atomic_write_text(out / NAMES_FILE, header + "".join(f"{topic}: {name}\n" for topic, name in vocabulary))
    return ExpandSummary(teacher=params.teacher, model=client.model, topics_before=len(leaves), topics=len(grown),
                         names_before=len(names), names=len(vocabulary), llm=client.ledger.as_dict(),
                         files=[TOPICS_FILE, NAMES_FILE])


def expand_stage(params: ExpandParams, inputs: dict, out: Path, ctx: StageContext) -> ExpandSummary:
    return expand(params, out)

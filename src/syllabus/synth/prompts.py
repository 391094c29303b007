"""Prompt spaces: every distinct prompt a synthesis stage can send, and n of them without repeats.

A prompt is one value from each axis: the vocabulary the stage is about (a topic leaf, a (topic,
function name) pair), the constraints it is written under (audience, style, and any `axes` a recipe
adds: difficulty, data type, library...) and, when the stage is seeded from a corpus, one snippet of
it (as OSS-Instruct/Magicoder does: distinct prompts grow with the corpus). The space is the product
of the axes; `jobs` walks it in a seeded pseudo-random order that visits no combination twice
(an affine permutation of the product's index, so a space of billions is never materialised), and
only past its end asks for further samples of the same prompts, at most `max_repeats` per prompt.
A stage that would need more stops before sending, saying how to grow the space.
"""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from syllabus.errors import BadInput
from syllabus.synth.batches import Job

Axis = Sequence[dict[str, Any]]  # the values of one axis, each the prompt fields it sets

GROW = ("grow it: a larger vocabulary (a synth.expand stage, or edit the topics/names file), more `axes` "
        "(e.g. difficulty: [easy, medium, hard]), prompts seeded from a corpus (input `seeds`), or a larger "
        "max_repeats (repeats of one prompt differ only by sampling)")


class PromptSpace:
    def __init__(self, axes: dict[str, Axis]):
        self.axes = {name: list(values) for name, values in axes.items() if values is not None}
        empty = [name for name, values in self.axes.items() if not values]
        if empty:
            raise BadInput(f"prompt axis {empty[0]!r} has no values")
        self.size = math.prod(len(values) for values in self.axes.values())

    def fields(self, index: int) -> dict[str, Any]:
        """The prompt fields of combination `index` (mixed radix over the axes)."""
        digits = []
        for values in reversed(self.axes.values()):
            index, digit = divmod(index, len(values))
            digits.append(digit)
        fields: dict[str, Any] = {}
        for values, digit in zip(self.axes.values(), reversed(digits)):
            fields |= values[digit]
        return fields

    def order(self, seed: int) -> Callable[[int], int]:
        """A seeded bijection of range(size): i -> (a*i + b) mod size with a coprime to size."""
        rng = random.Random(seed)
        if self.size == 1:
            return lambda i: 0
        while True:
            a = rng.randrange(1, self.size)
            if math.gcd(a, self.size) == 1:
                break
        b = rng.randrange(self.size)
        return lambda i: (a * i + b) % self.size

    def check(self, n: int, max_repeats: int, stage: str) -> None:
        if n > self.size * max_repeats:
            raise BadInput(f"{stage}: n = {n:,} exceeds the prompt space: {self.size:,} distinct prompts "
                           f"({self.describe()}) x max_repeats {max_repeats}; {GROW}")

    def describe(self) -> str:
        return " x ".join(f"{len(values):,} {name}" for name, values in self.axes.items())

    def jobs(self, template: str, n: int, *, seed: int, max_repeats: int, stage: str,
             render: Callable[[str, dict[str, Any]], str] | None = None) -> list[Job]:
        """n jobs: every distinct prompt once before any is repeated (as a further sample)."""
        self.check(n, max_repeats, stage)
        permuted = self.order(seed)
        render = render or (lambda template, fields: template.format(**fields))
        jobs = []
        for i in range(n):
            fields = self.fields(permuted(i % self.size))
            meta = {k: v for k, v in fields.items() if not k.startswith("_")}
            jobs.append(Job(render(template, fields), sample=i // self.size, meta=meta))
        return jobs

    def summary(self, n: int, max_repeats: int) -> dict[str, Any]:
        return {"distinct": self.size, "requested": n, "max_repeats": max_repeats,
                "axes": {name: len(values) for name, values in self.axes.items()}}


def constraint_axes(axes: dict[str, list[str]]) -> dict[str, Axis]:
    """A recipe's extra `axes` ({difficulty: [easy, hard]}) as prompt axes; each value becomes a
    `Difficulty: easy` line of the prompt (field `constraints`) and a record field."""
    return {name: [{name: value, f"_line_{name}": f"{name.replace('_', ' ').capitalize()}: {value}"}
                   for value in values] for name, values in axes.items()}


def render_with_constraints(template: str, fields: dict[str, Any]) -> str:
    """The template with `{constraints}`: the extra axes' lines, then the corpus seed if any."""
    lines = [value for key, value in fields.items() if key.startswith("_line_")]
    if fields.get("_seed"):
        lines.append("Inspiration: the code below, from a real project. Do not copy it: take one idea from it "
                     f"and make it the subject.\n```python\n{fields['_seed']}```")
    return template.format(**fields, constraints="".join(f"{line}\n" for line in lines))


def corpus_seeds(path: str | Path, *, limit: int, max_lines: int = 40) -> Axis:
    """Up to `limit` distinct snippets of a dataset dir's records, one per record: its first top-level
    function or class of at most `max_lines` lines, else its first lines."""
    from syllabus.data.dataset import Dataset

    seeds, seen = [], set()
    for record in Dataset(path).records():
        snippet = _snippet(record["text"], max_lines)
        if snippet.strip() and snippet not in seen:
            seen.add(snippet)
            seeds.append({"_seed": snippet, "seed_id": record["id"]})
            if len(seeds) >= limit:
                break
    if not seeds:
        raise BadInput("no code to seed prompts with", file=path)
    return seeds


def _snippet(text: str, max_lines: int) -> str:
    lines = text.splitlines(keepends=True)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = None
    for node in tree.body if tree else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.end_lineno - node.lineno < max_lines:
            return "".join(lines[node.lineno - 1:node.end_lineno])
    return "".join(lines[:max_lines // 2])

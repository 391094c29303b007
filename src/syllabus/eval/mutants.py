"""Mutants of the canonical solutions: a one-token edit that makes a solution fail its own tests.

A model that has learned what code means should find the correct solution more likely than a
near-identical wrong one (chance: 50%). That comparison moves long before pass@1 leaves zero, and
unlike a loss it asks about correctness. Each mutant is a minimal textual edit (the rest of the
text is unchanged, so the two differ only where the meaning does): a comparison flipped (`<` to
`<=`, `==` to `!=`), an arithmetic operator swapped (`+` to `-`), `and` and `or` swapped, `True`
and `False` swapped, or an integer constant moved by one. Candidates are tried in source order and the first one that FAILS the problem's tests in the
sandbox is the problem's mutant; a problem none of whose candidates fails has no mutant.

Recipe stage `eval.mutants`: writes OUT/mutants.jsonl (`benchmark`, `task_id`, `completion`,
`operator`) once per run; every `eval.scaling` stage reads it.
"""

from __future__ import annotations

import ast
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from syllabus.benchmarks import Problem, completion_check, load_benchmark
from syllabus.config import Params, StageContext
from syllabus.data.files import atomic_write_json, iter_jsonl, write_jsonl
from syllabus.summaries import MutantsSummary

COMPARE_FLIPS = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
                 ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
BINOP_SWAPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "+"), ast.FloorDiv: ("//", "*"),
               ast.Mod: ("%", "//")}


def _offsets(text: str) -> list[int]:
    """Character offset of each line start (ast positions are line + UTF-8 byte column)."""
    starts, total = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    return [*starts, total]


def _char(text_lines: list[str], starts: list[int], line: int, byte_col: int) -> int:
    return starts[line - 1] + len(text_lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))


def candidate_mutants(prompt: str, completion: str) -> Iterator[tuple[str, str]]:
    """(operator, mutated completion) for every one-token edit inside the completion, in source order."""
    text = prompt + completion
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except SyntaxError:
        return
    lines = text.splitlines(keepends=True)
    starts = _offsets(text)

    def span(node_from: ast.AST, node_to: ast.AST) -> tuple[int, int]:
        return (_char(lines, starts, node_from.end_lineno, node_from.end_col_offset),
                _char(lines, starts, node_to.lineno, node_to.col_offset))

    edits: list[tuple[int, int, str, str]] = []  # (start, end, replacement, operator)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE_FLIPS:
            old, new = COMPARE_FLIPS[type(node.ops[0])]
            start, end = span(node.left, node.comparators[0])
            gap = text[start:end]
            if gap.count(old) == 1 and (old != "<" or "<=" not in gap) and (old != ">" or ">=" not in gap):
                at = start + gap.index(old)
                edits.append((at, at + len(old), new, f"compare {old} -> {new}"))
        elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
            old, new = BINOP_SWAPS[type(node.op)]
            start, end = span(node.left, node.right)
            gap = text[start:end]
            if gap.strip() == old:
                at = start + gap.index(old)
                edits.append((at, at + len(old), new, f"binop {old} -> {new}"))
        elif isinstance(node, ast.BoolOp):
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            start, end = span(node.values[0], node.values[1])
            if text[start:end].strip() == old:
                at = start + text[start:end].index(old)
                edits.append((at, at + len(old), new, f"boolop {old} -> {new}"))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            start = _char(lines, starts, node.lineno, node.col_offset)
            edits.append((start, start + len(str(node.value)), str(not node.value),
                          f"constant {node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            start = _char(lines, starts, node.lineno, node.col_offset)
            end = _char(lines, starts, node.end_lineno, node.end_col_offset)
            if text[start:end].isdigit():
                edits.append((start, end, str(node.value + 1), f"constant {node.value} -> {node.value + 1}"))
    for start, end, new, operator in sorted(edits):
        if start >= len(prompt):
            yield operator, (text[:start] + new + text[end:])[len(prompt):]


class MutantsParams(Params):
    benchmarks: list[str] = ["humaneval", "mbpp"]
    limit: int | None = Field(None, ge=1, description="only the first N problems of each benchmark")
    max_candidates: int = Field(8, ge=1, description="edits tried per problem before giving up")
    timeout: float = Field(5.0, gt=0)


def find_mutants(problems: list[Problem], *, max_candidates: int = 8, workers: int = 2, timeout: float = 5.0
                 ) -> tuple[dict[str, tuple[str, str]], Counter]:
    """task_id -> (operator, failing mutant completion), and counts of what happened."""
    from syllabus.sandbox import SandboxPool

    stats: Counter = Counter()
    candidates = {p.task_id: list(candidate_mutants(p.prompt, p.canonical_solution))[:max_candidates]
                  for p in problems}
    by_id = {p.task_id: p for p in problems}
    found: dict[str, tuple[str, str]] = {}
    with SandboxPool(workers=workers, timeout=timeout) as pool:
        canonical = pool.run_many([completion_check(p, p.canonical_solution) for p in problems])
        open_ids = [p.task_id for p, v in zip(problems, canonical) if v.passed]
        stats["canonical_fails_its_tests"] = len(problems) - len(open_ids)
        for round_ in range(max_candidates):  # a round tries every open problem's next candidate
            todo = [t for t in open_ids if round_ < len(candidates[t])]
            verdicts = pool.run_many([completion_check(by_id[t], candidates[t][round_][1]) for t in todo])
            for task_id, verdict in zip(todo, verdicts):
                if not verdict.passed:
                    found[task_id] = candidates[task_id][round_]
            open_ids = [t for t in open_ids if t not in found]
    stats["mutants"] = len(found)
    stats["no_failing_mutant"] = len(problems) - len(found) - stats["canonical_fails_its_tests"]
    return found, stats


def mutants_stage(params: MutantsParams, inputs: dict, out: Path, ctx: StageContext) -> MutantsSummary:
    """Recipe stage `eval.mutants`: OUT/mutants.jsonl, one failing mutant per problem that has one."""
    rows, summary = [], {}
    for benchmark in params.benchmarks:
        problems = load_benchmark(benchmark)[:params.limit]
        found, stats = find_mutants(problems, max_candidates=params.max_candidates, workers=ctx.workers,
                                    timeout=params.timeout)
        rows += [{"benchmark": benchmark, "task_id": task_id, "operator": operator, "completion": completion}
                 for task_id, (operator, completion) in found.items()]
        summary[benchmark] = {"problems": len(problems), **stats}
    write_jsonl(Path(out) / "mutants.jsonl", rows)
    result = MutantsSummary(benchmarks=summary)
    atomic_write_json(Path(out) / "summary.json", result.dump())
    return result


def read_mutants(path: str | Path) -> dict[tuple[str, str], str]:
    """(benchmark, task_id) -> mutant completion, from a mutants.jsonl."""
    return {(r["benchmark"], r["task_id"]): r["completion"] for _, r in iter_jsonl(path)}

"""How strict are the unconventional problems' hidden tests? Mutation kill rate vs HumanEval's.

Each canonical solution is mutated at up to MUTANTS_PER_PROBLEM sites (a comparison flipped,
`+` swapped with `-`, an integer constant moved by one, `and` swapped with `or`), and every
mutant is run against its problem's tests in the sandbox. A mutant that fails or times out is
killed. Peer: HumanEval's own tests, mutated and run the same way in the same run. Some mutants
are equivalent to the original (no test could kill them), on both sides alike.

    python benchmarks/unconventional_tests.py
"""

from __future__ import annotations

import ast
import copy
import random
import time

from syllabus.benchmarks import Problem, load_benchmark
from syllabus.sandbox import SandboxPool

MUTANTS_PER_PROBLEM = 5
SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.Add: ast.Sub, ast.Sub: ast.Add, ast.And: ast.Or, ast.Or: ast.And}


def mutation_sites(tree: ast.AST) -> list[tuple[int, str]]:
    """(node index in ast.walk order, what to change) for every mutable spot."""
    sites = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            sites.append((i, "op"))
        elif isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAPS:
            sites.append((i, "op"))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            sites.append((i, "int"))
    return sites


def mutate(tree: ast.AST, site: tuple[int, str]) -> str:
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[site[0]]
    if site[1] == "int":
        node.value += 1
    elif isinstance(node, ast.Compare):
        node.ops[0] = SWAPS[type(node.ops[0])]()
    else:
        node.op = SWAPS[type(node.op)]()
    return ast.unparse(tree)


def mutant_programs(problems: list[Problem], rng: random.Random) -> list[str]:
    programs = []
    for p in problems:
        tree = ast.parse(p.prompt + p.canonical_solution)
        sites = mutation_sites(tree)
        for site in rng.sample(sites, min(MUTANTS_PER_PROBLEM, len(sites))):
            programs.append(mutate(tree, site) + "\n" + p.test + "\n" + f"check({p.entry_point})")
    return programs


def kill_rate(pool: SandboxPool, problems: list[Problem]) -> tuple[float, int, float]:
    programs = mutant_programs(problems, random.Random(0))
    start = time.perf_counter()
    verdicts = pool.run_many(programs)
    return sum(not v.passed for v in verdicts) / len(verdicts), len(verdicts), time.perf_counter() - start


def main() -> None:
    with SandboxPool(timeout=5) as pool:
        ours = kill_rate(pool, load_benchmark("unconventional"))
        peer = kill_rate(pool, load_benchmark("humaneval"))
    for name, (rate, n, seconds) in (("unconventional", ours), ("humaneval (peer)", peer)):
        print(f"{name:18} mutants killed {rate:6.1%} of {n} ({seconds:.1f} s)")
    print(f"ratio (unconventional / humaneval kill rate): {ours[0] / peer[0]:.2f}")


if __name__ == "__main__":
    main()

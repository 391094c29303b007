import json

import numpy as np

from syllabus.config import StageContext
from syllabus.data.dataset import write_dataset
from syllabus.data.files import read_json, read_jsonl, write_jsonl
from syllabus.eval.mutants import MutantsParams, candidate_mutants, mutants_stage
from syllabus.eval.scaling import ScalingEvalParams, scaling_eval
from syllabus.report.ablation import AblationParams, ArmRuns, analyse


def test_mutants_are_one_token_edits_inside_the_completion():
    prompt = 'def small(x):\n    """x < 3?"""\n'
    found = dict(candidate_mutants(prompt, "    return x < 3 and True\n"))
    assert found == {"compare < -> <=": "    return x <= 3 and True\n", "constant 3 -> 4": "    return x < 4 and True\n",
                     "boolop and -> or": "    return x < 3 or True\n",
                     "constant True -> False": "    return x < 3 and False\n"}


def test_scaling_eval_scores_every_budget_per_problem(tiny_model_dir, tmp_path):
    ctx = StageContext(run_dir=tmp_path, stage="mutants", workers=1)
    summary = mutants_stage(MutantsParams(benchmarks=["humaneval"], limit=4), {}, tmp_path / "mutants", ctx)
    assert summary.benchmarks["humaneval"].problems == 4 and summary.benchmarks["humaneval"].mutants >= 3
    run = tmp_path / "run"
    run.mkdir()
    (run / "budgets.json").write_text(json.dumps([{"tokens": 100, "model": str(tiny_model_dir)},
                                                  {"tokens": 200, "model": str(tiny_model_dir)}]))
    write_dataset(tmp_path / "neutral", [{"id": "n1", "text": "import os\nprint(os.sep)\n"}], stage="test")
    params = ScalingEvalParams(benchmarks=["humaneval"], limit=4, samples=2, max_new_tokens=8, max_solution_lines=3)
    result = scaling_eval(params, run, tmp_path / "mutants", tmp_path / "neutral", tmp_path / "out", workers=1)
    rows = read_jsonl(tmp_path / "out" / "scores.jsonl")
    assert sorted({(r["tokens"], r["set"]) for r in rows}) == [(100, "humaneval"), (100, "neutral"),
                                                               (200, "humaneval"), (200, "neutral")]
    early = {r["task_id"]: r for r in rows if r["tokens"] == 100 and r["set"] == "humaneval"}
    final = {r["task_id"]: r for r in rows if r["tokens"] == 200 and r["set"] == "humaneval"}
    assert early["HumanEval/0"]["nats"] == final["HumanEval/0"]["nats"] > 0  # the same model twice
    assert not any("mutant_nats" in r for r in early.values())
    assert sum("mutant_nats" in r for r in final.values()) == summary.benchmarks["humaneval"].mutants
    short = [r for r in final.values() if "greedy_passed" in r]
    assert short and all(r["samples"] == 2 and r["greedy_passed"] is False for r in short)
    assert 0 <= result.mutant_preference <= 1 and result.pass_at_1 == 0.0 and result.short_problems == len(short)
    assert set(result.nats_per_byte) == {"humaneval", "neutral"}


def _arm_scores(root, name, seeds, shift, budgets=(1000, 2000, 4000, 8000), problems=60):
    dirs = []
    rng = np.random.default_rng(len(name))
    difficulty = np.random.default_rng(7).uniform(0.5, 1.5, problems)
    for seed in range(seeds):
        rows = []
        noise = rng.normal(0, 0.002)
        for tokens in budgets:
            for p in range(problems):
                loss = difficulty[p] * (tokens / 1000) ** -0.1 * (1 - shift) + noise
                rows.append({"tokens": tokens, "set": "humaneval" if p < 40 else "mbpp", "task_id": f"T/{p}",
                             "nats": loss * 100, "bytes": 100, "mutant_nats": loss * 100 + (1 if p % 3 else -1)})
            rows += [{"tokens": tokens, "set": "neutral", "task_id": f"n{i}", "nats": 150.0, "bytes": 100}
                     for i in range(5)]
        out = root / f"{name}_s{seed}"
        write_jsonl(out / "scores.jsonl", rows)
        dirs.append(out)
    return dirs


def test_ablation_writes_verdicts_from_the_rules(tmp_path):
    arms = {name: ArmRuns(name, _arm_scores(tmp_path, name, 3, shift))
            for name, shift in (("a", 0.0), ("b", 0.05), ("c", 0.05), ("c_tmpl", 0.0), ("d", 0.0), ("CP", 0.0))}
    arms["d"] = ArmRuns("d", _arm_scores(tmp_path, "d", 3, 0.0, budgets=(500,)))
    arms["CP"] = ArmRuns("CP", _arm_scores(tmp_path, "CP", 2, 0.0, budgets=(500,)) + [tmp_path / "not_run"])
    result = analyse(arms, AblationParams(draws=300), similar={"humaneval:T/1", "mbpp:T/50"})
    b_vs_a, c_vs_b, d_vs_cp = result["contrasts"]
    assert b_vs_a["rejected"] and b_vs_a["delta"] > 0 and not c_vs_b["rejected"]
    assert b_vs_a["split"]["similar"]["problems"] == 2 and b_vs_a["split"]["non_similar"]["problems"] == 58
    assert result["verdicts"][0].startswith("b > a at 8k tokens: yes, Δ = +0.0")
    assert result["verdicts"][1].startswith("c > b at 8k tokens: not shown")
    assert result["seeds"]["CP"] == 2 and result["missing"]["CP"] == [str(tmp_path / "not_run")]
    # (1 - 0.05) D^-0.1 = (m D)^-0.1 gives m = 0.95^-10 ~ 1.67 at every budget a's curve covers
    m_b = result["multiplier"]["b"]
    assert [round(row["m"], 2) for row in m_b["budgets"][:3]] == [1.67, 1.67, 1.67]
    assert m_b["budgets"][3]["bound"] == ">=" and abs(m_b["slope"]) < 1e-6
    assert "consistent with a constant multiplier" in result["verdicts"][3]
    assert result["final"]["a"]["mutant_preference"] == round(40 / 60, 4)
    assert result["curves"]["a"]["neutral"] == [1.5] * 4 and result["mde"] > 0


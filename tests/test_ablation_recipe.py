"""The ablation recipe in miniature: the same stages, a 1-layer model, a few problems and 2 seeds.
It checks that every statistic of the ablation is computed from the runs' own scores."""

import copy
import html
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from syllabus.data.files import read_jsonl
from syllabus.recipe import packaged_recipe

SEEDS = (0, 1)
MICRO_MODEL = {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_inner": 64, "rotary_dim": 8}
SHRINK = {
    "data.ingest": {"max_files": 30},
    "curate.annotate": {"n": 30},
    "curate.train": {"model": "logreg", "folds": 2},
    "curate.filter": {"keep_fraction": 0.5},
    "synth.human_textbook": {"packages": ["packaging"], "max_chars": 15000},
    "synth.textbook": {"n": 12},
    "synth.mined_exercises": {"packages": ["packaging"], "mbpp": False},
    "eval.mutants": {"limit": 4},
    "tokenizer.train": {"vocab_size": 400},
    "train.pack": {"seq_len": 64, "val_fraction": 0.3},
    "eval.scaling": {"limit": 4, "neutral_records": 3, "samples": 2, "max_new_tokens": 8},
    "ablation": {"draws": 200},
}
TRAIN = {"max_steps": 8, "warmup_steps": 1, "batch_size": 4, "micro_batch_size": 4, "eval_every": 100,
         "eval_batches": 1, "checkpoint_every": 100, "model_overrides": MICRO_MODEL}


def micro_recipe(path: Path) -> Path:
    recipe = copy.deepcopy(yaml.safe_load(packaged_recipe("ablation").read_text()))
    stages = []
    for stage in recipe["stages"]:
        if any(stage["name"].endswith(f"_s{s}") for s in range(len(SEEDS), 3)):
            continue  # fewer seeds
        stage["params"] = copy.deepcopy(stage.get("params", {}))
        stage["params"].update(SHRINK.get(stage["uses"], {}))
        if stage["uses"] == "train.pretrain":
            stage["params"]["overrides"].update(TRAIN, budgets=[2, 4])
        if stage["uses"] == "train.finetune":
            stage["params"]["overrides"].update(TRAIN, max_steps=2)
        if stage["uses"] == "ablation":
            stage["inputs"] = {arm: dirs[:len(SEEDS)] if isinstance(dirs, list) else dirs
                               for arm, dirs in stage["inputs"].items()}
        stages.append(stage)
    recipe["stages"] = stages
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _final_loss(run: Path, arm: str) -> float:
    """An arm's loss at its largest budget, straight from its scores.jsonl files."""
    per_seed = []
    for seed in SEEDS:
        rows = read_jsonl(run / f"scale_{arm}_s{seed}" / "scores.jsonl")
        last = max(r["tokens"] for r in rows)
        per_seed.append(np.mean([r["nats"] / r["bytes"] for r in rows
                                 if r["tokens"] == last and r["set"] in ("humaneval", "mbpp")]))
    return float(np.mean(per_seed))


def test_micro_ablation_computes_every_statistic_from_the_runs(tmp_path, cli):
    run = tmp_path / "run"
    result = cli("run", str(micro_recipe(tmp_path / "micro.yaml")), "--out", str(run), timeout=1800, OMP_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr[-3000:]
    ablation = json.loads((run / "ablation" / "ablation.json").read_text())
    arms = ("a", "b", "c", "c_tmpl", "d", "CP")
    assert ablation["seeds"] == {arm: len(SEEDS) for arm in arms}
    tokens = [2 * 4 * 64, 4 * 4 * 64, 8 * 4 * 64]
    for arm in ("a", "b", "c", "c_tmpl"):
        curve = ablation["curves"][arm]
        assert curve["tokens"] == tokens and len(curve["ci"]) == len(curve["neutral_ci"]) == 3
        assert curve["loss"][-1] == pytest.approx(_final_loss(run, arm), abs=1e-5)
        low, high = curve["ci"][-1]
        assert low <= curve["loss"][-1] <= high
    # the seed reaches the model: two seeds of one arm score differently
    seed_rows = [read_jsonl(run / f"scale_a_s{s}" / "scores.jsonl")[0]["nats"] for s in SEEDS]
    assert seed_rows[0] != seed_rows[1]
    contrasts = {(c["arm"], c["baseline"]): c for c in ablation["contrasts"]}
    assert set(contrasts) == {("b", "a"), ("c", "b"), ("d", "CP")}
    assert contrasts["b", "a"]["delta"] == pytest.approx(_final_loss(run, "a") - _final_loss(run, "b"), abs=1e-5)
    for c in contrasts.values():
        assert c["ci"][0] <= c["delta"] <= c["ci"][1] and c["p"] <= c["p_holm"] <= 1
        assert set(c["split"]) == {"similar", "non_similar"}
    assert ablation["mde"] > 0
    for arm in ("b", "c", "c_tmpl"):
        m = ablation["multiplier"][arm]
        assert [row["tokens"] for row in m["budgets"]] == tokens and all(row["m"] > 0 for row in m["budgets"])
    for arm in arms:
        final = ablation["final"][arm]
        assert 0 <= final["mutant_preference"] <= 1 and final["mutant_problems"] > 0
        assert "pass@1" in final and "pass@2" in final
    assert len(ablation["verdicts"]) == 6
    assert ablation["verdicts"][0].startswith("b > a at ")
    page = (run / "report" / "index.html").read_text()
    assert "from the rules fixed before the run" in page and html.escape(ablation["verdicts"][0]) in page
    assert page.count('alt="nats per byte against training tokens"') == 1 and 'alt="m(D) against' in page

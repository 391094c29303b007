import json
import textwrap

import pytest

from syllabus.config import load_recipe
from syllabus.errors import BadInput
from syllabus.recipe import run_recipe
from syllabus.tokenizer import load_tokenizer


def _write(tmp_path, body):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _src(tmp_path):
    (tmp_path / "code").mkdir()
    for i in range(3):
        (tmp_path / "code" / f"m{i}.py").write_text(f"x = {i}\n")
    return tmp_path / "code"


RECIPE = """
name: t
stages:
  - name: raw
    uses: data.ingest
    params: {{sources: ["{src}"]}}
  - name: raw2
    uses: data.ingest
    params: {{sources: ["{src}"], max_files: 2}}
"""


def test_rerun_skips_finished_stages_and_from_reruns(tmp_path):
    recipe = load_recipe(_write(tmp_path, RECIPE.format(src=_src(tmp_path))))
    first = run_recipe(recipe, tmp_path / "run")
    assert first["raw"]["kept"] == 3 and first["raw2"]["kept"] == 2
    state = json.loads((tmp_path / "run" / ".state" / "raw.json").read_text())
    assert state["status"] == "done"
    mtime = (tmp_path / "run" / "raw" / "manifest.json").stat().st_mtime_ns
    run_recipe(recipe, tmp_path / "run")
    assert (tmp_path / "run" / "raw" / "manifest.json").stat().st_mtime_ns == mtime  # skipped
    run_recipe(recipe, tmp_path / "run", from_stage="raw2")
    assert (tmp_path / "run" / "raw" / "manifest.json").stat().st_mtime_ns == mtime
    run_recipe(recipe, tmp_path / "run", only="raw")
    assert (tmp_path / "run" / "raw" / "manifest.json").stat().st_mtime_ns != mtime


def test_interrupted_stage_runs_again(tmp_path):
    recipe = load_recipe(_write(tmp_path, RECIPE.format(src=_src(tmp_path))))
    run_recipe(recipe, tmp_path / "run")
    (tmp_path / "run" / ".state" / "raw2.json").write_text(json.dumps({"status": "running"}))
    (tmp_path / "run" / "raw2" / "manifest.json").unlink()
    run_recipe(recipe, tmp_path / "run")
    assert (tmp_path / "run" / "raw2" / "manifest.json").exists()


@pytest.mark.parametrize("body, message", [
    ("name: t\nstages: []\n", "stages: List should have at least 1 item"),
    ("name: t\nstages:\n  - {name: a, uses: nope.stage}\n", "stages[0].uses: unknown stage 'nope.stage'"),
    ("name: t\nstages:\n  - {name: a, uses: data.ingest, params: {sources: [x], bogus: 1}}\n",
     "stages[0].params.bogus: Extra inputs are not permitted"),
    ("name: t\nstages:\n  - {name: a, uses: data.ingest, params: {sources: [x], max_files: 0}}\n",
     "stages[0].params.max_files: Input should be greater than or equal to 1"),
    ("name: t\nstages: [\n", "malformed YAML"),
    ("name: t\nstages:\n  - {name: a, uses: data.ingest, params: {sources: [x]}}\n"
     "  - {name: a, uses: data.ingest, params: {sources: [x]}}\n", "stage name 'a' is used twice"),
])
def test_bad_recipes_name_file_key_and_problem(tmp_path, body, message):
    path = _write(tmp_path, body)
    with pytest.raises(BadInput) as e:
        run_recipe(load_recipe(path), tmp_path / "run")
    assert str(path) in e.value.line() and message in e.value.line()


def test_cli_run_bad_recipe_exit_2_one_line(tmp_path, cli):
    path = _write(tmp_path, "name: t\nstages:\n  - {name: a, uses: data.ingest, params: {}}\n")
    result = cli("run", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "stages[0].params.sources: Field required" in result.stderr


def test_stage_outputs_feed_later_stages(tmp_path):
    recipe = load_recipe(_write(tmp_path, f"""
        name: t
        stages:
          - {{name: raw, uses: data.ingest, params: {{sources: ["{_src(tmp_path)}"]}}}}
          - {{name: tok, uses: tokenizer.train, inputs: {{data: raw}}, params: {{vocab_size: 400, min_frequency: 1}}}}
        """))
    summaries = run_recipe(recipe, tmp_path / "run")
    tokenizer = load_tokenizer(tmp_path / "run" / "tok")
    assert summaries["tok"]["vocab_size"] == tokenizer.vocab_size <= 400
    assert tokenizer.decode(tokenizer.encode("x = 2\n")) == "x = 2\n"


def test_changed_stage_reruns_itself_and_everything_downstream(tmp_path):
    src = _src(tmp_path)
    run_recipe(load_recipe(_write(tmp_path, RECIPE.format(src=src) + """
  - name: tok
    uses: tokenizer.train
    inputs: {data: raw}
    params: {vocab_size: 400, min_frequency: 1}
""")), tmp_path / "run")
    tok_mtime = (tmp_path / "run" / "tok" / "tokenizer.json").stat().st_mtime_ns
    raw2_mtime = (tmp_path / "run" / "raw2" / "manifest.json").stat().st_mtime_ns
    changed = RECIPE.format(src=src).replace('params: {sources: ["%s"]}' % src,
                                             'params: {sources: ["%s"], max_files: 1}' % src, 1)
    summaries = run_recipe(load_recipe(_write(tmp_path, changed + """
  - name: tok
    uses: tokenizer.train
    inputs: {data: raw}
    params: {vocab_size: 400, min_frequency: 1}
""")), tmp_path / "run")
    assert summaries["raw"]["kept"] == 1
    assert (tmp_path / "run" / "tok" / "tokenizer.json").stat().st_mtime_ns != tok_mtime  # downstream re-ran
    assert (tmp_path / "run" / "raw2" / "manifest.json").stat().st_mtime_ns == raw2_mtime  # unrelated: skipped


def test_dry_run_of_phi1_states_world_size_gpu_hours_wall_time_and_dollars(tmp_path, cli):
    result = cli("run", "phi-1", "--out", str(tmp_path / "run"), "--dry-run", COLUMNS="400")
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stderr.splitlines() if line.startswith("│")}
    # 1,418M params x 36k steps x 1024 x 2048 tokens at (6 N + 12 L d T) FLOPs per token, 312 TFLOP/s x 40%
    assert rows["base"][1:] == ["pending", "ray: world size 8 (8 A100)",
                                "1,418M params x 75.50B tokens = 7.34e+20 FLOPs", "1,633.0 A100-h at 40% MFU",
                                "204.1 h on 8 A100", "", "", ""]
    # gpt-3.5-turbo at $0.50 / $1.50 per M, half in mode batch: 600k x 250 prompt + 600k x 1500 completion tokens
    assert rows["textbook"][-2] == "≤ $712 (budget cap $2,000)"
    assert rows["textbook"][-1] == "750,000 distinct for n 600,000 (≥ n)"
    assert rows["labels"][-3].startswith("judge gpt-4o: 100,000 calls")
    assert "training ≈ 1,701.0 GPU-hours, 212.6 h wall; LLM calls ≤ $1,522" in result.stderr
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_dry_run_says_when_a_price_or_a_gpu_is_unknown(tmp_path, cli):
    path = _write(tmp_path, """
        name: t
        defaults: {launch: {engine: torchrun, nproc_per_node: 4, gpu: TPUv9}}
        stages:
          - {name: book, uses: synth.textbook, params: {teacher: "http://127.0.0.1:1/v1", model: my-model, n: 10}}
          - {name: base, uses: train.pretrain, inputs: {data: packed}, params: {preset: tiny-pretrain},
             launch: {gpu: H100, nproc_per_node: 2}}
          - {name: ft, uses: train.finetune, inputs: {data: packed, init: base}, params: {preset: tiny-finetune}}
        """)
    (tmp_path / "packed").mkdir()
    result = cli("run", str(path), "--out", str(tmp_path / "run"), "--dry-run", COLUMNS="400")
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stderr.splitlines() if line.startswith("│")}
    assert rows["book"][-2] == "price unknown for 'my-model' (add it to syllabus/llm/prices.py or the stage's prices)"
    assert rows["base"][2] == "torchrun: world size 2 (2 H100)" and rows["base"][4].endswith("H100-h at 40% MFU")
    assert rows["ft"][2] == "torchrun: world size 4 (4 TPUv9)" and rows["ft"][4].startswith("unknown GPU 'TPUv9'")
    assert "+ unpriced: my-model" in result.stderr

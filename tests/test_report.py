import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from syllabus.config import load_recipe
from syllabus.data.dataset import write_dataset
from syllabus.errors import BadInput
from syllabus.recipe import run_recipe
from syllabus.report import build_report
from syllabus.report.run import Run

REPO = Path(__file__).resolve().parents[1]

STAGES = [
    ("raw", "data.ingest"), ("labels", "curate.annotate"), ("classifier", "curate.train"),
    ("filtered", "curate.filter"), ("deduped", "dedup"), ("clean", "decontam"), ("textbook", "synth.textbook"),
    ("exercises", "synth.exercises"), ("packed", "train.pack"), ("pretrain", "train.pretrain"),
    ("finetune", "train.finetune"), ("eval_base", "eval"), ("eval_ft", "eval"), ("arms", "ablation"),
    ("report", "report"),
]


def _state(run, name, uses, summary, seconds=1.5):
    path = run / ".state" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": "done", "uses": uses, "seconds": seconds, "summary": summary}))


def _metrics_log(path, steps, start):
    rows = [{"step": s, "loss": start - 0.02 * s, "lr": 1e-3, "tokens_per_s": 5000.0} for s in range(steps)]
    for row in rows[::10]:
        row["val_loss"] = row["loss"] + 0.1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def run_dir(tmp_path):
    """A run dir as `syllabus run` leaves it, with every stage kind the report knows about."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({
        "name": "fixture", "description": "every stage, fake numbers", "source": "recipes/fixture.yaml",
        "stages": [{"name": n, "uses": u} for n, u in STAGES]}))
    raw = write_dataset(run / "raw", ({"id": str(i), "text": f"x = {i}\n"} for i in range(10)), stage="data.ingest",
                        summary={"ingest": {"total": 12, "kept": 10, "skipped_too_large": 2}})
    _state(run, "raw", "data.ingest", {"records": 10, "bytes": raw.manifest["bytes"], "total": 12, "kept": 10,
                                       "skipped_too_large": 2})
    (run / "labels").mkdir()
    (run / "labels" / "labels.jsonl").write_text("".join(json.dumps({"id": str(i), "score": i % 6}) + "\n"
                                                         for i in range(30)))
    _state(run, "labels", "curate.annotate", {"labeled": 30})
    _state(run, "classifier", "curate.train", {"f1": 0.812, "precision": 0.75, "recall": 0.9, "roc_auc": 0.934,
                                               "spearman": 0.61, "confusion_matrix": [[40, 5], [3, 52]]})
    write_dataset(run / "filtered", ({"id": str(i), "text": "t", "edu_score": i / 8} for i in range(8)),
                  stage="curate.filter", params={"threshold": 0.5}, parents=[raw])
    _state(run, "filtered", "curate.filter", {"kept": 8})
    _state(run, "deduped", "dedup", {"exact_removed": 3, "near_removed": 2,
                                     "example_clusters": [["stdlib/a.py", "stdlib/b.py"]]})
    (run / "clean").mkdir()
    (run / "clean" / "report.json").write_text(json.dumps({
        "flagged_records": 4,
        "tau_table": [{"tau": 0.8, "humaneval": 0.0571, "mbpp": 0.0213}, {"tau": 0.9, "humaneval": 0.0311}],
        "per_task": {"HumanEval/0": {"methods": ["ngram"], "matches": 2}}}))
    _state(run, "clean", "decontam", {"pruned": 4})
    _state(run, "textbook", "synth.textbook", {"acceptance_rate": 0.875, "rejection_reasons": {"too_short": 3},
                                               "diversity": {"distinct_2gram_ratio": 0.642, "topic_coverage": 0.9}})
    write_dataset(run / "exercises", ({"id": str(i), "text": "def f(): pass"} for i in range(3)),
                  stage="synth.exercises")
    manifest = json.loads((run / "exercises" / "manifest.json").read_text())
    manifest["stats"] = {"dropped_failed_tests": 8, "dropped_timeout": 2}
    (run / "exercises" / "manifest.json").write_text(json.dumps(manifest))
    _state(run, "exercises", "synth.exercises", {"accepted": 30, "generated": 40, "distinct_function_names": 0.95})
    _state(run, "packed", "train.pack", {"tokens": 123456})
    _metrics_log(run / "pretrain" / "metrics.jsonl", 50, 5.0)
    _state(run, "pretrain", "train.pretrain", {"steps": 50}, seconds=42.0)
    _metrics_log(run / "finetune" / "logs" / "train.jsonl", 20, 3.0)
    _state(run, "finetune", "train.finetune", {"steps": 20})
    _state(run, "eval_base", "eval", {"humaneval": {"pass@1": 0.061, "nll": 1.234}, "mbpp": {"pass@1": 0.082}})
    _state(run, "eval_ft", "eval", {"humaneval": {"pass@1": 0.122, "pass@10": 0.2, "nll": 0.987},
                                    "mbpp": {"pass_at_1": 0.143}, "unconventional": {"pass@1": 0.05},
                                    "grade": {"mean_score": 6.5}, "probes": {"numpy": 0.4}})
    _state(run, "arms", "ablation", {"table": [
        {"arm": "unfiltered", "humaneval_nll": 1.531, "pass@1": 0.0},
        {"arm": "filtered+textbook", "humaneval_nll": 1.212, "pass@1": 0.031}]})
    return run


def test_page_has_every_section_its_numbers_and_their_sources(run_dir):
    page = build_report(run_dir)
    assert page == run_dir / "report" / "index.html"
    text = page.read_text()
    for section in ("overview", "data", "scores", "classifier", "synth", "dedup", "training", "eval", "graded",
                    "ablation", "provenance"):
        assert f'<section id="{section}">' in text
    assert "could not render" not in text and "not run: this run" not in text
    numbers = {
        "classifier": ["0.812", "0.934", "0.61"],
        "synth": ["87.5%", "75.0%", "0.642", "failed_tests"],  # exercises: 30 of 40 accepted
        "dedup": ["exact_removed", "0.0571", "0.0311", "HumanEval/0"],
        "data": ["83.3%", "80.0%", "123,456", "too_large 2"],
        "training": ["4.02", "4.3", "5000"],  # pretrain final loss, final val_loss, tokens/s
        "eval": ["1.234", "0.987", "0.122", "0.143", "<code>.state/eval_base.json</code>", "<code>.state/eval_ft.json</code>"],
        "graded": ["6.5", "0.4"],
        "ablation": ["filtered+textbook", "1.212"],
    }
    for section, expected in numbers.items():
        body = re.search(f'<section id="{section}">(.*?)</section>', text, re.S).group(1)
        for number in expected:
            assert number in body, (section, number)
    for source in (".state/classifier.json", "clean/report.json", "pretrain/metrics.jsonl",
                   "finetune/logs/train.jsonl", "labels/labels.jsonl", "filtered/manifest.json"):
        assert f"<code>{source}</code>" in text, source
    # annotate labels, filter scores, confusion matrix, 2 rejection charts, loss curves, pass@1 bars
    assert text.count('<img class="figure"') == 7
    assert '<span class="status not run">not run</span>' in text  # the report stage itself
    assert not re.search(r"""(src|href)=["']?(https?:|//)|url\(|@import""", text)  # self-contained


def test_empty_run_says_not_run_everywhere(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"name": "empty", "stages": [{"name": "raw", "uses": "data.ingest"}]}))
    text = build_report(run).read_text()
    assert text.count("not run: this run has no finished") == 9
    assert "could not render" not in text


def test_odd_stage_outputs_render_without_crashing(tmp_path):
    run = tmp_path / "run"
    (run / ".state").mkdir(parents=True)
    odd = {"classifier": ("curate.train", {"f1": "n/a", "confusion_matrix": [[1, 2]]}),
           "filtered": ("curate.filter", {"histogram": {"counts": [1, 2], "edges": "zero to one"}}),
           "labels": ("curate.annotate", {"score_counts": {"counts": ["a", None], "edges": [0, "x", 2]}}),
           "synth": ("synth.textbook", {"acceptance_rate": None, "rejection_reasons": ["a", "b"], "diversity": 3}),
           "decontam": ("decontam", {"tau_table": "later", "per_task": []}),
           "pretrain": ("train.pretrain", []),
           "eval": ("eval", {"humaneval": {"pass@1": "x", "nll": [1]}, "mbpp": 0.3}),
           "eval_flat": ("eval", {"benchmark": "mbpp", "pass@k": {"1": 0.25}}),
           "ablation": ("ablation", {"table": [1, 2, 3]})}
    for name, (uses, summary) in odd.items():
        _state(run, name, uses, summary)
    (run / "pretrain").mkdir()
    log = '{"step": 0, "loss": 2.5}\nnot json\n{"step": 1, "loss": "nan?"}\n{"st'  # cut mid-append
    (run / "pretrain" / "metrics.jsonl").write_text(log)
    (run / "decontam").mkdir()
    (run / "decontam" / "report.json").write_text("{broken")
    text = build_report(run).read_text()
    assert "could not render" not in text
    assert "<code>decontam/report.json</code>" in text and "unreadable: JSONDecodeError" in text
    assert "2.5" in re.search('<section id="training">(.*?)</section>', text, re.S).group(1)
    evaluation = re.search('<section id="eval">(.*?)</section>', text, re.S).group(1)
    assert "<td>mbpp</td><td>pass@1</td>" in evaluation and "0.25" in evaluation and "0.3" not in evaluation


def test_stage_leaves_drop_a_summary_the_manifest_repeats(run_dir):
    raw = Run(run_dir).stages[0]
    leaves = raw.leaves()
    assert leaves[("kept",)] == (10, ".state/raw.json") and ("ingest", "kept") not in leaves
    _state(run_dir, "eval_base", "eval", {"humaneval": {"pass@1": 0.1}, "mbpp": {"pass@1": 0.1}})
    eval_base = next(s for s in Run(run_dir).stages if s.name == "eval_base")
    assert {("humaneval", "pass@1"), ("mbpp", "pass@1")} <= set(eval_base.leaves())


def test_not_a_run_dir_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not a run dir"):
        build_report(tmp_path)
    with pytest.raises(BadInput, match="no such run dir"):
        build_report(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(BadInput, match="not a directory"):
        build_report(tmp_path / "file")


def test_out_may_be_a_dir(run_dir, tmp_path):
    assert build_report(run_dir, tmp_path) == tmp_path / "index.html"


def test_cli_prints_page_path_and_rejects_non_run_dirs(run_dir, tmp_path, cli):
    out = tmp_path / "elsewhere" / "page.html"
    result = cli("report", str(run_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out) and "eval_ft" in out.read_text()
    result = cli("report", str(tmp_path / "elsewhere"))  # a dir, but no run in it
    assert result.returncode == 2 and "not a run dir" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_recipe_report_stage_writes_its_dir_and_the_run_page(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "m.py").write_text("x = 1\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent(f"""
        name: tiny
        stages:
          - {{name: raw, uses: data.ingest, params: {{sources: ["{tmp_path / 'code'}"]}}}}
          - {{name: page, uses: report}}
    """))
    summaries = run_recipe(load_recipe(recipe), tmp_path / "run")
    page = tmp_path / "run" / "report" / "index.html"
    assert summaries["page"]["page"] == str(page)
    assert page.read_bytes() == (tmp_path / "run" / "page" / "index.html").read_bytes()
    assert "<td>raw</td>" in page.read_text()


# marks the page once every image has loaded (or failed): broken ones have naturalWidth 0
CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
});
</script>"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([shutil.which("chromium"), *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium_with_every_figure(run_dir, tmp_path):
    page = build_report(run_dir)
    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text().replace("</body>", CHECK_IMAGES + "</body>"))
    result = _chromium("--virtual-time-budget=5000", "--dump-dom", checked.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-images="7"' in result.stdout and 'data-broken="0"' in result.stdout, result.stdout[-2000:]
    screenshot = REPO / "artifacts" / "report.png"
    screenshot.parent.mkdir(exist_ok=True)
    result = _chromium(f"--screenshot={screenshot}", "--window-size=1280,8000", "--hide-scrollbars",
                       page.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0 and screenshot.stat().st_size > 10_000, result.stderr[-2000:]

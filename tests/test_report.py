import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from syllabus.errors import BadInput
from syllabus.report import build_report
from syllabus.report.page import SECTIONS, number
from syllabus.report.run import Run
from syllabus.summaries import FRACTION

REPO = Path(__file__).resolve().parents[1]


def section(text: str, name: str) -> str:
    return re.search(f'<section id="{name}">(.*?)</section>', text, re.S).group(1)


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the session's tiny run, free to edit."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run", symlinks=True))


@pytest.fixture(scope="module")
def page(tiny_run, tmp_path_factory):
    return build_report(tiny_run, tmp_path_factory.mktemp("page") / "index.html").read_text()


def test_every_stage_summary_fits_its_model(tiny_run):
    run = Run(tiny_run)
    assert [s.status for s in run.stages] == ["done"] * 20
    assert [(s.name, s.problem) for s in run.stages if s.summary is None] == []


def test_page_shows_each_stages_named_numbers(tiny_run, page):
    stages = {s.name: s.summary for s in Run(tiny_run).stages if s.summary is not None}
    for s in SECTIONS:
        body = section(page, s.id)
        assert s.meaning in html.unescape(body)
        assert "could not render" not in body and "not run yet" not in body and "not produced" not in body, s.id
    filtered, deduped, code = stages["filtered"], stages["deduped"], stages["code"]
    expected = {
        "data": [f"below threshold {filtered.total - filtered.kept}", f"exact duplicate {deduped.exact_duplicates}",
                 f"contaminated {code.records - code.kept}"],
        "scores": ["records judged", number(filtered.threshold, "probability")],
        "classifier": ["ROC AUC", number(stages["classifier"].f1, FRACTION), number(stages["classifier"].spearman)],
        "synth": [number(stages["exercises"].acceptance_rate, FRACTION), "distinct 4-grams",
                  number(stages["textbook"].diversity.distinct_4gram_ratio, FRACTION), "function names"],
        "dedup": [f"exact duplicates</th><td class=\"num\">{number(deduped.exact_duplicates, 'records')}",
                  f"records flagged</th><td class=\"num\">{number(code.flagged_records, 'records')}", "ngram"],
        "tokens": [number(stages["tokenizer"].vocab_size, "tokens"), number(stages["packed"].train_tokens, "tokens")],
        "training": [number(stages["base"].loss, "nats/token"), number(stages["finetuned"].val_loss, "nats/token")],
        "eval": [number(stages["eval_base"].benchmarks["humaneval"].nll, "nats/token"),
                 number(stages["eval_finetuned"].benchmarks["mbpp"].nll, "nats/token")],
        "graded": ["mean score", "itertools"],
        "ablation": [html.escape(stages["arms"].verdicts[0]), number(stages["scale_base"].mutant_preference, FRACTION)],
    }
    for name, numbers in expected.items():
        body = section(page, name)
        for value in numbers:
            assert value in body, (name, value)
    for file in (".state/classifier.json", "base/metrics.jsonl", "filtered/manifest.json"):
        assert f"<code>{file}</code>" in page, file
    assert not re.search(r"""(src|href)=["']?(https?:|//)|url\(|@import""", page)  # self-contained


def test_charts_say_in_words_what_is_all_zero(tiny_run, page):
    evals = [s.summary for s in Run(tiny_run).using("eval")]
    assert not any(b.pass_at_k[1] for e in evals for b in e.benchmarks.values())  # a 4-step model solves nothing
    body = section(page, "eval")
    assert "pass@1 is 0 on every benchmark for every checkpoint" in body
    assert body.count('<img class="figure"') == 1  # NLL only: no empty pass@1 axis
    # judge labels, classifier scores, confusion matrix, loss curves, NLL, the ablation's loss against tokens
    # (the offline teachers reject nothing)
    assert page.count('<img class="figure"') == 6


def test_a_summary_that_does_not_fit_its_model_is_one_line_not_a_guess(run_copy, cli, tmp_path):
    state = run_copy / ".state" / "deduped.json"
    old = json.loads(state.read_text())
    summary = old["summary"]
    summary["exact_removed"] = summary.pop("exact_duplicates")  # what an older syllabus might have written
    state.write_text(json.dumps(old))
    result = cli("report", str(run_copy), "--out", str(tmp_path / "page.html"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    text = (tmp_path / "page.html").read_text()
    problem = ".state/deduped.json: summary.exact_duplicates: Field required"
    assert problem in section(text, "dedup") and problem in section(text, "overview")
    assert "could not render" not in text and "<td>deduped</td>" in section(text, "data")


def test_unreadable_files_and_a_log_cut_mid_line_are_reported_not_fatal(run_copy):
    (run_copy / ".state" / "classifier.json").write_text("{broken")
    with open(run_copy / "base" / "metrics.jsonl", "a") as log:
        log.write('{"step": 5, "lo')  # a running stage mid-append
    text = build_report(run_copy).read_text()
    assert "<code>.state/classifier.json</code>" in text and "unreadable: JSONDecodeError" in text
    assert "not run yet: classifier has not finished" in section(text, "classifier")
    assert '<img class="figure"' in section(text, "training")


def test_empty_run_says_not_run_for_each_section_of_its_recipe(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"name": "empty", "stages": [
        {"name": "raw", "uses": "data.ingest"}, {"name": "deduped", "uses": "dedup"}]}))
    text = build_report(run).read_text()
    assert section(text, "data").count("not run yet: raw, deduped has not finished") == 1
    assert '<section id="eval">' not in text and "Not in this recipe, so not on this page" in text
    assert "could not render" not in text


def test_not_a_run_dir_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not a run dir"):
        build_report(tmp_path)
    with pytest.raises(BadInput, match="no such run dir"):
        build_report(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(BadInput, match="not a directory"):
        build_report(tmp_path / "file")


def test_cli_prints_page_path_and_rejects_non_run_dirs(tiny_run, tmp_path, cli):
    out = tmp_path / "elsewhere" / "page.html"
    result = cli("report", str(tiny_run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out) and "eval_finetuned" in out.read_text()
    assert build_report(tiny_run, tmp_path) == tmp_path / "index.html"  # --out may be a dir
    result = cli("report", str(tmp_path / "elsewhere"))  # a dir, but no run in it
    assert result.returncode == 2 and "not a run dir" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_recipe_report_stage_writes_its_dir_and_the_run_page(tiny_run):
    page = tiny_run / "report" / "index.html"
    assert json.loads((tiny_run / ".state" / "page.json").read_text())["summary"]["page"] == str(page)
    assert page.read_bytes() == (tiny_run / "page" / "index.html").read_bytes()


def test_data_stats_reads_the_stage_summary_through_its_model(tiny_run, cli):
    result = cli("data", "stats", str(tiny_run / "deduped"))
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    deduped = next(s.summary for s in Run(tiny_run).stages if s.name == "deduped")
    assert stats["summary"]["exact_duplicates"] == deduped.exact_duplicates and stats["stage"] == "dedup"


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
def test_page_renders_in_headless_chromium_with_every_figure(page, tmp_path):
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK_IMAGES + "</body>"))
    result = _chromium("--virtual-time-budget=5000", "--dump-dom", checked.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-images="6"' in result.stdout and 'data-broken="0"' in result.stdout, result.stdout[-2000:]
    screenshot = REPO / "artifacts" / "report.png"
    screenshot.parent.mkdir(exist_ok=True)
    result = _chromium(f"--screenshot={screenshot}", "--window-size=1280,8000", "--hide-scrollbars",
                       checked.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0 and screenshot.stat().st_size > 10_000, result.stderr[-2000:]

"""The report page: one section per part of the recipe, rendered from the stages' summaries.

Each section is a `Section` below (its title, one sentence of what it shows, the stage kinds it
reads, and optionally a function that prepares its figures and tables from the run) plus one macro
of the same name in `templates/sections.html.j2`, which lays out the stages' named numbers
(`fact_table(facts(stage.summary, "field", ...))` shows each field's label, value, unit and
meaning). Adding a section is one entry in SECTIONS, one macro, and the summary model its stage
writes in `syllabus.summaries`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2

from syllabus.report import figures
from syllabus.report.run import Run, Stage
from syllabus.summaries import FRACTION, BenchmarkScores, Fact, Summary

BENCHMARKS = ("humaneval", "mbpp", "unconventional")
TEACHER_STAGES = ("synth.textbook", "synth.exercises")  # the synth stages that ask a teacher
MAX_ROWS = 40


# ── what a section is ─────────────────────────────────────────────────────────────────────────


@dataclass
class Section:
    id: str  # the anchor, and the name of its macro in sections.html.j2
    title: str
    meaning: str  # one sentence: what the section tells a reader
    kinds: tuple[str, ...]  # the stage kinds it reads ("" for every stage)
    prepare: Callable[[Run], dict[str, Any]] = lambda run: {}  # figures and tables its macro shows


@dataclass
class Rendered:
    section: Section
    stages: list[Stage]  # the stages of its kinds that ran
    context: dict[str, Any] = field(default_factory=dict)  # what `prepare` made
    empty: str | None = None  # why there is nothing to show
    error: str | None = None  # a bug while building it; the rest of the page still renders


# ── formatting (jinja filters) ────────────────────────────────────────────────────────────────


def number(value: Any, unit: str = "") -> str:
    """A value with its unit, as a reader wants it: 12,345 tokens, 87.5%, 0.0312 nats/token."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == FRACTION and isinstance(value, (int, float)):
        return f"{value:.1%}" if value >= 0.001 or value == 0 else "< 0.1%"
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}" if unit and unit not in ("", FRACTION) else text


def compact(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "…"


def pretty(value: Any) -> str:
    return json.dumps(value.dump() if isinstance(value, Summary) else value, indent=1, default=str)


def facts(summary: Summary | None, *names: str) -> list[Fact]:
    return summary.facts(*names) if summary is not None else []


# ── figures for each section ──────────────────────────────────────────────────────────────────


def _scores_figures(run: Run) -> dict[str, Any]:
    out = {}
    for s in run.using("curate.annotate", "curate.filter"):
        if s.summary is None:
            continue
        histogram = s.summary.histogram
        if s.is_kind("curate.annotate"):
            out[s.name] = figures.bars([str(k) for k in sorted(histogram)], [histogram[k] for k in sorted(histogram)],
                                       title=f"{s.name}: judge labels", xlabel="educational value (0-5)",
                                       ylabel="records")
        else:
            edges = sorted(histogram)
            width = edges[1] - edges[0] if len(edges) > 1 else 0.1
            out[s.name] = figures.histogram([*edges, edges[-1] + width], [histogram[e] for e in edges],
                                            title=f"{s.name}: classifier scores, all records",
                                            xlabel="P(educational value ≥ 3)", threshold=s.summary.threshold)
    return out


def _classifier_figures(run: Run) -> dict[str, Any]:
    return {s.name: figures.confusion(s.summary.confusion, ["low", "high"], title=f"{s.name}: held-out predictions")
            for s in run.using("curate.train") if s.summary is not None}


MIN_BARS = 3  # fewer categories read better as a sentence than as a chart


def _synth_figures(run: Run) -> dict[str, Any]:
    return {s.name: figures.bars(list(s.summary.dropped()), list(s.summary.dropped().values()),
                                 title=f"{s.name}: rejected replies", ylabel="replies")
            for s in run.using(*TEACHER_STAGES) if s.summary is not None and len(s.summary.dropped()) >= MIN_BARS}


def _training_figures(run: Run) -> dict[str, Any]:
    panels = {}
    for s in run.using("train.pretrain", "train.finetune"):
        log = run.train_log(s)
        series = {}
        for name in ("loss", "val_loss"):
            points = [(row.step, getattr(row, name)) for row in log if getattr(row, name) is not None]
            if points:
                series[name.replace("_", " ")] = ([x for x, _ in points], [y for _, y in points])
        if series:
            panels[s.name] = series
    return {"curves": figures.curves(panels, xlabel="step")} if panels else {}


@dataclass
class ScoreTable:
    """One benchmark metric per row, one checkpoint (eval stage) per column."""

    checkpoints: list[str]
    rows: list[tuple[str, str, str, list[float | None]]]  # (benchmark, metric, unit, value per checkpoint)


def score_table(arms: dict[str, dict[str, BenchmarkScores]]) -> ScoreTable:
    benchmarks = sorted({b for scores in arms.values() for b in scores},
                        key=lambda b: (BENCHMARKS.index(b) if b in BENCHMARKS else len(BENCHMARKS), b))
    rows = []
    for benchmark in benchmarks:
        tasks = [s[benchmark].tasks if benchmark in s else None for s in arms.values()]
        if any(t is not None for t in tasks):
            rows.append((benchmark, "tasks", "tasks", tasks))
        ks = sorted({k for scores in arms.values() if benchmark in scores for k in scores[benchmark].pass_at_k})
        for k in ks:
            rows.append((benchmark, f"pass@{k}", FRACTION,
                         [s[benchmark].pass_at_k.get(k) if benchmark in s else None for s in arms.values()]))
        if any(benchmark in s and s[benchmark].nll is not None for s in arms.values()):
            rows.append((benchmark, "NLL", "nats/token",
                         [s[benchmark].nll if benchmark in s else None for s in arms.values()]))
    return ScoreTable(list(arms), rows)


def _metric_chart(table: ScoreTable, metric: str, ylabel: str) -> tuple[str | None, str | None]:
    """(figure, sentence): a sentence instead of a figure when every value is zero or missing."""
    rows = [(benchmark, values) for benchmark, m, _, values in table.rows if m == metric]
    values = [v for _, vs in rows for v in vs if v is not None]
    if not values:
        return None, None
    if not any(values):
        return None, (f"{metric} is 0 on every benchmark for every checkpoint: no generated solution passed "
                      "its tests. The NLL of the reference solutions is the number that moves at this scale.")
    series = {c: [vs[i] for _, vs in rows] for i, c in enumerate(table.checkpoints)}
    return figures.grouped_bars([b for b, _ in rows], series, title=metric, ylabel=ylabel), None


def _eval_figures(run: Run) -> dict[str, Any]:
    stages = [s for s in run.using("eval") if s.summary is not None]
    if not stages:
        return {}
    table = score_table({s.name: s.summary.benchmarks for s in stages})
    pass_figure, pass_sentence = _metric_chart(table, "pass@1", "pass@1 (fraction of problems)")
    nll_figure, _ = _metric_chart(table, "NLL", "NLL (nats/token)")
    return {"table": table, "pass": pass_figure, "pass_sentence": pass_sentence, "nll": nll_figure}


def _graded_figures(run: Run) -> dict[str, Any]:
    stages = [s for s in run.using("eval") if s.summary is not None and s.summary.probes is not None]
    libraries = sorted({lib for s in stages for lib in s.summary.probes.libraries})
    rows = [(lib, [s.summary.probes.libraries.get(lib) for s in stages]) for lib in libraries]
    solved = [p.pass_at_1 for _, ps in rows for p in ps if p is not None and p.pass_at_1 is not None]
    return {"probe_stages": [s.name for s in stages], "probe_rows": rows,
            "probes_all_zero": bool(solved) and not any(solved)}


def _ablation_figures(run: Run) -> dict[str, Any]:
    """Each ablation stage's analysis (its ablation.json): loss against tokens per arm with CI bands (and a
    panel for the neutral set), m(D) per arm with CIs, and the rows of its tables."""
    out = {}
    for s in run.using("ablation"):
        path = s.dir / "ablation.json"
        if s.summary is None or not path.exists():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        primary, neutral = "HumanEval + MBPP canonical solutions", "neutral held-out code"
        panels: dict[str, dict[str, figures.Band]] = {primary: {}, neutral: {}}
        for arm, c in result["curves"].items():
            if len(c["tokens"]) > 1:  # a one-budget arm (d, CP) is a point, not a curve
                panels[primary][arm] = (c["tokens"], c["loss"], c["ci"])
                panels[neutral][arm] = (c["tokens"][:len(c["neutral"])], c["neutral"], c["neutral_ci"])
        # only budgets inside the reference's range: past it m(D) is a bound, not a point of the curve
        exact = {arm: [r for r in m["budgets"] if r["bound"] == ""] for arm, m in result["multiplier"].items()}
        multiplier = {f"{arm} vs {result['params']['reference']}": ([r["tokens"] for r in rows], [r["m"] for r in rows],
                                                                     [r["ci"] for r in rows])
                      for arm, rows in exact.items() if rows}
        out[s.name] = {
            "result": result,
            "curves": figures.banded(panels, xlabel="training tokens", ylabel="nats per byte"),
            "multiplier": figures.banded({"data-efficiency multiplier m(D)": multiplier}, xlabel="training tokens D",
                                         ylabel="m(D)", reference=1.0) if multiplier else "",
            "split": [(f"{c['arm']} vs {c['baseline']}", part, v) for c in result["contrasts"]
                      for part, v in c.get("split", {}).items()],
        }
    return out


SECTIONS = (
    Section("overview", "Run overview", "Which stages ran, how long each took and what it produced.", ("",)),
    Section("data", "Data card", "How many records each dataset-writing stage kept, and why it dropped the rest.",
            ("data.ingest", "curate.filter", "dedup", "decontam", "synth")),
    Section("scores", "Educational value", "How the judge labelled a sample of the corpus, and how the classifier "
            "scored all of it: the filter keeps what lies right of the threshold.",
            ("curate.annotate", "curate.filter"), _scores_figures),
    Section("classifier", "Educational-value classifier", "How well the classifier that stands in for the judge "
            "predicts its labels on folds it did not train on.", ("curate.train",), _classifier_figures),
    Section("synth", "Synthetic textbooks and exercises", "How much the teacher wrote, how much passed the "
            "checks, and how varied the kept records are.", TEACHER_STAGES, _synth_figures),
    Section("dedup", "Deduplication and decontamination", "Duplicates removed from the training code, and the "
            "training records that resemble a benchmark task.", ("dedup", "decontam")),
    Section("tokens", "Tokenizer and packed data", "The vocabulary trained on the data, and the tokens packed into "
            "fixed-length training sequences.", ("tokenizer.train", "train.pack")),
    Section("training", "Training", "Loss on the training batches and on held-out tokens, per training stage.",
            ("train.pretrain", "train.finetune"), _training_figures),
    Section("eval", "Evaluation: pass@k and NLL", "Share of benchmark problems solved by executing the model's "
            "code, and how likely the model finds the reference solutions.", ("eval",), _eval_figures),
    Section("graded", "Graded score and library probes", "A judge's score of the unconventional problems, and how "
            "often the model uses common libraries correctly.", ("eval",), _graded_figures),
    Section("ablation", "Ablation", "Whether the recipe's data makes a better model: pre-registered contrasts "
            "between arms, their scaling curves and data-efficiency multiplier, with bootstrap CIs over seeds and "
            "problems.", ("ablation",), _ablation_figures),
)


# ── page ──────────────────────────────────────────────────────────────────────────────────────


def _stages_of(run: Run, section: Section) -> list[Stage]:
    return run.stages if section.kinds == ("",) else run.using(*section.kinds)


def build(run: Run, section: Section) -> Rendered:
    stages = _stages_of(run, section)
    if section.kinds != ("",) and not stages:
        pending = [s.name for s in run.stages if s.is_kind(*section.kinds)]
        return Rendered(section, [], empty=f"not run yet: {', '.join(pending)} has not finished.")
    try:
        return Rendered(section, stages, section.prepare(run))
    except Exception as e:  # noqa: BLE001 -- a bug in one section must not cost the whole page
        return Rendered(section, stages, error=repr(e))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("syllabus.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=number, compact=compact, pretty=pretty)
    env.globals.update(facts=facts, max_rows=MAX_ROWS, FRACTION=FRACTION)
    return env


def render(run: Run) -> str:
    shown = [s for s in SECTIONS if s.kinds == ("",) or run.in_recipe(*s.kinds)]
    absent = [s.title for s in SECTIONS if s not in shown]
    rendered = [build(run, s) for s in shown]
    css = (resources.files("syllabus.report") / "report.css").read_text(encoding="utf-8")
    return environment().get_template("page.html.j2").render(
        run=run, sections=rendered, absent=absent, css=css, name=run.recipe.get("name") or run.dir.name,
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"), problems=[s for s in run.stages if s.problem],
        files=_files(run),
    )


def _files(run: Run) -> Iterable[tuple[str, int | None, str]]:
    rows = []
    for file, problem in sorted(run.read.items()):
        path = run.dir / file
        rows.append((file, path.stat().st_size if path.is_file() else None, problem or "ok"))
    return rows

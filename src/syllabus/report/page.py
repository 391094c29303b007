"""The report page: one section per part of the recipe, each rendered from whatever its stages left.

A section whose stages did not run says so; a stage whose output has an unexpected shape shows
what could be read. Under every table and figure is the file its numbers came from.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from syllabus.console import console
from syllabus.data.stats import BYTES_PER_TOKEN
from syllabus.report import figures
from syllabus.report.run import Run, Stage, flatten

BENCHMARKS = ("humaneval", "mbpp", "unconventional")
MAX_ROWS = 40

KeyPath = tuple[str, ...]


@dataclass
class Section:
    id: str
    title: str
    parts: list[str] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)

    def add(self, part: str | None, *sources: str | None) -> None:
        if part:
            self.parts.append(part)
            self.sources.update(s for s in sources if s)

    def not_run(self, kinds: str) -> Section:
        self.parts.append(f'<p class="empty">not run: this run has no finished {html.escape(kinds)} stage.</p>')
        return self


# ── formatting ────────────────────────────────────────────────────────────────────────────────


class Markup(str):
    """A table cell that is already HTML."""


def code(path: str | None) -> Markup | None:
    return Markup(f"<code>{html.escape(path)}</code>") if path else None


def fmt(value: Any) -> str:
    if isinstance(value, Markup):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return html.escape(text if len(text) <= 120 else text[:117] + "…")


def table(headers: Iterable[str] | None, rows: Iterable[Iterable[Any]]) -> str:
    """An HTML table of fmt-formatted cells (Markup cells go in as they are); no header row if headers is None."""
    head = f'<thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in headers)}</tr></thead>' if headers else ""
    rows = list(rows)
    body = []
    for row in rows[:MAX_ROWS]:
        cells = []
        for cell in row:
            numeric = cell is None or isinstance(cell, (int, float)) and not isinstance(cell, bool)
            cells.append(f'<td class="num">{fmt(cell)}</td>' if numeric else f"<td>{fmt(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    if len(rows) > MAX_ROWS:
        body.append(f'<tr><td class="note" colspan="{len(rows[0])}">… and {len(rows) - MAX_ROWS:,} more rows</td></tr>')
    return f'<table>{head}<tbody>{"".join(body)}</tbody></table>'


def source_note(*sources: str | None) -> str:
    files = sorted({s for s in sources if s})
    return '<p class="src">from ' + ", ".join(f"<code>{html.escape(s)}</code>" for s in files) + "</p>" if files else ""


def any_table(obj: Any) -> str | None:
    """A table from whatever shape a stage chose: rows of dicts, a dict of dicts, a dict of scalars."""
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        columns = list(dict.fromkeys(k for r in obj for k in r))
        return table(columns, ([r.get(c) for c in columns] for r in obj))
    if isinstance(obj, list) and obj and all(isinstance(r, list) for r in obj):
        return table(None, obj)
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        rows = {key: {"/".join(p): v for p, v in flatten(inner)} for key, inner in obj.items()}
        columns = list(dict.fromkeys(c for r in rows.values() for c in r))
        return table(["", *columns], ([key, *(r.get(c) for c in columns)] for key, r in rows.items()))
    if isinstance(obj, dict) and obj:
        return table(["", "value"], obj.items())
    if isinstance(obj, list) and obj:
        return table(["value"], ([v] for v in obj))
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare_table(stages: list[Stage], keep: Callable[[KeyPath], bool] = lambda p: True) -> tuple[str | None, set[str]]:
    """Scalar leaves of several stages side by side: one row per key path, one column per stage."""
    columns: dict[str, dict[str, Any]] = {}
    sources: set[str] = set()
    for stage in stages:
        column = columns.setdefault(stage.name, {})
        for path, (value, source) in stage.leaves().items():
            if isinstance(value, (dict, list)) or not keep(path):
                continue
            column.setdefault("/".join(path), value)
            sources.add(source)
    keys = list(dict.fromkeys(k for c in columns.values() for k in c))
    if not keys:
        return None, sources
    return table(["", *columns], ([k, *(c.get(k) for c in columns.values())] for k in keys)), sources


def details(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def _done(stages: list[Stage]) -> list[Stage]:
    return [s for s in stages if s.status != "not run"]


# ── sections ──────────────────────────────────────────────────────────────────────────────────


def overview(run: Run) -> Section:
    section = Section("overview", "Run overview")
    recipe = run.recipe
    facts = [
        ("recipe", recipe.get("name", "—")),
        ("description", recipe.get("description") or "—"),
        ("recipe file", recipe.get("source") or "—"),
        ("run dir", str(run.dir.resolve())),
        ("stages finished", f"{sum(s.status == 'done' for s in run.stages)} of {len(run.stages)}"),
        ("stage time", f"{sum(s.seconds or 0 for s in run.stages):.1f} s"),
    ]
    section.add(table(None, facts), "recipe.json" if recipe else None)
    rows = []
    for s in run.stages:
        badge = Markup(f'<span class="status {html.escape(s.status)}">{html.escape(s.status)}</span>')
        records = s.manifest.get("records") if s.manifest else s.find("records")[0]
        rows.append([s.name, s.uses or None, badge, f"{fmt(s.seconds)} s" if s.seconds is not None else None, records,
                     code(run.rel(run.dir / ".state" / f"{s.name}.json")) if s.status != "not run" else None])
    section.add(table(["stage", "uses", "status", "time", "records", "source"], rows),
                *(run.rel(run.dir / ".state" / f"{s.name}.json") for s in run.stages if s.status != "not run"))
    return section


def _drop_reasons(stage: Stage) -> tuple[dict[str, Any], set[str]]:
    """{reason: count} from the stage's `dropped_<reason>` / `skipped_<reason>` counters, and their files."""
    reasons, sources = {}, set()
    for path, (value, source) in stage.leaves().items():
        if path[-1].startswith(("dropped_", "skipped_")) and _number(value):
            reasons[path[-1].split("_", 1)[1]] = value
            sources.add(source)
    return reasons, sources


def _kept_fraction(stage: Stage, records: Any) -> float | None:
    parents = (stage.manifest or {}).get("parents") or []
    parent_records = sum(_number(p.get("records")) or 0 for p in parents if isinstance(p, dict))
    if parent_records and _number(records) is not None:
        return records / parent_records
    kept, total = _number(stage.find("kept")[0]), _number(stage.find("total")[0])
    return kept / total if kept is not None and total else None


def data_card(run: Run) -> Section:
    section = Section("data", "Data card")
    rows = []
    for s in run.stages:
        if s.manifest is None and s.find("records", "tokens")[0] is None:
            continue
        records = (s.manifest or {}).get("records", s.find("records")[0])
        size = (s.manifest or {}).get("bytes", s.find("bytes")[0])
        tokens, _ = s.find("tokens", "total_tokens", "train_tokens")
        if tokens is None and _number(size):
            tokens = f"≈ {fmt(int(size / BYTES_PER_TOKEN))}"
        kept = _kept_fraction(s, records)
        source = run.rel(s.dir / "manifest.json") if s.manifest else s.documents[0][0]
        reasons, reason_sources = _drop_reasons(s)
        rows.append([s.name, s.uses, records, size, tokens, f"{kept:.1%}" if kept is not None else None,
                     ", ".join(f"{reason} {fmt(count)}" for reason, count in reasons.items()) or None,
                     code(source)])
        section.sources.update({source, *reason_sources})
    if not rows:
        return section.not_run("dataset-writing")
    section.add(table(["stage", "uses", "records", "bytes", "tokens", "kept", "dropped / skipped", "source"], rows))
    section.add('<p class="note">kept: records out over records in (its parent datasets), or kept/total of '
                f"the stage's own count. Tokens marked ≈ are bytes / {BYTES_PER_TOKEN}.</p>")
    return section


def _histogram_figure(obj: Any, title: str, xlabel: str, threshold: float | None) -> str | None:
    """A histogram from {counts, edges|bins}, {label: count} or a list of counts."""
    if isinstance(obj, dict) and isinstance(obj.get("counts"), list):
        counts = obj["counts"]
        if not all(_number(c) is not None for c in counts):
            return None
        edges = obj.get("edges") or obj.get("bins") or []
        edges = edges if isinstance(edges, list) else []
        if len(edges) == len(counts) + 1 and all(_number(e) is not None for e in edges):
            return figures.histogram(edges, counts, title=title, xlabel=xlabel, threshold=threshold)
        labels = [f"{e:g}" if _number(e) is not None else str(e) for e in edges] if len(edges) == len(counts) \
            else [str(i) for i in range(len(counts))]
        return figures.bars(labels, counts, title=title, xlabel=xlabel, ylabel="records")
    if isinstance(obj, dict) and obj and all(_number(v) is not None for v in obj.values()):
        return figures.bars(list(obj), list(obj.values()), title=title, xlabel=xlabel, ylabel="records")
    if isinstance(obj, list) and obj and all(_number(v) is not None for v in obj):
        return figures.bars([str(i) for i in range(len(obj))], obj, title=title, xlabel=xlabel, ylabel="records")
    return None


def educational_scores(run: Run) -> Section:
    section = Section("scores", "Educational value")
    annotated, filtered = _done(run.using("curate.annotate")), _done(run.using("curate.filter"))
    for s in annotated:
        counts, source = s.find("score_counts", "label_counts", "score_histogram", "histogram")
        figure = _histogram_figure(counts, f"{s.name}: judge labels", "educational value (0-5)", None)
        if figure is None:
            path = run.find_jsonl(s, ("labels.jsonl",), ("score",))
            rows = run.jsonl(path) if path else list(run.records(s))
            scores = Counter(r["score"] for r in rows if _number(r.get("score")) is not None)
            source = run.rel(path) if path else run.rel(s.dir / "manifest.json")
            if scores:
                labels = sorted(scores)
                figure = figures.bars([f"{v:g}" for v in labels], [scores[v] for v in labels],
                                      title=f"{s.name}: judge labels", xlabel="educational value (0-5)",
                                      ylabel="records")
        section.add(f"<div>{figure}{source_note(source)}</div>" if figure else None, source)
    for s in filtered:
        threshold, threshold_source = s.find("threshold")
        if threshold is None and isinstance((s.manifest or {}).get("params"), dict):
            threshold, threshold_source = s.manifest["params"].get("threshold"), run.rel(s.dir / "manifest.json")
        threshold = _number(threshold)
        obj, source = s.find("score_histogram", "edu_score_histogram", "histogram")
        title = f"{s.name}: classifier scores"
        figure = _histogram_figure(obj, title, "edu_score", threshold)
        if figure is None:
            scores = [r["edu_score"] for r in run.records(s) if _number(r.get("edu_score")) is not None]
            source = run.rel(s.dir / "manifest.json")
            if scores:  # the stage kept only these, so this is the kept side of the threshold
                counts, edges = np.histogram(scores, bins=20)
                figure = figures.histogram(edges, counts, title=f"{title} (kept records)", xlabel="edu_score",
                                           threshold=threshold)
        section.add(f"<div>{figure}{source_note(source, threshold_source)}</div>" if figure else None,
                    source, threshold_source)
    if not section.parts:
        return section.not_run("curate.annotate or curate.filter")
    section.parts = [f'<div class="figures">{"".join(section.parts)}</div>']
    return section


CLASSIFIER_FIRST = ("f1", "precision", "recall", "roc_auc", "auc", "spearman", "accuracy")


def classifier(run: Run) -> Section:
    section = Section("classifier", "Educational-value classifier")
    stages = _done(run.using("curate.train"))
    if not stages:
        return section.not_run("curate.train")
    rows, sources = [], set()
    for s in stages:
        leaves = s.leaves()
        ordered = sorted((p for p, (v, _) in leaves.items() if _number(v) is not None),
                         key=lambda p: CLASSIFIER_FIRST.index(p[-1]) if p[-1] in CLASSIFIER_FIRST else 99)
        for path in ordered:
            value, source = leaves[path]
            rows.append([s.name, "/".join(path), value, code(source)])
            sources.add(source)
    section.add(table(["stage", "metric", "value", "source"], rows) if rows else None, *sources)
    for s in stages:
        matrix, source = s.find("confusion_matrix", "confusion")
        if isinstance(matrix, dict):
            matrix = matrix.get("matrix")
        if isinstance(matrix, list) and matrix and all(isinstance(r, list) and len(r) == len(matrix) for r in matrix):
            labels, _ = s.find("labels", "classes")
            labels = [str(x) for x in labels] if isinstance(labels, list) and len(labels) == len(matrix) \
                else [str(i) for i in range(len(matrix))]
            section.add(figures.confusion(matrix, labels, title=f"{s.name}: confusion matrix") + source_note(source),
                        source)
    return section


DIVERSITY_WORDS = ("distinct", "coverage", "diversity", "unique", "entropy")


def synthetic(run: Run) -> Section:
    section = Section("synth", "Synthetic textbooks and exercises")
    stages = _done(run.using("synth"))
    if not stages:
        return section.not_run("synth.textbook or synth.exercises")
    rows, row_sources = [], []
    for s in stages:
        rate, source = s.find("acceptance_rate", "accept_rate")
        if _number(rate) is None:
            accepted, source = s.find("accepted", "kept")
            generated, _ = s.find("generated", "attempted", "total")
            rate = accepted / generated if _number(accepted) is not None and _number(generated) else None
        records = (s.manifest or {}).get("records", s.find("records")[0])
        rows.append([s.name, records, f"{rate:.1%}" if _number(rate) is not None else None, code(source)])
        row_sources.append(source)
    section.add("<h3>Acceptance</h3>" + table(["stage", "records", "acceptance", "source"], rows), *row_sources)
    diversity, sources = compare_table(stages, lambda p: any(w in part.lower() for part in p for w in DIVERSITY_WORDS))
    section.add("<h3>Diversity</h3>" + diversity + source_note(*sources) if diversity else None, *sources)
    rejection_figures = []
    for s in stages:
        reasons, source = s.find("rejection_reasons", "rejections", "rejected_by_reason")
        sources = {source}
        if not isinstance(reasons, dict):
            reasons, sources = _drop_reasons(s)
        reasons = {str(k): v for k, v in reasons.items() if _number(v) is not None}
        if reasons:
            figure = figures.bars(list(reasons), list(reasons.values()), title=f"{s.name}: rejections", ylabel="count")
            counts = table(["reason", "count"], reasons.items())
            rejection_figures.append(f"<div>{figure}{counts}{source_note(*sources)}</div>")
            section.sources.update(sources)
    if rejection_figures:
        section.add(f'<h3>Rejection reasons</h3><div class="figures">{"".join(rejection_figures)}</div>')
    return section


TAU_KEYS = ("tau_table", "tau_sweep", "taus", "tau")
FLAG_KEYS = ("per_task", "flagged_tasks", "flags", "tasks")


def dedup_decontam(run: Run) -> Section:
    section = Section("dedup", "Deduplication and decontamination")
    dedup, decontam = _done(run.using("dedup")), _done(run.using("decontam"))
    if not dedup and not decontam:
        return section.not_run("dedup or decontam")
    if dedup:
        counts, sources = compare_table(dedup)
        section.add("<h3>Duplicates removed</h3>" + (counts or "") + source_note(*sources), *sources)
        for s in dedup:
            clusters, source = s.find("example_clusters", "clusters", "examples")
            if isinstance(clusters, list) and clusters:
                body = "".join(f"<pre>{html.escape(json.dumps(c, indent=1, default=str)[:1500])}</pre>"
                               for c in clusters[:5])
                section.add(details(f"{s.name}: {min(len(clusters), 5)} example clusters", body) + source_note(source),
                            source)
    for s in decontam:
        headline, sources = compare_table([s], lambda p: not set(p) & {*TAU_KEYS, *FLAG_KEYS})
        section.add(f"<h3>{html.escape(s.name)}: contamination</h3>" + (headline or "") + source_note(*sources),
                    *sources)
        taus, source = s.find(*TAU_KEYS)
        tau_table = any_table(taus) if isinstance(taus, (list, dict)) else None
        section.add("<h4>Fraction flagged by τ</h4>" + tau_table + source_note(source) if tau_table else None, source)
        flags, source = s.find(*FLAG_KEYS)
        flag_table = any_table(flags) if isinstance(flags, (list, dict)) else None
        if flag_table:
            count = len(flags)
            section.add(details(f"per-task flags ({count} tasks, first {min(count, MAX_ROWS)} shown)", flag_table)
                        + source_note(source), source)
    return section


LOSS_SERIES = ("loss", "train_loss", "val_loss")


def training(run: Run) -> Section:
    section = Section("training", "Training")
    panels, rows = {}, []
    for s in _done(run.using("train")):
        path = run.find_jsonl(s, ("metrics.jsonl", "log.jsonl", "train_log.jsonl"), ("loss",))
        log = run.jsonl(path) if path else []
        if not log:
            continue
        source = run.rel(path)
        x_key = "step" if all(_number(r.get("step")) is not None for r in log) else None
        series = {}
        for name in LOSS_SERIES:
            points = [(r[x_key] if x_key else i, r[name]) for i, r in enumerate(log)
                      if _number(r.get(name)) is not None]
            if points:
                series[name] = ([x for x, _ in points], [y for _, y in points])
        panels[s.name] = series
        columns = {key: [v for r in log if (v := _number(r.get(key))) is not None]
                   for key in ("step", "loss", "val_loss", "lr", "tokens_per_s")}
        final = {key: values[-1] if values else None for key, values in columns.items()}
        speeds, val = columns["tokens_per_s"], columns["val_loss"]
        rows.append([s.name, final["step"] if final["step"] is not None else len(log), final["loss"],
                     final["val_loss"], min(val) if val else None, final["lr"],
                     sum(speeds) / len(speeds) if speeds else None, code(source)])
        section.sources.add(source)
    if not rows:
        return section.not_run("train.pretrain or train.finetune (with a metrics log)")
    section.add(figures.curves(panels, xlabel="step"))
    section.add(table(["stage", "last step", "final loss", "final val_loss", "best val_loss", "final lr",
                       "mean tokens/s", "source"], rows))
    return section


PASS_AT = re.compile(r"^pass(?:@|_at_|_at|@k?)(\d+)$")
PASS_K_PARTS = {"passk", "pass@k", "pass_at_k"}
GENERIC_PARTS = {"metrics", "results", "scores", "benchmarks", "eval", *PASS_K_PARTS}


def _benchmark(part: str) -> str | None:
    lower = part.lower()
    return next((b for b in BENCHMARKS if lower.startswith(b)), None)


def _metric(part: str) -> str | None:
    lower = part.lower()
    if m := PASS_AT.match(lower):
        return f"pass@{m.group(1)}"
    return "nll" if "nll" in lower else None


def evaluation(run: Run) -> tuple[Section, Section]:
    """pass@k and NLL per benchmark and checkpoint; then graded scores and library probes."""
    section, graded = Section("eval", "Evaluation: pass@k and NLL"), Section("graded", "Graded score and probes")
    stages = _done(run.using("eval"))
    cells: dict[tuple[str, str], dict[str, Any]] = {}  # (benchmark, metric) -> checkpoint -> value
    checkpoint_sources: dict[str, set[str]] = {}
    for s in stages:
        # a stage that evaluates one benchmark may name it once, or in the stage's name
        named, _ = s.find("benchmark")
        stage_benchmark = _benchmark(named) if isinstance(named, str) else None
        stage_benchmark = stage_benchmark or next((b for b in BENCHMARKS if b in s.name.lower()), None)
        for path, (value, source) in s.leaves().items():
            if _number(value) is None:
                continue
            benchmark = next((b for p in path if (b := _benchmark(p))), stage_benchmark)
            metric = next((m for p in path if (m := _metric(p))), None)
            if metric is None and path[-1].isdigit() and any(p.lower() in PASS_K_PARTS for p in path):
                metric, path = f"pass@{path[-1]}", path[:-1]  # {"pass@k": {"1": 0.1}}
            if benchmark is None or metric is None:
                continue
            rest = [p for p in path if not _benchmark(p) and not _metric(p) and p.lower() not in GENERIC_PARTS]
            checkpoint = "/".join([s.name, *rest])
            cells.setdefault((benchmark, metric), {}).setdefault(checkpoint, value)
            checkpoint_sources.setdefault(checkpoint, set()).add(source)
            section.sources.add(source)
    if not cells:
        section.not_run("eval (with pass@k or NLL)")
    else:
        checkpoints = list(dict.fromkeys(c for row in cells.values() for c in row))
        order = sorted(cells, key=lambda bm: (BENCHMARKS.index(bm[0]), bm[1] == "nll", bm[1]))
        rows = [[b, m, *(cells[b, m].get(c) for c in checkpoints)] for b, m in order]
        rows.append(["from", "", *(Markup(" ".join(map(code, sorted(checkpoint_sources[c])))) for c in checkpoints)])
        section.add(table(["benchmark", "metric", *checkpoints], rows))
        pass_metric = min((m for _, m in cells if m.startswith("pass@")), key=lambda m: int(m[5:]), default=None)
        if pass_metric:
            groups = [b for b in BENCHMARKS if (b, pass_metric) in cells]
            series = {c: [cells[b, pass_metric].get(c) or 0 for b in groups] for c in checkpoints}
            section.add(figures.grouped_bars(groups, series, title=pass_metric, ylabel=pass_metric))
        section.add('<p class="note">One column per checkpoint (eval stage, and the model under it when a '
                    "stage evaluates several): base and finetuned side by side. NLL is the mean negative "
                    "log-likelihood of the canonical solutions (lower is better).</p>")
    for word, title in (("grade", "Graded score"), ("probe", "Library probes")):
        body, sources = compare_table(stages, lambda p, w=word: any(w in part.lower() for part in p))
        graded.add(f"<h3>{title}</h3>" + body + source_note(*sources) if body else None, *sources)
    if not graded.parts:
        graded.not_run("eval (with graded scores or probes)")
    return section, graded


def ablation(run: Run) -> Section:
    section = Section("ablation", "Ablation")
    stages = _done(run.using("ablation"))
    if not stages:
        return section.not_run("ablation")
    for s in stages:
        rows, source = s.find("table", "arms", "rows", "ablation")
        body, sources = any_table(rows) if isinstance(rows, (list, dict)) else None, {source}
        if body is None:
            body, sources = compare_table([s])
        section.add(f"<h3>{html.escape(s.name)}</h3>" + (body or "<p>no table found</p>") + source_note(*sources),
                    *sources)
        note, _ = s.find("conclusion", "note", "finding")
        section.add(f'<p class="note">{html.escape(str(note))}</p>' if isinstance(note, str) else None)
    return section


def provenance(run: Run, sections: list[Section]) -> Section:
    section = Section("provenance", "Provenance")
    used_by: dict[str, list[str]] = {}
    for s in sections:
        for source in s.sources:
            used_by.setdefault(source, []).append(s.title)
    rows = []
    for file, problem in sorted(run.read.items()):
        path = run.dir / file
        size = path.stat().st_size if path.is_file() else None
        rows.append([code(file), size, ", ".join(used_by.get(file, [])) or None, problem or "ok"])
    section.add("<p>Every file this page read, relative to the run dir, and the sections whose numbers came "
                "from it.</p>" + table(["file", "bytes", "used in", "read"], rows))
    return section


# ── page ──────────────────────────────────────────────────────────────────────────────────────


def _safe(build: Callable[[Run], Section | tuple[Section, ...]], run: Run) -> list[Section]:
    # stage output formats are still settling: an odd one must cost its own section, not the page
    try:
        result = build(run)
    except Exception as e:  # noqa: BLE001
        console.print(f"[yellow]report: section {build.__name__} failed: {e!r}[/yellow]")
        failed = Section(build.__name__, build.__name__.replace("_", " ").capitalize())
        failed.parts.append(f'<p class="error">could not render: {html.escape(repr(e))}</p>')
        return [failed]
    return list(result) if isinstance(result, tuple) else [result]


SECTIONS = (overview, data_card, educational_scores, classifier, synthetic, dedup_decontam, training, evaluation,
            ablation)


def render(run: Run) -> str:
    sections = [s for build in SECTIONS for s in _safe(build, run)]
    sections.append(provenance(run, sections))
    name = html.escape(str(run.recipe.get("name") or run.dir.name))
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
                   for s in sections)
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>syllabus report: {name}</title><style>{CSS}</style></head><body>"
            f"<header><h1>syllabus report: {name}</h1><p>{html.escape(str(run.dir.resolve()))} · "
            f"generated {generated}</p><nav>{nav}</nav></header><main>{body}</main></body></html>\n")


CSS = """
:root { --ink: #1d2330; --muted: #5f6b7a; --line: #e3e7ed; --accent: #3465a4; --bg: #fbfbfc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5;
       font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 1.2rem 2rem 0.6rem; }
header h1 { margin: 0; font-size: 1.5rem; }
header p { margin: 0.2rem 0 0.6rem; color: var(--muted); font-size: 0.85rem; }
nav { display: flex; flex-wrap: wrap; gap: 0.3rem 1rem; font-size: 0.85rem; }
nav a { color: var(--accent); text-decoration: none; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem 2rem 3rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.8rem 1.4rem 1rem;
          margin: 1.2rem 0; }
h2 { font-size: 1.2rem; margin: 0.2rem 0 0.8rem; border-bottom: 2px solid var(--accent);
     display: inline-block; padding-bottom: 0.1rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
h4 { font-size: 0.9rem; margin: 0.8rem 0 0.3rem; color: var(--muted); }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.4rem 0; display: block; overflow-x: auto; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: #f3f5f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
code { font: 0.8rem ui-monospace, "DejaVu Sans Mono", monospace; color: #3a4452; }
pre { font: 0.75rem ui-monospace, "DejaVu Sans Mono", monospace; background: #f5f6f8; padding: 0.5rem;
      overflow-x: auto; }
.src { color: var(--muted); font-size: 0.75rem; margin: 0.1rem 0 0.8rem; }
.note { color: var(--muted); font-size: 0.8rem; }
.empty { color: var(--muted); font-style: italic; }
.error { color: #a40000; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 0.5rem 1.5rem; }
img.figure { max-width: 100%; height: auto; display: block; margin: 0.4rem 0; }
.status { border-radius: 3px; padding: 0 0.4rem; font-size: 0.75rem; background: #eee; }
.status.done { background: #e3f1d8; color: #2f5e0b; }
.status.running { background: #fdf0d0; color: #7a5b00; }
details { margin: 0.4rem 0; } summary { cursor: pointer; color: var(--accent); font-size: 0.85rem; }
"""

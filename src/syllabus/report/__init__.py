"""`syllabus report`: one self-contained HTML page per run (figures embedded, no external assets)."""

from __future__ import annotations

from pathlib import Path

from syllabus.config import Params, StageContext
from syllabus.data.files import atomic_write_bytes, atomic_write_text
from syllabus.report.page import render
from syllabus.report.run import Run
from syllabus.summaries import ReportSummary

PAGE = Path("report") / "index.html"


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render the run dir to `out` (a file or a dir; default RUN_DIR/report/index.html); returns the page's path."""
    run = Run(run_dir)
    path = Path(out) if out is not None else run.dir / PAGE
    if path.is_dir():
        path = path / PAGE.name
    atomic_write_text(path, render(run))
    return path


class ReportParams(Params):
    pass


def report_stage(params: ReportParams, inputs: dict, out: Path, ctx: StageContext) -> ReportSummary:
    """Recipe stage: the page goes into the stage's output dir and to RUN_DIR/report/index.html."""
    page = build_report(ctx.run_dir, out / "index.html")
    mirror = Path(ctx.run_dir) / PAGE
    if mirror.resolve() != page.resolve():
        atomic_write_bytes(mirror, page.read_bytes())
    return ReportSummary(page=str(mirror), bytes=page.stat().st_size)

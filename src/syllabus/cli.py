"""The `syllabus` command: one thin command per stage, each a wrapper over an importable function.

Exit codes: 0 success, 1 a failed run, 2 bad input (one line: file, record, problem).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from syllabus.console import console
from syllabus.errors import BadInput

app = typer.Typer(
    help="Train small code models on textbook-quality data (the phi-1 recipe).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Build and inspect dataset dirs.", no_args_is_help=True)
curate_app = typer.Typer(help="Educational-value judge, embedding classifier, filter.", no_args_is_help=True)
synth_app = typer.Typer(help="Synthetic textbooks and verified CodeExercises from a teacher LLM.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train, load and use a byte-level BPE tokenizer.", no_args_is_help=True)
train_app = typer.Typer(help="Pack token shards; pretrain and finetune the phi-1 model.", no_args_is_help=True)
eval_app = typer.Typer(help="Generate and execute HumanEval/MBPP completions; pass@k.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(curate_app, name="curate")
app.add_typer(synth_app, name="synth")
app.add_typer(tokenizer_app, name="tokenizer")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

ANY_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _not_built(command: str, issue: int) -> None:
    console.print(f"syllabus {command}: not built yet (issue #{issue})")
    raise typer.Exit(1)


def _print_json(obj: object) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


# ── recipes ──────────────────────────────────────────────────────────────────────────────────


@app.command("run")
def run_cmd(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML, or the name of a packaged recipe (quickstart).")],
    out: Annotated[Optional[Path], typer.Option(help="Run dir (default: the recipe's `out`).")] = None,
    from_stage: Annotated[Optional[str], typer.Option("--from", help="Re-run from this stage on.")] = None,
    only: Annotated[Optional[str], typer.Option(help="Run only this stage.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and estimates; run nothing.")] = False,
) -> None:
    """Run a recipe's stages in order; finished stages are skipped, an interrupted one resumes."""
    from syllabus.recipe import load_and_run

    run_dir, _ = load_and_run(recipe, out, from_stage=from_stage, only=only, dry_run=dry_run)
    if not dry_run:
        console.print(f"run dir: {run_dir}")


@app.command()
def demo(out: Annotated[Path, typer.Option(help="Run dir.")] = Path("runs/demo")) -> None:
    """Run recipes/quickstart.yaml offline on CPU: every stage at tiny scale, in minutes."""
    from syllabus.recipe import load_and_run

    run_dir, _ = load_and_run("quickstart", out)
    report = run_dir / "report" / "index.html"
    console.print(f"demo finished: {report if report.exists() else run_dir}")
    typer.echo(str(report if report.exists() else run_dir))


# ── data ─────────────────────────────────────────────────────────────────────────────────────


@data_app.command("ingest")
def data_ingest(
    sources: Annotated[list[str], typer.Argument(help="Dirs of .py files, git checkouts, .jsonl/.parquet files, or 'stdlib' / 'site-packages'.")],
    out: Annotated[Path, typer.Option(help="Output dataset dir.")],
    max_bytes: Annotated[int, typer.Option(help="Skip files larger than this.")] = 1_000_000,
    max_files: Annotated[Optional[int], typer.Option(help="Stop after this many files.")] = None,
    records_per_shard: Annotated[int, typer.Option(help="Records per output shard.")] = 2_000,
) -> None:
    """Build the raw code corpus, keeping path/repo/license as provenance."""
    from syllabus.data.ingest import IngestParams, ingest

    params = IngestParams(sources=sources, max_bytes=max_bytes, max_files=max_files, records_per_shard=records_per_shard)
    dataset = ingest(params, out)
    _print_json({"out": str(dataset.path), "records": len(dataset), **dataset.manifest["summary"]["ingest"]})


@data_app.command("stats")
def data_stats(path: Annotated[Path, typer.Argument(help="Dataset dir.")]) -> None:
    """Counts, approximate tokens, languages and sizes of a dataset dir."""
    from syllabus.data.stats import dataset_stats

    _print_json(dataset_stats(path))


@data_app.command("verify")
def data_verify(path: Annotated[Path, typer.Argument(help="Dataset dir.")]) -> None:
    """Check every shard's sha256 against manifest.json."""
    from syllabus.data.dataset import Dataset

    dataset = Dataset(path)
    dataset.verify()
    console.print(f"ok: {len(dataset.shards)} shards, {len(dataset)} records verified")


# ── curate (issue #11) ───────────────────────────────────────────────────────────────────────


@curate_app.command("annotate")
def curate_annotate(
    data: Annotated[Path, typer.Option(help="Dataset dir to sample from.")],
    out: Annotated[Path, typer.Option(help="Labels JSONL to write (re-running resumes it).")],
    judge: Annotated[str, typer.Option(help="'heuristic', or an LLM endpoint: http(s)://..., offline:NAME.")] = "heuristic",
    n: Annotated[int, typer.Option(help="Records to judge, stratified by source.")] = 200,
    model: Annotated[Optional[str], typer.Option(help="Model name at the endpoint.")] = None,
    prompt: Annotated[Optional[Path], typer.Option(help="Judge prompt file with a {code} placeholder.")] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Reply cache dir.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Rate the educational value (0-5) of sampled records with an LLM or heuristic judge."""
    from syllabus.curate.judge import annotate, get_judge

    options = {} if judge == "heuristic" else {"model": model, "prompt_file": prompt, "concurrency": concurrency,
                                               "cache_dir": cache_dir}
    _print_json({"out": str(out), **annotate(data, get_judge(judge, **options), n, out, seed=seed)})


@curate_app.command("train")
def curate_train(
    labels: Annotated[Path, typer.Option(help="Labels JSONL (id, score, text).")],
    out: Annotated[Path, typer.Option(help="Classifier file to write.")],
    embedder: Annotated[str, typer.Option(help="hashing, features, minilm, hf:DIR, lm:DIR, or a+b.")] = "hashing+features",
    model: Annotated[str, typer.Option(help="rf, logreg or ensemble.")] = "ensemble",
    folds: Annotated[int, typer.Option(help="Stratified CV folds.")] = 5,
    data: Annotated[Optional[Path], typer.Option(help="Dataset dir holding the texts of labels given by id only.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache dir.")] = None,
    workers: Annotated[int, typer.Option(help="Cores for the forest.")] = 2,
) -> None:
    """Train the educational-value classifier on embeddings of labelled records; print CV metrics."""
    from syllabus.curate.classifier import load_labels, train_classifier

    classifier = train_classifier(load_labels(labels, data), embedder, model=model, folds=folds,
                                  cache_dir=cache_dir, n_jobs=workers)
    classifier.save(out)
    _print_json({"out": str(out), "embedder": classifier.embedder_key, **classifier.cv_metrics})


@curate_app.command("filter")
def curate_filter(
    data: Annotated[Path, typer.Option(help="Dataset dir to score.")],
    classifier: Annotated[Path, typer.Option(help="Classifier file from `curate train`.")],
    out: Annotated[Path, typer.Option(help="Output dataset dir (kept records, with edu_score).")],
    threshold: Annotated[Optional[float], typer.Option(help="Keep records with P(score >= 3) at least this.")] = None,
    keep_fraction: Annotated[Optional[float], typer.Option(help="Keep about this fraction (threshold from a sample).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    batch_size: Annotated[int, typer.Option(help="Records embedded per batch.")] = 256,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache dir.")] = None,
) -> None:
    """Score every record with the classifier and keep the educational ones."""
    from syllabus.curate.filter import filter_dataset

    dataset = filter_dataset(data, classifier, out, threshold=threshold, keep_fraction=keep_fraction,
                             workers=workers, executor=executor, batch_size=batch_size, cache_dir=cache_dir)
    _print_json({"out": str(dataset.path), "records": len(dataset), **dataset.manifest["summary"]["curate"]})


# ── synth (issue #12) ────────────────────────────────────────────────────────────────────────


@synth_app.command("textbook", context_settings=ANY_ARGS)
def synth_textbook() -> None:
    """Write textbook sections with a teacher LLM over a topic x audience grid."""
    _not_built("synth textbook", 12)


@synth_app.command("exercises", context_settings=ANY_ARGS)
def synth_exercises() -> None:
    """Write CodeExercises with a teacher LLM; keep those whose solutions pass in the sandbox."""
    _not_built("synth exercises", 12)


# ── dedup and decontam (issue #7) ────────────────────────────────────────────────────────────


@app.command("dedup", context_settings=ANY_ARGS)
def dedup_cmd() -> None:
    """Remove exact and MinHash-LSH near duplicates."""
    _not_built("dedup", 7)


@app.command("decontam", context_settings=ANY_ARGS)
def decontam_cmd() -> None:
    """Find and prune training records similar to HumanEval/MBPP (n-gram, embedding, AST)."""
    _not_built("decontam", 7)


# ── tokenizer, model, serve (issue #5) ───────────────────────────────────────────────────────


@tokenizer_app.command("train", context_settings=ANY_ARGS)
def tokenizer_train() -> None:
    """Train a byte-level BPE tokenizer on dataset dirs."""
    _not_built("tokenizer train", 5)


@tokenizer_app.command("encode", context_settings=ANY_ARGS)
def tokenizer_encode() -> None:
    """Encode text to token ids."""
    _not_built("tokenizer encode", 5)


@tokenizer_app.command("decode", context_settings=ANY_ARGS)
def tokenizer_decode() -> None:
    """Decode token ids to text."""
    _not_built("tokenizer decode", 5)


@app.command("serve", context_settings=ANY_ARGS)
def serve_cmd() -> None:
    """Serve a model dir over an OpenAI-compatible HTTP API."""
    _not_built("serve", 5)


# ── train (issue #6) ─────────────────────────────────────────────────────────────────────────


@train_app.command("pack", context_settings=ANY_ARGS)
def train_pack() -> None:
    """Tokenize dataset dirs into packed memmap shards of fixed-length sequences."""
    _not_built("train pack", 6)


@train_app.command("run", context_settings=ANY_ARGS)
def train_run() -> None:
    """Pretrain or finetune from a training config (torchrun-ready)."""
    _not_built("train run", 6)


# ── eval (issues #4, #10) ────────────────────────────────────────────────────────────────────


@eval_app.command("execute", context_settings=ANY_ARGS)
def eval_execute() -> None:
    """Execute samples against benchmark tests in the sandbox; print pass@k."""
    _not_built("eval execute", 4)


@eval_app.command("generate", context_settings=ANY_ARGS)
def eval_generate() -> None:
    """Generate completions for a benchmark from a model dir, HF dir or endpoint."""
    _not_built("eval generate", 4)


@eval_app.command("run", context_settings=ANY_ARGS)
def eval_run() -> None:
    """Generate, then execute."""
    _not_built("eval run", 4)


@eval_app.command("nll", context_settings=ANY_ARGS)
def eval_nll() -> None:
    """Mean negative log-likelihood of canonical solutions given the prompts."""
    _not_built("eval nll", 4)


@eval_app.command("grade", context_settings=ANY_ARGS)
def eval_grade() -> None:
    """LLM-graded understanding score of solutions (0-10)."""
    _not_built("eval grade", 10)


# ── report (issue #9) ────────────────────────────────────────────────────────────────────────


@app.command("report", context_settings=ANY_ARGS)
def report_cmd() -> None:
    """Render a run dir as one self-contained HTML page."""
    _not_built("report", 9)


def main() -> None:
    try:
        app()
    except BadInput as e:
        console.print(f"[red]error:[/red] {e.line()}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted; finished work is kept, re-run to resume")
        sys.exit(130)

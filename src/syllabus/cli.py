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


@curate_app.command("annotate", context_settings=ANY_ARGS)
def curate_annotate() -> None:
    """Rate the educational value of sampled records with an LLM or heuristic judge."""
    _not_built("curate annotate", 11)


@curate_app.command("train", context_settings=ANY_ARGS)
def curate_train() -> None:
    """Train the educational-value classifier on embeddings of labelled records."""
    _not_built("curate train", 11)


@curate_app.command("filter", context_settings=ANY_ARGS)
def curate_filter() -> None:
    """Score every record with the classifier and keep the educational ones."""
    _not_built("curate filter", 11)


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


@tokenizer_app.command("train")
def tokenizer_train(
    datasets: Annotated[list[Path], typer.Argument(help="Dataset dirs whose records' text to train on.")],
    out: Annotated[Path, typer.Option(help="Dir to write tokenizer.json into.")],
    vocab_size: Annotated[int, typer.Option(help="Tokens in the vocabulary, special and whitespace tokens included.")] = 4096,
    min_frequency: Annotated[int, typer.Option(help="Merge pairs seen at least this often.")] = 2,
) -> None:
    """Train a byte-level BPE tokenizer on dataset dirs."""
    from syllabus.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(datasets, vocab_size, out, min_frequency=min_frequency)
    _print_json({"out": str(tokenizer.source), "vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id})


@tokenizer_app.command("encode")
def tokenizer_encode(
    tokenizer: Annotated[Path, typer.Option(help="tokenizer.json, or a dir holding one (e.g. a model dir).")],
    text: Annotated[Optional[str], typer.Argument(help="Text to encode (default: stdin).")] = None,
) -> None:
    """Encode text to token ids (a JSON list)."""
    from syllabus.tokenizer import load_tokenizer

    _print_json(load_tokenizer(tokenizer).encode(sys.stdin.read() if text is None else text))


@tokenizer_app.command("decode")
def tokenizer_decode(
    tokenizer: Annotated[Path, typer.Option(help="tokenizer.json, or a dir holding one (e.g. a model dir).")],
    ids: Annotated[list[int], typer.Argument(help="Token ids.")],
) -> None:
    """Decode token ids to text."""
    from syllabus.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    unknown = [i for i in ids if not 0 <= i < tok.vocab_size]
    if unknown:
        raise BadInput(f"token ids outside the vocab of {tok.vocab_size}: {unknown[:10]}", file=tokenizer)
    sys.stdout.write(tok.decode(ids))
    sys.stdout.flush()


@app.command("serve")
def serve_cmd(
    model: Annotated[Path, typer.Option(help="Model dir (config.json + model.safetensors + tokenizer.json) or a Hugging Face phi dir.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    name: Annotated[Optional[str], typer.Option(help="Model name clients ask for (default: the dir's name).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1, ... (default: cuda if available).")] = None,
    max_batch: Annotated[int, typer.Option(help="Most requests generated together in one batch.")] = 16,
) -> None:
    """Serve a model dir over an OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions)."""
    from syllabus.serve import serve

    serve(model, host=host, port=port, name=name, device=device, max_batch=max_batch)


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


def _parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(part) for part in text.split(","))
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise BadInput(f"--k {text!r}: expected comma-separated positive integers, e.g. 1,10,100")
    return ks


@eval_app.command("execute")
def eval_execute(
    benchmark: Annotated[str, typer.Option(help="humaneval, mbpp, or another registered benchmark.")],
    samples: Annotated[Path, typer.Option(help='JSONL of {"task_id": ..., "completion": ...} lines.')],
    problems: Annotated[Optional[Path], typer.Option(help="Problems JSONL (HumanEval or MBPP schema) instead of the bundled ones.")] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k for pass@k.")] = "1,10,100",
    workers: Annotated[Optional[int], typer.Option(help="Sandbox workers (default: CPU cores).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample.")] = 3.0,
    out: Annotated[Optional[Path], typer.Option(help="Results JSONL (default: SAMPLES_results.jsonl).")] = None,
) -> None:
    """Execute samples against benchmark tests in the sandbox; print pass@k."""
    from syllabus.eval.run import execute_file

    ks = _parse_ks(k)
    _print_json(execute_file(benchmark, samples, problems_path=problems, out=out, ks=ks, workers=workers, timeout=timeout))


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

"""The `syllabus` command: one thin command per stage, each a wrapper over an importable function.

Exit codes: 0 success, 1 a failed run, 2 bad input (one line: file, record, problem).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from syllabus.console import console
from syllabus.errors import BadInput, RunFailed

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


def _print_version(value: bool) -> None:
    if value:
        from syllabus import __version__

        typer.echo(f"syllabus {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version,
                                          is_eager=True)] = False,
) -> None:
    """Train small code models on textbook-quality data (the phi-1 recipe)."""


def _print_json(obj: object) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _default(params: str, field: str, as_list: bool = False) -> Callable[[], object]:
    """An option's default_factory: the default of a stage's Params field, so a command and a recipe
    stage cannot disagree. `params` ("module:Class") is imported only when the option is left out,
    which keeps `syllabus --help` from importing every stage."""

    def default() -> object:
        module, name = params.split(":")
        value = getattr(importlib.import_module(module), name).model_fields[field].get_default(
            call_default_factory=True)
        return [value] if as_list and not isinstance(value, list) else value

    return default


# Where shard work runs (issue #8): the same three options on every sharded data stage.
WorkersOpt = Annotated[int, typer.Option(help="Parallel shard workers (processes, or Ray CPUs for a local cluster).")]


def _executor(value: str) -> str:
    from syllabus.scale import EXECUTORS

    if value not in EXECUTORS:
        raise typer.BadParameter(f"expected one of {', '.join(EXECUTORS)}, got {value!r}")
    return value


ExecutorOpt = Annotated[str, typer.Option(help="local (process pool) or ray.", callback=_executor)]
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="Output shards: jsonl.zst or parquet (default: the input's format, else jsonl.zst).")]
AddressOpt = Annotated[Optional[str], typer.Option(
    help="Ray cluster to join ('auto' or HOST:PORT); without it --executor ray starts a local one.")]


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


INGEST = "syllabus.ingest:IngestParams"
ANNOTATE, TRAIN, FILTER = "syllabus.curate.judge:AnnotateParams", "syllabus.curate.classifier:TrainParams", \
    "syllabus.curate.filter:FilterParams"
TEXTBOOK, EXERCISES = "syllabus.synth.textbook:TextbookParams", "syllabus.synth.exercises:ExercisesParams"
DEDUP, DECONTAM, PACK = "syllabus.dedup:DedupParams", "syllabus.decontam:DecontamParams", "syllabus.train.pack:PackParams"


# ── data ─────────────────────────────────────────────────────────────────────────────────────


@data_app.command("ingest")
def data_ingest(
    sources: Annotated[list[str], typer.Argument(help="Dirs of .py files, git checkouts, .jsonl/.parquet files, or 'stdlib' / 'site-packages'.")],
    out: Annotated[Path, typer.Option(help="Output dataset dir.")],
    max_bytes: Annotated[int, typer.Option(help="Skip files larger than this.",
                                           default_factory=_default(INGEST, "max_bytes"))],
    records_per_shard: Annotated[int, typer.Option(help="Files read into one output shard.",
                                                   default_factory=_default(INGEST, "records_per_shard"))],
    max_files: Annotated[Optional[int], typer.Option(help="Stop after this many files.")] = None,
    format: FormatOpt = None,
    workers: WorkersOpt = 2,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Build the raw code corpus, keeping path/repo/license as provenance."""
    from syllabus.config import validate
    from syllabus.ingest import IngestParams, ingest

    params = validate(IngestParams, {"sources": sources, "max_bytes": max_bytes, "max_files": max_files,
                                     "records_per_shard": records_per_shard, "format": format}, file=None)
    dataset = ingest(params, out, workers=workers, executor=executor, address=address)
    _print_json({"out": str(dataset.path), "records": len(dataset), **dataset.manifest["summary"]["data.ingest"]})


@data_app.command("stats")
def data_stats(path: Annotated[Path, typer.Argument(help="Dataset dir.")]) -> None:
    """Counts, approximate tokens, languages and sizes of a dataset dir, and the summary its stage wrote."""
    from syllabus.data.dataset import MANIFEST, Dataset
    from syllabus.data.stats import dataset_stats
    from syllabus.summaries import dataset_summary

    summary = dataset_summary(Dataset(path).manifest, file=path / MANIFEST)
    _print_json({**dataset_stats(path), "summary": summary.dump() if summary is not None else None})


@data_app.command("verify")
def data_verify(path: Annotated[Path, typer.Argument(help="Dataset dir.")]) -> None:
    """Check every shard's sha256 against manifest.json."""
    from syllabus.data.dataset import Dataset

    dataset = Dataset(path)
    dataset.verify()
    console.print(f"ok: {len(dataset.shards)} shards, {len(dataset)} records verified")


@data_app.command("push")
def data_push(
    path: Annotated[Path, typer.Argument(help="Dataset dir.")],
    repo: Annotated[str, typer.Argument(help="Hugging Face dataset repo id, e.g. me/stdlib-textbook.")],
    private: Annotated[bool, typer.Option(help="Create the repo private.")] = False,
    revision: Annotated[Optional[str], typer.Option(help="Branch to commit to (default: main).")] = None,
    message: Annotated[Optional[str], typer.Option(help="Commit message.")] = None,
) -> None:
    """Upload a dataset dir (card, manifest, shards) to the Hugging Face Hub; token from HF_TOKEN or `hf auth login`."""
    from syllabus.data.hub import push_dataset

    _print_json({"repo": repo, "commit": push_dataset(path, repo, private=private, revision=revision, message=message)})


# ── curate (issue #11) ───────────────────────────────────────────────────────────────────────


@curate_app.command("annotate")
def curate_annotate(
    data: Annotated[Path, typer.Option(help="Dataset dir to sample from.")],
    out: Annotated[Path, typer.Option(help="Labels JSONL to write (re-running resumes it).")],
    judge: Annotated[str, typer.Option(help="'heuristic', or an LLM endpoint: http(s)://..., offline:NAME.",
                                       default_factory=_default(ANNOTATE, "judge"))],
    n: Annotated[int, typer.Option(help="Records to judge, stratified by source.",
                                   default_factory=_default(ANNOTATE, "n"))],
    seed: Annotated[int, typer.Option(help="Sampling seed.", default_factory=_default(ANNOTATE, "seed"))],
    model: Annotated[Optional[str], typer.Option(help="Model name at the endpoint.")] = None,
    prompt: Annotated[Optional[Path], typer.Option(help="Judge prompt file with a {code} placeholder.")] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Reply cache dir.")] = None,
    budget_usd: BudgetOpt = None,
    prices: PricesOpt = None,
    mode: ModeOpt = None,
) -> None:
    """Rate the educational value (0-5) of sampled records with an LLM or heuristic judge."""
    from syllabus.config import validate
    from syllabus.curate.judge import annotate, get_judge
    from syllabus.llm.spend import SpendParams

    _register_offline_teachers(judge)
    spend = validate(SpendParams, _spend(budget_usd=budget_usd, prices=prices, mode=mode), file=None)
    options = {} if judge == "heuristic" else {"model": model, "prompt_file": prompt, "concurrency": concurrency,
                                               "cache_dir": cache_dir, "spend": spend}
    _print_json({"out": str(out), **annotate(data, get_judge(judge, **options), n, out, seed=seed).dump()})


@curate_app.command("train")
def curate_train(
    labels: Annotated[Path, typer.Option(help="Labels JSONL (id, score, text).")],
    out: Annotated[Path, typer.Option(help="Classifier file to write.")],
    embedder: Annotated[str, typer.Option(help="hashing, subtokens, features, minilm, minilm-docs, hf:DIR, lm:DIR, or a+b.",
                                          default_factory=_default(TRAIN, "embedder"))],
    model: Annotated[str, typer.Option(help="rf, logreg, or ensemble (a stack of both per embedder part).",
                                       default_factory=_default(TRAIN, "model"))],
    folds: Annotated[int, typer.Option(help="Stratified CV folds.", default_factory=_default(TRAIN, "folds"))],
    tune_threshold: Annotated[bool, typer.Option(
        "--tune-threshold/--no-tune-threshold", help="Pick the F1-best threshold by inner CV (stored for filter).",
        default_factory=_default(TRAIN, "tune_threshold"))],
    data: Annotated[Optional[Path], typer.Option(help="Dataset dir holding the texts of labels given by id only.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache dir.")] = None,
    workers: Annotated[int, typer.Option(help="Cores for the forest.")] = 2,
) -> None:
    """Train the educational-value classifier on embeddings of labelled records; print CV metrics."""
    from syllabus.curate.classifier import load_labels, train_classifier

    classifier = train_classifier(load_labels(labels, data), embedder, model=model, folds=folds,
                                  cache_dir=cache_dir, n_jobs=workers, tune_threshold=tune_threshold)
    classifier.save(out)
    _print_json({"out": str(out), "embedder": classifier.embedder_key, **classifier.cv_metrics})


@curate_app.command("filter")
def curate_filter(
    data: Annotated[Path, typer.Option(help="Dataset dir to score.")],
    classifier: Annotated[Path, typer.Option(help="Classifier file from `curate train`, or `builtin` (the shipped one, trained on gold labels).")],
    out: Annotated[Path, typer.Option(help="Output dataset dir (kept records, with edu_score).")],
    batch_size: Annotated[int, typer.Option(help="Records embedded per batch.",
                                            default_factory=_default(FILTER, "batch_size"))],
    threshold: Annotated[Optional[float], typer.Option(help="Keep records with P(score >= 3) at least this (default: the classifier's).")] = None,
    keep_fraction: Annotated[Optional[float], typer.Option(help="Keep about this fraction (threshold from a sample).")] = None,
    workers: WorkersOpt = 2,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache dir.")] = None,
    format: FormatOpt = None,
) -> None:
    """Score every record with the classifier and keep the educational ones."""
    from syllabus.curate.filter import filter_dataset

    dataset = filter_dataset(data, classifier, out, threshold=threshold, keep_fraction=keep_fraction,
                             workers=workers, executor=executor, address=address, batch_size=batch_size,
                             cache_dir=cache_dir, format=format)
    _print_json({"out": str(dataset.path), "records": len(dataset), **dataset.manifest["summary"]["curate.filter"]})


# ── synth (issue #12) ────────────────────────────────────────────────────────────────────────


# Synth options left out (None) take the stage's Params default: one source for the CLI and recipes.
TeacherOpt = Annotated[Optional[list[str]], typer.Option(
    metavar="URL", help="Teacher: http(s) URL of an OpenAI-compatible server (repeat it, or comma-separate URLs, "
                        "to spread requests over several), offline:NAME or local:DIR.")]
ModelOpt = Annotated[Optional[str], typer.Option(help="Model name sent to the server.")]
NOpt = Annotated[Optional[int], typer.Option("--n", help="Prompts to send.")]
ConcurrencyOpt = Annotated[Optional[int], typer.Option(help="Requests in flight at once, per teacher server.")]
BudgetOpt = Annotated[Optional[float], typer.Option(
    "--budget-usd", help="Stop cleanly before spending more than this many USD (the model's price must be known).")]
CacheOpt = Annotated[Optional[Path], typer.Option(help="Reply cache dir (default: OUT/llm-cache).")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Prompts per output shard.")]
TemperatureOpt = Annotated[Optional[float], typer.Option()]
MaxTokensOpt = Annotated[Optional[int], typer.Option()]
SeedOpt = Annotated[Optional[int], typer.Option()]
PricesOpt = Annotated[Optional[str], typer.Option(
    help="The model's USD per million input,output tokens, e.g. 0.5,1.5 (overrides the price table).")]
ModeOpt = Annotated[Optional[str], typer.Option(help="online, or batch: the OpenAI Batch API (half price, within 24 h).")]


def _spend(**options: object) -> dict:
    """The SpendParams keys given on the command line (budget_usd, prices, mode)."""
    if options.get("prices") is not None:
        options["prices"] = options["prices"].split(",")
    return {k: v for k, v in options.items() if v is not None}


def _teacher_params(**options: object) -> dict:
    if options["teacher"] == []:
        options["teacher"] = None
    spend = _spend(budget_usd=options.pop("budget_usd"), prices=options.pop("prices"), mode=options.pop("mode"))
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if v is not None} | spend


def _synth_result(dataset, key: str) -> None:
    from syllabus.synth.batches import headline

    _print_json({"out": str(dataset.path), **headline(dataset.manifest["summary"][key])})


@synth_app.command("textbook")
def synth_textbook(
    out: Annotated[Path, typer.Option(help="Output dataset dir.")],
    teacher: TeacherOpt = None,
    model: ModelOpt = None,
    n: NOpt = None,
    concurrency: ConcurrencyOpt = None,
    budget_usd: BudgetOpt = None,
    topics: Annotated[Optional[Path], typer.Option(help="Topic tree YAML (default: the packaged one).")] = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = None,
    cache_dir: CacheOpt = None,
    prices: PricesOpt = None,
    mode: ModeOpt = None,
    format: FormatOpt = None,
) -> None:
    """Write textbook sections with a teacher LLM over a topic x audience x style grid."""
    from syllabus.config import validate
    from syllabus.synth.textbook import TextbookParams, synth_textbook

    params = validate(TextbookParams, _teacher_params(
        teacher=teacher, model=model, n=n, concurrency=concurrency, budget_usd=budget_usd, topics=topics,
        temperature=temperature, max_tokens=max_tokens, batch_size=batch_size, seed=seed, cache_dir=cache_dir,
        prices=prices, mode=mode, format=format), file=None)
    _synth_result(synth_textbook(params, out), "synth.textbook")


@synth_app.command("exercises")
def synth_exercises(
    out: Annotated[Path, typer.Option(help="Output dataset dir.")],
    teacher: TeacherOpt = None,
    model: ModelOpt = None,
    n: NOpt = None,
    concurrency: ConcurrencyOpt = None,
    budget_usd: BudgetOpt = None,
    names: Annotated[Optional[Path], typer.Option(help="Function-name vocabulary, `topic: name` lines.")] = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Sandbox processes.")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Seconds a solution may run against its tests.")] = None,
    cache_dir: CacheOpt = None,
    prices: PricesOpt = None,
    mode: ModeOpt = None,
    parallel_batches: Annotated[int, typer.Option(
        help="Batches verified at once, each with its own --workers sandbox processes (with --address: the cluster's CPUs).")] = 1,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    format: FormatOpt = None,
) -> None:
    """Write CodeExercises with a teacher LLM; keep those whose solutions pass in the sandbox."""
    from syllabus.config import validate
    from syllabus.synth.exercises import ExercisesParams, synth_exercises

    params = validate(ExercisesParams, _teacher_params(
        teacher=teacher, model=model, n=n, concurrency=concurrency, budget_usd=budget_usd, names=names,
        temperature=temperature, max_tokens=max_tokens, batch_size=batch_size, seed=seed, workers=workers,
        timeout=timeout, cache_dir=cache_dir, prices=prices, mode=mode, format=format), file=None)
    _synth_result(synth_exercises(params, out, workers=parallel_batches, executor=executor, address=address),
                  "synth.exercises")


# ── dedup and decontam (issue #7) ────────────────────────────────────────────────────────────


@app.command("dedup")
def dedup_cmd(
    data: Annotated[Path, typer.Option(help="Input dataset dir.")],
    out: Annotated[Path, typer.Option(help="Output dataset dir.")],
    threshold: Annotated[float, typer.Option(help="Jaccard similarity that makes a near duplicate.",
                                             default_factory=_default(DEDUP, "threshold"))],
    shingle: Annotated[int, typer.Option(help="Tokens per shingle.", default_factory=_default(DEDUP, "shingle"))],
    num_perm: Annotated[int, typer.Option(help="MinHash permutations.", default_factory=_default(DEDUP, "num_perm"))],
    format: FormatOpt = None,
    workers: WorkersOpt = 2,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Remove exact and MinHash-LSH near duplicates."""
    from syllabus.config import validate
    from syllabus.dedup import DedupParams, dedup

    params = validate(DedupParams, {"threshold": threshold, "shingle": shingle, "num_perm": num_perm,
                                    "format": format}, file=None)
    dataset = dedup(data, out, params, workers=workers, executor=executor, address=address)
    summary = dataset.manifest["summary"]["dedup"]
    _print_json({"out": str(dataset.path), **{k: v for k, v in summary.items() if k != "example_clusters"}})


@app.command("decontam")
def decontam_cmd(
    data: Annotated[Path, typer.Option(help="Dataset dir to check.")],
    out: Annotated[Path, typer.Option(help="Report dir: report.json is written here.")],
    benchmark: Annotated[list[str], typer.Option(help="humaneval, mbpp, or a problems JSONL file; repeatable.",
                                                 default_factory=_default(DECONTAM, "benchmarks"))],
    ngram: Annotated[int, typer.Option(help="n-gram length (normalized tokens).",
                                       default_factory=_default(DECONTAM, "ngram"))],
    tau: Annotated[float, typer.Option(help="AST similarity that flags a record.",
                                       default_factory=_default(DECONTAM, "tau"))],
    embedder: Annotated[str, typer.Option(help="Embedder spec: hashing, minilm, hf:<dir>, lm:<dir>.",
                                          default_factory=_default(DECONTAM, "embedder"))],
    embed_metric: Annotated[str, typer.Option(help="cosine or l2.", default_factory=_default(DECONTAM, "embed_metric"))],
    embed_cutoff: Annotated[float, typer.Option(help="cosine >= cutoff (or L2 <= cutoff) flags.",
                                                default_factory=_default(DECONTAM, "embed_cutoff"))],
    prune: Annotated[Optional[Path], typer.Option(help="Write the dataset without flagged records here.")] = None,
    split: Annotated[Optional[Path], typer.Option(help="Write each benchmark's similar / non-similar task lists here.")] = None,
    format: FormatOpt = None,
    workers: WorkersOpt = 2,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Find and prune training records similar to HumanEval/MBPP (n-gram, embedding, AST)."""
    from syllabus.config import validate
    from syllabus.decontam import DecontamParams, decontaminate

    params = validate(DecontamParams, {"benchmarks": benchmark, "ngram": ngram, "tau": tau, "embedder": embedder,
                                       "embed_metric": embed_metric, "embed_cutoff": embed_cutoff, "format": format},
                      file=None)
    report = decontaminate(data, params=params, report_dir=out, prune_out=prune, split_out=split, workers=workers,
                           executor=executor, address=address)
    _print_json({"report": str(out / "report.json"), "records": report["records"],
                 "flagged_records": report["flagged_records"], "by_method": report["by_method"],
                 "seconds": report["seconds"]})


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


@train_app.command("pack")
def train_pack(
    data: Annotated[list[str], typer.Option(help="Dataset dir, optionally with a sampling weight: DIR or DIR=2.0. Repeat for a mix.")],
    tokenizer: Annotated[Path, typer.Option(help="Tokenizer dir, model dir or tokenizer.json.")],
    out: Annotated[Path, typer.Option(help="Output packed dir.")],
    seq_len: Annotated[int, typer.Option(help="Tokens per training sequence.", default_factory=_default(PACK, "seq_len"))],
    val_fraction: Annotated[float, typer.Option(help="Fraction of documents held out for validation.",
                                                default_factory=_default(PACK, "val_fraction"))],
    include_prompt: Annotated[bool, typer.Option(help="Train on prompts of prompt/completion records too.",
                                                 default_factory=_default(PACK, "include_prompt"))],
    workers: Annotated[int, typer.Option(help="Tokenizer processes.")] = 2,
) -> None:
    """Tokenize dataset dirs into packed memmap shards of fixed-length sequences."""
    from syllabus.train.pack import PackParams, pack

    dirs, weights = [], {}
    for spec in data:
        path, _, weight = spec.partition("=")
        dirs.append(Path(path))
        if weight:
            try:
                weights[Path(path).resolve().name] = float(weight)
            except ValueError:
                raise BadInput(f"--data {spec}: the weight after '=' must be a number") from None
    params = PackParams(seq_len=seq_len, val_fraction=val_fraction, include_prompt=include_prompt, weights=weights)
    meta = pack(dirs, tokenizer, out, params, workers=workers)
    _print_json({"out": str(out), "train_tokens": meta["train_tokens"], "val_tokens": meta["val"]["tokens"],
                 "vocab_size": meta["vocab_size"], "dtype": meta["dtype"]})


@train_app.command("run")
def train_run(
    data: Annotated[Path, typer.Option(help="Packed dir from `syllabus train pack`.")],
    out: Annotated[Path, typer.Option(help="Run dir: checkpoints, metrics.jsonl, and the final model dir.")],
    config: Annotated[Optional[Path], typer.Option(help="Training config YAML (may name a `preset`).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="phi-1-pretrain, phi-1-finetune, tiny-pretrain, tiny-finetune.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key: --set max_steps=500.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint in --out.")] = False,
    init: Annotated[Optional[Path], typer.Option(help="Model dir to start from (finetuning).")] = None,
    hf_out: Annotated[Optional[Path], typer.Option(help="Also export the final model in Hugging Face format here.")] = None,
) -> None:
    """Pretrain or finetune (one process, or one rank under `torchrun --nproc_per_node N -m syllabus train run`)."""
    import yaml

    from syllabus.config import load_yaml
    from syllabus.train.config import config_from_dict
    from syllabus.train.loop import train

    if (config is None) == (preset is None):
        raise BadInput("give exactly one of --config YAML or --preset NAME")
    values = load_yaml(config) if config else {"preset": preset}
    if not isinstance(values, dict):
        raise BadInput("a training config must be a YAML mapping", file=config)
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInput(f"--set {item}: expected KEY=VALUE")
        values[key] = yaml.safe_load(value)
    summary = train(config_from_dict(values, file=config), data, out, resume=resume, init=init, hf_out=hf_out)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_json(summary)


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
    samples: Annotated[Path, typer.Option(help='human-eval JSONL ({"task_id", "completion"} lines), evalplus JSONL '
                                               '({"task_id", "solution"} lines) or bigcode generations.json.')],
    problems: Annotated[Optional[Path], typer.Option(help="Problems JSONL (HumanEval or MBPP schema) instead of the bundled ones.")] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k for pass@k.")] = "1,10,100",
    workers: Annotated[Optional[int], typer.Option(help="Sandbox workers (default: two per CPU core).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample.")] = 3.0,
    out: Annotated[Optional[Path], typer.Option(help="Results JSONL (default: SAMPLES_results.jsonl); pass_at_k.json goes beside it.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N problems (default: those `eval generate` asked, or a generations file's length).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name for pass_at_k.json (default: what `eval generate` recorded).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature for pass_at_k.json (default: what `eval generate` recorded).")] = None,
) -> None:
    """Execute samples against benchmark tests in the sandbox; print pass@k."""
    from syllabus.eval.run import execute_file

    ks = _parse_ks(k)
    _print_json(execute_file(benchmark, samples, problems_path=problems, out=out, ks=ks, workers=workers,
                             timeout=timeout, limit=limit, model=model, temperature=temperature).to_json())


Model = Annotated[str, typer.Option(help="A syllabus model dir, a Hugging Face model dir, or the http(s) URL of an OpenAI-compatible server.")]
Benchmark = Annotated[str, typer.Option(help="humaneval, mbpp, or another registered benchmark.")]
Problems = Annotated[Optional[Path], typer.Option(help="Problems JSONL (HumanEval or MBPP schema) instead of the bundled ones.")]
Limit = Annotated[Optional[int], typer.Option(help="Only the first N problems.")]
N = Annotated[int, typer.Option("--n", help="Samples per problem.")]
Temperature = Annotated[float, typer.Option(help="0 for greedy decoding (pass@1).")]
TopP = Annotated[float, typer.Option(help="Nucleus sampling threshold.")]
MaxNewTokens = Annotated[int, typer.Option(help="Longest completion, in tokens.")]
Seed = Annotated[int, typer.Option(help="Sampling seed.")]
ModelName = Annotated[Optional[str], typer.Option(help="Model name sent to the endpoint.")]
Concurrency = Annotated[int, typer.Option(help="Requests in flight to an endpoint.")]
BatchSize = Annotated[int, typer.Option(help="Prompts per batch for a local model.")]


@eval_app.command("generate")
def eval_generate(
    model: Model, out: Annotated[Path, typer.Option(help="Samples JSONL to write.")],
    benchmark: Benchmark = "humaneval", problems: Problems = None, limit: Limit = None, n: N = 1,
    temperature: Temperature = 0.0, top_p: TopP = 0.95, max_new_tokens: MaxNewTokens = 512, seed: Seed = 0,
    model_name: ModelName = None, concurrency: Concurrency = 8, batch_size: BatchSize = 8,
) -> None:
    """Generate completions for a benchmark from a model dir or an endpoint (resumable)."""
    from syllabus.eval.run import Sampling, generate_file

    sampling = Sampling(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    path = generate_file(benchmark, model, out, sampling, problems_path=problems, limit=limit,
                         model_name=model_name, concurrency=concurrency, batch_size=batch_size)
    _print_json({"samples": str(path)})


@eval_app.command("run")
def eval_run(
    model: Model, out: Annotated[Path, typer.Option(help="Dir for samples.jsonl, results.jsonl, pass_at_k.json.")],
    benchmark: Benchmark = "humaneval", problems: Problems = None, limit: Limit = None, n: N = 1,
    temperature: Temperature = 0.0, top_p: TopP = 0.95, max_new_tokens: MaxNewTokens = 512, seed: Seed = 0,
    model_name: ModelName = None, concurrency: Concurrency = 8, batch_size: BatchSize = 8,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k for pass@k.")] = "1,10,100",
    workers: Annotated[Optional[int], typer.Option(help="Sandbox workers (default: two per CPU core).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample.")] = 3.0,
) -> None:
    """Generate, then execute; print pass@k."""
    from syllabus.eval.run import Sampling, run_file

    ks = _parse_ks(k)
    sampling = Sampling(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    _print_json(run_file(benchmark, model, out, sampling, problems_path=problems, limit=limit, ks=ks,
                         workers=workers, timeout=timeout, model_name=model_name, concurrency=concurrency,
                         batch_size=batch_size).to_json())


@eval_app.command("nll")
def eval_nll(
    model: Annotated[str, typer.Option(help="A syllabus or Hugging Face model dir.")],
    benchmark: Benchmark = "humaneval", problems: Problems = None, limit: Limit = None,
    out: Annotated[Optional[Path], typer.Option(help="Per-task NLL JSONL to write.")] = None,
    batch_size: BatchSize = 8,
) -> None:
    """Mean negative log-likelihood per token of canonical solutions given the prompts."""
    from syllabus.eval.run import nll_file

    _print_json(nll_file(benchmark, model, problems_path=problems, limit=limit, out=out, batch_size=batch_size))


@eval_app.command("grade")
def eval_grade(
    samples: Annotated[Path, typer.Option(help="Samples JSONL, or the results JSONL of `eval execute` (its verdicts are reused).")],
    judge: Annotated[str, typer.Option(help="Judge endpoint: http(s)://.../v1, offline:NAME, or `offline` (test result stands in).")],
    rubric: Annotated[Optional[Path], typer.Option(help="Rubric Markdown for the judge (default: the packaged grade_rubric.md).")] = None,
    benchmark: Annotated[str, typer.Option(help="Benchmark the samples answer.")] = "unconventional",
    problems: Annotated[Optional[Path], typer.Option(help="Problems JSONL instead of a packaged benchmark.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name sent to an HTTP judge.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Graded JSONL (default: SAMPLES_graded.jsonl).")] = None,
    concurrency: Annotated[int, typer.Option(help="Judge requests in flight.")] = 8,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Judge reply cache (default: OUT.llm-cache).")] = None,
    budget_usd: BudgetOpt = None,
    prices: PricesOpt = None,
    mode: ModeOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Sandbox workers, if the samples must be executed.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample, if executed.")] = 3.0,
) -> None:
    """Judge-graded understanding score (0-10) of solutions, reported next to pass@1."""
    from syllabus.config import validate
    from syllabus.eval.grade import grade_file
    from syllabus.llm.spend import SpendParams

    _register_offline_teachers(judge)
    spend = validate(SpendParams, _spend(budget_usd=budget_usd, prices=prices, mode=mode), file=None)
    _print_json(grade_file(samples, judge=judge, rubric_path=rubric, benchmark=benchmark, problems_path=problems,
                           out=out, model=model, concurrency=concurrency, cache_dir=cache_dir,
                           spend=spend, workers=workers, timeout=timeout))


@eval_app.command("probes")
def eval_probes(
    samples: Annotated[Path, typer.Option(help="Samples JSONL for the library_probes benchmark.")],
    out: Annotated[Optional[Path], typer.Option(help="Results JSONL (default: SAMPLES_results.jsonl).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Sandbox workers (default: two per CPU core).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample.")] = 3.0,
) -> None:
    """Library probes (tkinter, pygame-style loops, itertools, ...): pass@1 per importable library."""
    from syllabus.eval.probes import run_probes

    _print_json(run_probes(samples, out=out, workers=workers, timeout=timeout))


# ── report (issue #9) ────────────────────────────────────────────────────────────────────────


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run dir made by `syllabus run`.")],
    out: Annotated[Optional[Path], typer.Option(help="HTML file to write (default RUN_DIR/report/index.html).")] = None,
) -> None:
    """Render a run dir as one self-contained HTML page; prints its path."""
    from syllabus.report import build_report

    typer.echo(str(build_report(run_dir, out)))


def _register_offline_teachers(endpoint: str) -> None:
    """`offline:textbook` and `offline:exercises` exist once `syllabus.synth` registered them."""
    if endpoint.startswith("offline:"):
        import syllabus.synth.offline  # noqa: F401


def main() -> None:
    try:
        app()
    except BadInput as e:
        console.print(f"[red]error:[/red] {escape(e.line())}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except RunFailed as e:
        console.print(f"[red]failed:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted; finished work is kept, re-run to resume")
        sys.exit(130)

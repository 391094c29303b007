"""What each stage reports when it finishes: one pydantic model per stage kind.

A stage function returns its summary model; the recipe runner writes it to
`RUN_DIR/.state/NAME.json`, and a stage that writes a dataset also keeps it in the dataset's
manifest under the stage kind (`manifest["summary"]["dedup"]`). The report, the ablation and
`syllabus data stats` read it back through the same model, so a renamed or missing field fails
validation with one line naming the file and the field instead of silently vanishing from a page.

Every field is declared with `stat(label, meaning, unit)`: what a reader sees next to the number.
Adding a stage's summary is one model here plus its entry in SUMMARIES.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from syllabus.config import validate
from syllabus.errors import BadInput

FRACTION = "fraction"  # a number in [0, 1]; the page shows it as a percentage


def stat(label: str, meaning: str, unit: str = "", default: Any = ..., alias: str | None = None) -> Any:
    """A summary field: `label` and `unit` name the number on the page, `meaning` is its one-line explanation."""
    return Field(default, description=meaning, alias=alias, json_schema_extra={"label": label, "unit": unit})


@dataclass(frozen=True)
class Fact:
    """One named number of a summary, ready to show."""

    name: str
    label: str
    value: Any
    unit: str
    meaning: str


class Summary(BaseModel):
    """Base of every summary: unknown keys are an error, so a writer and its readers cannot drift apart."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: ClassVar[str] = ""  # the recipe stage kind (`uses:`) that writes this summary

    def dump(self) -> dict[str, Any]:
        """The JSON object a stage writes (field aliases such as `pass@1` as keys)."""
        return self.model_dump(mode="json", by_alias=True)

    def headline(self) -> str | None:
        """This (nested) summary as one phrase, when it stands for a single number on the page."""
        return None

    def dropped(self) -> dict[str, int]:
        """Records this stage left out, by reason (a dataset-writing stage's drop counters)."""
        return {}

    def facts(self, *names: str) -> list[Fact]:
        """The fields `names` (default: every number, text and one-phrase part that is set) with their labels."""
        fields = type(self).model_fields
        facts = []
        for name in names or fields:
            info, value = fields[name], getattr(self, name)
            if isinstance(value, Summary):
                value = value.headline()
            if value is None or (not names and isinstance(value, (dict, list))):
                continue
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            facts.append(Fact(name, str(extra.get("label", name)), value, str(extra.get("unit", "")),
                              info.description or ""))
        return facts


# ── parts shared by several summaries ─────────────────────────────────────────────────────────


class Ledger(Summary):
    sent: int = stat("requests sent", "requests that went over the wire (cache hits excluded)", "requests")
    succeeded: int = stat("succeeded", "requests answered with a usable reply", "requests")
    cached: int = stat("cache hits", "replies served from the reply cache, not billed", "requests")
    retries: int = stat("retries", "requests sent again after an error or timeout", "requests")
    failed: int = stat("failed", "requests that gave up after every retry", "requests")
    prompt_tokens: int = stat("prompt tokens", "tokens sent to the teacher", "tokens")
    completion_tokens: int = stat("completion tokens", "tokens the teacher wrote", "tokens")
    cost_usd: float = stat("cost", "what the requests cost at the price table's rates", "USD")
    errors: dict[str, int] = stat("errors", "failed attempts by error kind", "attempts")
    by_endpoint: dict[str, int] = stat("replies by endpoint", "replies each endpoint answered", "replies")


class Coverage(Summary):
    covered: int = stat("covered", "distinct values asked for that appear in the kept records", "values")
    of: int = stat("asked for", "distinct values the prompts asked for", "values")
    ratio: float = stat("coverage", "covered / asked for", FRACTION)

    def headline(self) -> str:
        return f"{self.covered:,} of {self.of:,} ({self.ratio:.0%})"


class Clusters(Summary):
    clusters: int = stat("clusters", "k-means clusters of the records' hashing embeddings", "clusters")
    coverage: float = stat("evenness", "entropy of cluster sizes over log(k): 1 when records spread evenly", FRACTION)

    def headline(self) -> str:
        return f"{self.clusters} clusters, evenness {self.coverage:.2f}"


class Diversity(Summary):
    distinct_4gram_ratio: float = stat("distinct 4-grams", "distinct word 4-grams over all 4-grams: lexical variety",
                                       FRACTION)
    embedding_clusters: Clusters = stat("embedding spread", "how evenly records fill k-means clusters of their "
                                        "embeddings")
    near_duplicate_rate: float | None = stat(
        "near duplicates", "kept records whose 5-token-shingle Jaccard with an earlier kept one is at least 0.5 "
        "(the writer already dropped those at 0.8)", FRACTION, None)
    mean_pairwise_cosine: float | None = stat("mean pairwise cosine", "mean cosine similarity of pairs of records' "
                                              "hashing embeddings (lower: more spread out)", "", None)
    distinct_openings: float | None = stat("distinct openings", "distinct first 8 code tokens over records",
                                           FRACTION, None)
    top_openings: dict[str, int] | None = stat("most repeated openings", "the first 8 code tokens that open the "
                                               "most records", "records", None)


class PromptSpaceSummary(Summary):
    distinct: int = stat("distinct prompts", "prompts the stage's axes can form, none repeated", "prompts")
    requested: int = stat("requested", "prompts sent (n); past `distinct`, further samples of the same prompts",
                          "prompts")
    max_repeats: int = stat("max repeats", "samples of one prompt the stage allows at most", "samples")
    axes: dict[str, int] = stat("axes", "values of each axis the prompts combine", "values")

    def headline(self) -> str:
        return f"{self.distinct:,} distinct for {self.requested:,} asked ({' x '.join(map(str, self.axes.values()))})"


class BenchmarkScores(Summary):
    pass_at_k: dict[int, float] = stat("pass@k", "unbiased pass@k: the chance one of k samples passes the tests",
                                       FRACTION)
    nll: float | None = stat("canonical-solution NLL", "mean negative log-likelihood per token of the benchmark's "
                             "reference solutions (lower is better)", "nats/token", None)
    tasks: int | None = stat("tasks", "benchmark tasks with samples: pass@k is over these", "tasks", None)
    samples: int | None = stat("samples", "completions generated and executed", "samples", None)


# ── one summary per stage kind, in recipe order ───────────────────────────────────────────────


class IngestSummary(Summary):
    kind = "data.ingest"
    total: int = stat("files read", "source files (or table rows) looked at", "files")
    kept: int = stat("records kept", "files that became records", "records")
    kept_bytes: int = stat("text kept", "UTF-8 text in the kept records", "bytes")
    skipped_too_large: int = stat("too large", "files over max_bytes", "files", 0)
    skipped_too_small: int = stat("too small", "files under min_bytes", "files", 0)
    skipped_empty: int = stat("empty", "files with no text", "files", 0)
    skipped_not_utf8: int = stat("not UTF-8", "files that do not decode as UTF-8", "files", 0)
    skipped_binary: int = stat("binary", "files with NUL bytes", "files", 0)
    skipped_unreadable: int = stat("unreadable", "files the OS refused to read", "files", 0)
    skipped_excluded: int = stat("excluded", "files holding a snippet of an exclude file (e.g. gold labels)", "files", 0)

    def dropped(self) -> dict[str, int]:
        return {self.facts(name)[0].label: value for name, value in self if name.startswith("skipped_") and value}


class AnnotateSummary(Summary):
    kind = "curate.annotate"
    labels: int = stat("records judged", "records of the stratified sample sent to the judge", "records")
    labelled: int = stat("labelled", "records that got a parseable 0-5 score", "records")
    unlabeled: int = stat("unlabelled", "records the judge gave no parseable score", "records")
    resumed: int = stat("resumed", "labels kept from an earlier, interrupted run", "records")
    histogram: dict[int, int] = stat("labels by score", "records per educational-value score 0-5", "records")
    judge: str = stat("judge", "who scored: an LLM endpoint or the offline heuristic")
    model: str | None = stat("judge model", "the judge's model name")
    prompt_sha256: str | None = stat("prompt hash", "sha256 of the judging prompt (none for the heuristic)")


class ClassifierSummary(Summary):
    kind = "curate.train"
    embedder: str = stat("embedder", "the embedding the classifier reads, with its version")
    model: str = stat("model", "the classifier over the embeddings")
    folds: int = stat("folds", "cross-validation folds the metrics are pooled over", "folds")
    n: int = stat("labels", "labelled records it learned from", "records")
    positives: int = stat("high value", "labels with score >= 3, the positive class", "records")
    f1: float = stat("F1", "harmonic mean of precision and recall on held-out folds", FRACTION)
    precision: float = stat("precision", "of the records it calls high value, the share that are", FRACTION)
    recall: float = stat("recall", "of the high-value records, the share it finds", FRACTION)
    roc_auc: float | None = stat("ROC AUC", "chance a high-value record outscores a low-value one", FRACTION)
    spearman: float = stat("Spearman ρ", "rank correlation of its probability with the 0-5 label", "")
    threshold: float | None = stat("threshold", "probability cut chosen by cross-validation for the best F1",
                                   "probability", None)
    confusion: list[list[int]] = stat("confusion matrix", "held-out counts: rows true low/high, columns predicted",
                                      "records")


class FilterSummary(Summary):
    kind = "curate.filter"
    total: int = stat("records scored", "records the classifier scored", "records")
    kept: int = stat("records kept", "records at or above the threshold", "records")
    threshold: float = stat("threshold", "P(educational value >= 3) a record needs to be kept", "probability")
    keep_fraction: float | None = stat("target kept share", "the share asked for; the threshold is its quantile "
                                       "on a sample", FRACTION)
    embedder: str = stat("embedder", "the classifier's embedding, with its version")
    histogram: dict[float, int] = stat("scores", "records per score bin (bin's lower edge), kept or not", "records")
    classifier_cv: dict[str, float | None] = stat("classifier CV", "the classifier's cross-validated F1, precision, "
                                                  "recall, ROC-AUC, Spearman at score >= 3 (from training)", "", {})

    def dropped(self) -> dict[str, int]:
        return {"below threshold": self.total - self.kept} if self.total > self.kept else {}


class DedupSummary(Summary):
    kind = "dedup"
    records: int = stat("records in", "records before deduplication", "records")
    kept: int = stat("records kept", "the first record of every duplicate cluster, and every unique one", "records")
    exact_duplicates: int = stat("exact duplicates", "records equal to another after normalisation", "records")
    near_duplicates: int = stat("near duplicates", "records whose MinHash Jaccard with another passes the "
                                "threshold", "records")
    clusters: int = stat("duplicate clusters", "groups of records that duplicate each other", "clusters")
    lsh: dict[str, float | int] = stat("LSH parameters", "bands, rows, threshold, shingle, permutations, partitions")
    example_clusters: list[list[dict[str, str | int | bool]]] = stat(
        "largest clusters", "the largest clusters' members (id, path, kept) and how many more", "", [])

    def dropped(self) -> dict[str, int]:
        return {k: v for k, v in (("exact duplicate", self.exact_duplicates),
                                  ("near duplicate", self.near_duplicates)) if v}


class TauRow(Summary):
    tau: float = stat("τ", "AST similarity cut", "")
    ast_records: int = stat("AST ≥ τ", "records whose AST similarity to a benchmark task is at least τ", "records")
    ast_fraction: float = stat("AST share", "AST ≥ τ over all records", FRACTION)
    flagged_records: int = stat("flagged", "records flagged by any method at this τ", "records")
    flagged_fraction: float = stat("flagged share", "flagged over all records", FRACTION)
    similar_tasks: int = stat("similar tasks", "benchmark tasks with a flagged record", "tasks")


class DecontamSummary(Summary):
    kind = "decontam"
    records: int = stat("records scanned", "training records compared with the benchmarks", "records")
    flagged_records: int = stat("records flagged", "records matching a benchmark task by n-gram, embedding or AST "
                                "at τ", "records")
    flagged_fraction: float = stat("flagged share", "flagged over scanned records", FRACTION)
    tau: float = stat("τ", "AST similarity at which a record is flagged", "")
    kept: int | None = stat("records kept", "records left after the flagged ones were pruned", "records", None)
    by_method: dict[str, int] = stat("flagged by method", "records each method flags (a record may count twice)",
                                     "records")
    tau_sweep: list[TauRow] = stat("τ sweep", "what each AST cut would flag")
    similar_tasks: dict[str, int] = stat("similar tasks", "per benchmark, tasks with a flagged training record",
                                         "tasks")
    tasks: dict[str, int] = stat("tasks", "per benchmark, tasks compared", "tasks")
    similar_task_ids: dict[str, list[str]] = stat("similar task ids", "per benchmark, the tasks with a flagged "
                                                  "training record")
    seconds: dict[str, float] = stat("time", "wall time, and CPU time per method summed over workers", "s")

    def dropped(self) -> dict[str, int]:
        return {"contaminated": self.records - self.kept} if self.kept is not None and self.records > self.kept else {}


class SynthSummary(Summary):
    teacher: str = stat("teacher", "the model or offline template that wrote the records")
    model: str | None = stat("teacher model", "the teacher's model name")
    requested: int = stat("requested", "records asked of the teacher", "records")
    records: int = stat("records kept", "replies that passed every check", "records")
    acceptance_rate: float = stat("acceptance", "kept over answered replies", FRACTION)
    pending: int = stat("pending", "jobs not answered when the run stopped", "jobs")
    rejected: dict[str, int] = stat("rejections", "replies dropped, by reason", "replies")
    diversity: Diversity = stat("diversity", "how varied the kept records are")
    prompts: PromptSpaceSummary | None = stat("prompt space", "distinct prompts the stage could send, against n",
                                              "", None)
    llm: Ledger = stat("requests", "what the teacher client did")
    stopped: str | None = stat("stopped early", "why the run stopped before every job was answered")
    teacher_note: str | None = stat("note", "what the teacher is, when it is not a language model", "", None)

    def dropped(self) -> dict[str, int]:
        return {reason.replace("_", " "): count for reason, count in self.rejected.items() if count}


class CodeBlocks(Summary):
    total: int = stat("code blocks", "fenced code blocks in all answered sections", "blocks")
    in_kept_sections: int = stat("in kept sections", "code blocks in the kept sections", "blocks")

    def headline(self) -> str:
        return f"{self.in_kept_sections:,} kept of {self.total:,}"


class TextbookCoverage(Summary):
    topics: Coverage = stat("topics", "topics asked for that appear in the kept sections")
    audiences: Coverage = stat("audiences", "audiences asked for that appear in the kept sections")
    styles: Coverage = stat("styles", "styles asked for that appear in the kept sections")


class TextbookSummary(SynthSummary):
    kind = "synth.textbook"
    code_blocks: CodeBlocks = stat("code blocks", "fenced code blocks, all answered and in the kept sections")
    coverage: TextbookCoverage = stat("coverage", "which of the topic × audience × style grid the kept sections "
                                      "cover")


class ExercisesCoverage(Summary):
    names: Coverage = stat("function names", "function names asked for that appear in kept exercises")
    topics: Coverage = stat("topics", "topics asked for that appear in kept exercises")
    vocabulary: int = stat("name vocabulary", "function names available to the prompts", "names")


class ExercisesSummary(SynthSummary):
    kind = "synth.exercises"
    verified: int = stat("verified", "exercises whose solution passed its tests in the sandbox", "exercises")
    coverage: ExercisesCoverage = stat("coverage", "which function names and topics the kept exercises cover")


class ExpandSummary(Summary):
    kind = "synth.expand"
    teacher: str = stat("teacher", "the model or offline template that grew the vocabulary")
    model: str | None = stat("teacher model", "the teacher's model name")
    topics_before: int = stat("topics given", "leaves of the source topic tree", "topics")
    topics: int = stat("topics", "leaves of the grown topic tree (topics.yaml)", "topics")
    names_before: int = stat("names given", "function names of the source vocabulary", "names")
    names: int = stat("names", "function names in the grown vocabulary (function_names.txt)", "names")
    files: list[str] = stat("files", "the editable files written, to review before synthesis")
    llm: Ledger = stat("requests", "what the teacher client did")


class TokenizerSummary(Summary):
    kind = "tokenizer.train"
    vocab_size: int = stat("vocabulary", "tokens in the trained byte-level BPE, special tokens included", "tokens")
    path: str = stat("file", "the tokenizer.json it wrote")


class PackSummary(Summary):
    kind = "train.pack"
    train_tokens: int = stat("train tokens", "tokens in the training sequences", "tokens")
    val_tokens: int = stat("validation tokens", "tokens held out for validation loss", "tokens")
    sequences: int = stat("sequences", "training sequences of seq_len tokens", "sequences")
    seq_len: int = stat("sequence length", "tokens per packed sequence", "tokens")
    vocab_size: int = stat("vocabulary", "the tokenizer's vocabulary size", "tokens")


class Budget(Summary):
    """One token budget of a run: a cooldown branch (schedule wsd) or the run's end."""

    steps: int = stat("steps", "optimizer steps of this budget", "steps")
    tokens: int = stat("tokens", "tokens trained on at this budget", "tokens")
    loss: float = stat("loss", "training cross-entropy at the budget's last step", "nats/token")
    val_loss: float = stat("validation loss", "cross-entropy on the held-out tokens at the budget", "nats/token")
    model: str = stat("model dir", "where this budget's model is")


class TrainSummary(Summary):
    kind = "train.pretrain"
    steps: int = stat("steps", "optimizer steps taken in total", "steps")
    loss: float = stat("final loss", "training cross-entropy at the last step", "nats/token")
    val_loss: float = stat("final validation loss", "cross-entropy on the held-out tokens at the last step",
                           "nats/token")
    tokens: int = stat("tokens seen", "steps × batch size × sequence length", "tokens")
    seconds: float = stat("time", "wall time of this run (a resumed run counts from its restart)", "s")
    tokens_per_s: float = stat("throughput", "tokens trained per second in this run", "tokens/s")
    epochs: float | None = stat("epochs", "passes over the packed training data", "epochs", None)
    budgets: list[Budget] = stat("budgets", "a model per token budget, the final one last", "", [])


class FinetuneSummary(TrainSummary):
    kind = "train.finetune"


class TrainLogLine(Summary):
    """One line of a training stage's metrics.jsonl: a logged step, or a validation loss at a step."""

    step: int = stat("step", "optimizer steps done", "steps")
    loss: float | None = stat("loss", "training cross-entropy of this step's batch", "nats/token", None)
    val_loss: float | None = stat("validation loss", "cross-entropy on the held-out tokens", "nats/token", None)
    lr: float | None = stat("learning rate", "the scheduler's rate at this step", "", None)
    grad_norm: float | None = stat("gradient norm", "global L2 norm before clipping", "", None)
    tokens: int | None = stat("tokens seen", "tokens trained on so far", "tokens", None)
    tokens_per_s: float | None = stat("throughput", "tokens per second since the last logged step", "tokens/s",
                                      None)
    time: float | None = stat("time", "seconds since this run started", "s", None)
    mfu: float | None = stat("MFU", "model FLOPs utilisation: achieved over peak bf16 FLOPs (GPUs only)", FRACTION,
                             None)


TRAIN_LOG = "metrics.jsonl"  # in a training stage's output dir, one TrainLogLine per line


class LibraryProbe(Summary):
    importable: bool = stat("importable", "whether the library imports in the sandbox (else not run)")
    tasks: int = stat("tasks", "probe tasks sampled for this library", "tasks")
    samples: int = stat("samples", "completions generated for them", "samples")
    pass_at_1: float | None = stat("pass@1", "share of probe tasks solved", FRACTION, alias="pass@1")


class ProbesSummary(Summary):
    libraries: dict[str, LibraryProbe] = stat("libraries", "pass@1 per library the probes exercise")
    pass_at_1: float | None = stat("pass@1", "share of all probe tasks solved", FRACTION, alias="pass@1")


class GradeSummary(Summary):
    benchmark: str = stat("benchmark", "the problems graded")
    judge: str = stat("judge", "who graded: an LLM endpoint, or 'offline' (10 if the tests pass, else 0)")
    note: str | None = stat("note", "what the offline judge is", "", None)
    model: str | None = stat("judge model", "the judge's model name", "", None)
    llm: Ledger | None = stat("requests", "what the judge client did", "", None)
    samples: int = stat("solutions", "solutions sent to the judge", "solutions")
    graded: int = stat("graded", "solutions that got a parseable score", "solutions")
    ungraded: int = stat("ungraded", "solutions with no parseable score", "solutions")
    mean_score: float | None = stat("mean score", "the judge's mean score of the graded solutions", "points of 10")
    pass_at_1: float | None = stat("pass@1", "share passing the tests, for comparison", FRACTION, alias="pass@1")


class EvalSummary(Summary):
    kind = "eval"
    benchmarks: dict[str, BenchmarkScores] = stat("benchmarks", "pass@k and NLL per benchmark")
    probes: ProbesSummary | None = stat("library probes", "how often it uses libraries correctly", "", None)
    grade: GradeSummary | None = stat("graded score", "a judge's score of the unconventional solutions", "", None)


class MinedExercisesSummary(Summary):
    kind = "synth.mined_exercises"
    records: int = stat("exercises", "exercises whose original passed its own tests in the sandbox", "exercises")
    doctest_candidates: int = stat("doctest candidates", "functions whose doctest examples call them", "functions")
    mbpp_candidates: int = stat("MBPP candidates", "MBPP problems of the non-test splits", "problems", 0)
    kept_doctest: int = stat("from doctests", "kept exercises mined from doctests", "exercises", 0)
    kept_mbpp: int = stat("from MBPP", "kept MBPP non-test problems", "exercises", 0)
    dropped_tests_failed: int = stat("tests failed", "the original failed its own examples", "exercises", 0)
    dropped_timed_out: int = stat("timed out", "the original did not finish its examples in time", "exercises", 0)
    dropped_uncheckable: int = stat("uncheckable", "the examples pass objects that cannot cross the sandbox",
                                    "exercises", 0)
    skipped_unparseable_files: int = stat("unparseable files", "source files that did not parse", "files", 0)

    def dropped(self) -> dict[str, int]:
        return {self.facts(name)[0].label: value for name, value in self
                if name.startswith(("dropped_", "skipped_")) and value}


class HumanTextbookSummary(Summary):
    kind = "synth.human_textbook"
    records: int = stat("sections", "textbook sections kept", "sections")
    chars: int = stat("characters", "characters of text kept", "characters")
    by_source: dict[str, int] = stat("by source", "kept sections: pydoc topics, package READMEs, docstring lessons")
    dropped_over_max_chars: int = stat("over the budget", "sections left out of the seeded sample by max_chars",
                                       "sections", 0)
    skipped_unparseable_files: int = stat("unparseable files", "source files that did not parse", "files", 0)

    def dropped(self) -> dict[str, int]:
        return {self.facts(name)[0].label: value for name, value in self
                if name.startswith(("dropped_", "skipped_")) and value}


class MutantCounts(Summary):
    problems: int = stat("problems", "benchmark problems tried", "problems")
    mutants: int = stat("mutants", "problems with a one-token edit that fails the tests", "problems")
    no_failing_mutant: int = stat("no failing mutant", "problems none of whose edits fails the tests", "problems")
    canonical_fails_its_tests: int = stat("canonical fails", "problems whose reference fails its own tests",
                                          "problems")


class MutantsSummary(Summary):
    kind = "eval.mutants"
    benchmarks: dict[str, MutantCounts] = stat("benchmarks", "failing mutants found per benchmark")


class ScalingEvalSummary(Summary):
    kind = "eval.scaling"
    nats_per_byte: dict[str, dict[str, float]] = stat(
        "nats per byte", "mean over problems of the canonical solution's nats per byte, per set and budget (tokens)")
    mutant_preference: float | None = stat("prefers correct", "problems where the correct solution is likelier "
                                           "than its failing mutant (chance 0.5)", FRACTION, None)
    pass_at_1: float | None = stat("pass@1", "greedy, on the short problems", FRACTION, None, alias="pass@1")
    pass_at_samples: float | None = stat("pass@k", "any of the samples passes, on the short problems", FRACTION,
                                         None)
    short_problems: int | None = stat("short problems", "problems whose canonical solution is short enough for "
                                      "pass@k", "problems", None)


class AblationSummary(Summary):
    kind = "ablation"
    verdicts: list[str] = stat("verdicts", "the conclusions, written from the pre-registered rules")
    seeds: dict[str, int] = stat("seeds", "finished seeds per arm")
    mde: float | None = stat("minimum detectable effect", "smallest Δ the seed spread lets the contrasts find",
                             "nats/byte", None)


class ReportSummary(Summary):
    kind = "report"
    page: str = stat("page", "where the HTML page is")
    bytes: int = stat("size", "size of the page", "bytes")


SUMMARIES: dict[str, type[Summary]] = {model.kind: model for model in (
    IngestSummary, AnnotateSummary, ClassifierSummary, FilterSummary, DedupSummary, DecontamSummary,
    TextbookSummary, ExercisesSummary, ExpandSummary, TokenizerSummary, PackSummary, TrainSummary, FinetuneSummary,
    EvalSummary, AblationSummary, ReportSummary, MinedExercisesSummary, HumanTextbookSummary, MutantsSummary,
    ScalingEvalSummary)}


def read_summary(kind: str, data: Any, *, file: str | Path | None) -> Summary:
    """The summary a `kind` stage wrote; BadInput naming the file and field if it does not fit the model."""
    if kind not in SUMMARIES:
        raise BadInput(f"no summary model for stage kind {kind!r}", file=file)
    return validate(SUMMARIES[kind], data, file=file, prefix="summary")


def dataset_summary(manifest: dict[str, Any], *, file: str | Path | None = None) -> Summary | None:
    """The summary a dataset's manifest keeps under its stage kind, or None when the stage keeps none there."""
    kind = manifest.get("stage")
    data = (manifest.get("summary") or {}).get(kind)
    if data is None or kind not in SUMMARIES:
        return None
    return validate(SUMMARIES[kind], data, file=file, prefix=f"summary.{kind}")

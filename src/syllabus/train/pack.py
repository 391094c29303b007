"""Tokenize dataset dirs into packed token shards: the input of pretraining and finetuning.

Layout of a packed dir:

    meta.json               written last: vocab size, dtype, seq_len, tokenizer hash, per-source counts
    tokenizer.json          the tokenizer the ids belong to (copied into exported model dirs)
    <source>.train.bin      token ids of the source's training documents, one flat stream
    <source>.train.mask     uint8 loss mask beside it (only for sources with prompt/completion records)
    val.bin, val.mask       the held-out validation documents of all sources

Documents are joined by `<|endoftext|>` (each document is followed by one) and the stream is read
as fixed-length sequences: sequence i is tokens[i*L : i*L + L + 1] (inputs and shifted targets share
the boundary token, so nothing is wasted). A document goes to validation when the hash of its id
falls below `val_fraction`, so the split is stable whatever the shard order or worker count.

Records with `prompt` and `completion` (CodeExercises) get a loss mask that is 1 only on the
completion and its closing `<|endoftext|>`, unless `include_prompt`. Other records use `text`.

The data mix is not materialized on disk: each source's weight is stored in meta.json and the
loader (`syllabus.train.data`) repeats it: weight 2.0 means every sequence of the source is seen
twice per epoch, 0.5 a seeded half of them; the paper's "CodeTextbook" mix is
`{filtered_code: 1.0, textbook: 1.0}` and upweighting the small synthetic set is a weight > 1.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from syllabus.config import Params, StageContext
from syllabus.console import console
from syllabus.data.dataset import Dataset, record_id
from syllabus.data.files import atomic_path, atomic_write_json, read_json, sha256_file
from syllabus.errors import BadInput
from syllabus.scale import map_shards
from syllabus.summaries import PackSummary, TokenizerSummary

META = "meta.json"
ENCODE_BATCH = 256


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def tokenizer_file(path: str | Path) -> Path:
    """tokenizer.json inside a tokenizer dir or model dir, or the file itself."""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise BadInput("no tokenizer.json (expected a tokenizer dir, model dir or tokenizer.json)", file=path)
    return file


class PackParams(Params):
    seq_len: int = Field(2048, ge=2)
    val_fraction: float = Field(0.02, ge=0.0, lt=1.0)
    include_prompt: bool = False
    weights: dict[str, float] = {}  # source name (dataset dir name) -> sampling weight, default 1.0


@dataclass(frozen=True)
class ShardTask:
    source: int
    dataset: Path
    shard: str
    tokenizer: Path
    parts: Path
    val_fraction: float
    include_prompt: bool

    @property
    def stem(self) -> str:
        return f"{self.source:03d}-{self.shard}"


def is_validation(record: dict, text: str, val_fraction: float) -> bool:
    key = str(record.get("id") or record_id(text))
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) < val_fraction * 2**32


def _documents(records: Iterator[dict], include_prompt: bool, where: str) -> Iterator[tuple[dict, list[str], bool]]:
    """(record, texts, masked): texts are tokenized in order and joined; masked means no loss on texts[0]."""
    for i, record in enumerate(records):
        if isinstance(record.get("prompt"), str) and isinstance(record.get("completion"), str):
            yield record, [record["prompt"], record["completion"]], not include_prompt
        elif isinstance(record.get("text"), str):
            yield record, [record["text"]], False
        else:
            raise BadInput("record has neither 'text' nor 'prompt'/'completion' strings", file=where, record=i)


def tokenize_shard(task: ShardTask) -> dict:
    """Tokenize one dataset shard into train/val token and mask parts; runs in a worker."""
    from syllabus.tokenizer import load_tokenizer

    sidecar = task.parts / f"{task.stem}.json"
    if sidecar.exists():
        return read_json(sidecar)
    tokenizer = load_tokenizer(task.tokenizer)
    dtype, eot = token_dtype(tokenizer.vocab_size), tokenizer.eot_id
    counts = {"stem": task.stem, "source": task.source, "docs": 0, "train_tokens": 0, "val_tokens": 0, "val_docs": 0,
              "train_masked": 0, "val_masked": 0}
    records = Dataset(task.dataset).read_shard(task.shard)
    docs = _documents(records, task.include_prompt, str(task.dataset / task.shard))
    names = ("train.bin", "train.mask", "val.bin", "val.mask")
    with (atomic_path(task.parts / f"{task.stem}.train.bin") as tb, atomic_path(task.parts / f"{task.stem}.train.mask") as tm,
          atomic_path(task.parts / f"{task.stem}.val.bin") as vb, atomic_path(task.parts / f"{task.stem}.val.mask") as vm):
        files = dict(zip(names, (open(p, "wb") for p in (tb, tm, vb, vm))))
        try:
            while batch := [doc for _, doc in zip(range(ENCODE_BATCH), docs)]:
                texts = [text for _, parts, _ in batch for text in parts]
                encoded = iter(tokenizer.encode_batch(texts))
                for record, parts, masked in batch:
                    ids, mask = [], []
                    for j in range(len(parts)):
                        piece = next(encoded)
                        ids += piece
                        mask += [0 if masked and j == 0 else 1] * len(piece)
                    ids.append(eot)
                    mask.append(1)
                    split = "val" if is_validation(record, "".join(parts), task.val_fraction) else "train"
                    files[f"{split}.bin"].write(np.asarray(ids, dtype=dtype).tobytes())
                    files[f"{split}.mask"].write(np.asarray(mask, dtype=np.uint8).tobytes())
                    counts["docs"] += 1
                    counts[f"{split}_tokens"] += len(ids)
                    counts[f"{split}_masked"] += len(mask) - sum(mask)
                    counts["val_docs"] += split == "val"
        finally:
            for f in files.values():
                f.close()
    atomic_write_json(sidecar, counts)
    return counts


def _concat(parts: list[Path], out: Path) -> None:
    with atomic_path(out) as tmp, open(tmp, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)


def _source_names(datasets: list[Path]) -> list[str]:
    names: list[str] = []
    for path in datasets:
        name = path.resolve().name
        names.append(name if name not in names else f"{name}-{len(names)}")
    return names


def pack(
    datasets: list[str | Path],
    tokenizer: str | Path,
    out: str | Path,
    params: PackParams = PackParams(),
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> dict:
    """Tokenize and pack dataset dirs into `out`; resumable per shard. Returns meta.json's content."""
    out = Path(out)
    datasets = [Path(d) for d in datasets]
    if not datasets:
        raise BadInput("no dataset dirs to pack")
    names = _source_names(datasets)
    unknown = set(params.weights) - set(names)
    if unknown:
        raise BadInput(f"weights for unknown sources {sorted(unknown)} (sources: {', '.join(names)})")
    if any(w <= 0 for w in params.weights.values()):
        raise BadInput("source weights must be > 0")
    tok_file = tokenizer_file(tokenizer)
    opened = [Dataset(d) for d in datasets]
    (out / META).unlink(missing_ok=True)
    parts = out / ".parts"
    # parts of a killed run are reused only if they were made the same way
    fingerprint = {"tokenizer_sha256": sha256_file(tok_file), "val_fraction": params.val_fraction,
                   "include_prompt": params.include_prompt, "datasets": [str(d.resolve()) for d in datasets]}
    if parts.exists() and (not (parts / "params.json").exists() or read_json(parts / "params.json") != fingerprint):
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_json(parts / "params.json", fingerprint)
    tasks = [ShardTask(i, ds.path, shard.name, tok_file, parts, params.val_fraction, params.include_prompt)
             for i, ds in enumerate(opened) for shard in ds.shards]
    results = {counts["stem"]: counts for counts in map_shards(
        tasks, tokenize_shard, workers=workers, executor=executor, address=address, description="tokenize")}

    from syllabus.tokenizer import load_tokenizer

    vocab = load_tokenizer(tok_file)
    dtype = token_dtype(vocab.vocab_size)
    L = params.seq_len
    sources = []
    for i, name in enumerate(names):
        stems = [t.stem for t in tasks if t.source == i]
        train_tokens = sum(results[s]["train_tokens"] for s in stems)
        masked = sum(results[s]["train_masked"] for s in stems) > 0
        _concat([parts / f"{s}.train.bin" for s in stems], out / f"{name}.train.bin")
        if masked:
            _concat([parts / f"{s}.train.mask" for s in stems], out / f"{name}.train.mask")
        sources.append({
            "name": name, "path": str(datasets[i].resolve()), "weight": params.weights.get(name, 1.0),
            "docs": sum(results[s]["docs"] - results[s]["val_docs"] for s in stems),
            "tokens": train_tokens, "sequences": max(train_tokens - 1, 0) // L, "masked": masked,
        })
    val_tokens = sum(r["val_tokens"] for r in results.values())
    val_masked = sum(r["val_masked"] for r in results.values()) > 0
    _concat([parts / f"{t.stem}.val.bin" for t in tasks], out / "val.bin")
    if val_masked:
        _concat([parts / f"{t.stem}.val.mask" for t in tasks], out / "val.mask")

    empty = [s["name"] for s in sources if s["sequences"] == 0]
    if empty:
        raise BadInput(f"too small to pack: source(s) {', '.join(empty)} have fewer than seq_len+1 = {L + 1} "
                       "training tokens; add data or lower --seq-len", file=out)
    val_sequences = max(val_tokens - 1, 0) // L
    if params.val_fraction > 0 and val_sequences == 0:
        raise BadInput(f"too small for a validation slice: {val_tokens} held-out tokens < seq_len+1 = {L + 1}; "
                       "raise --val-fraction, add data or lower --seq-len", file=out)
    shutil.copyfile(tok_file, out / "tokenizer.json")
    meta = {
        "format": 1, "seq_len": L, "vocab_size": vocab.vocab_size, "eot_id": vocab.eot_id, "dtype": dtype.name,
        "tokenizer_sha256": fingerprint["tokenizer_sha256"], "include_prompt": params.include_prompt,
        "val_fraction": params.val_fraction, "sources": sources,
        "val": {"docs": sum(r["val_docs"] for r in results.values()), "tokens": val_tokens,
                "sequences": val_sequences, "masked": val_masked},
        "train_tokens": sum(s["tokens"] for s in sources),
    }
    atomic_write_json(out / META, meta)
    shutil.rmtree(parts)
    console.print(f"packed {meta['train_tokens']:,} train + {val_tokens:,} val tokens "
                  f"({sum(s['sequences'] for s in sources):,} sequences of {L}) into {out}")
    return meta


def pack_stage(params: PackParams, inputs: dict[str, Path | list[Path]], out: Path,
               ctx: StageContext) -> PackSummary:
    """Recipe stage `train.pack`: inputs `data` (one or a list of dataset dirs) and `tokenizer`."""
    data = inputs.get("data")
    if data is None or "tokenizer" not in inputs:
        raise BadInput("train.pack needs inputs 'data' (dataset dirs) and 'tokenizer' (tokenizer or model dir)")
    datasets = data if isinstance(data, list) else [data]
    meta = pack(datasets, inputs["tokenizer"], out, params, workers=ctx.workers, executor=ctx.executor,
                address=ctx.address)
    return PackSummary(train_tokens=meta["train_tokens"], val_tokens=meta["val"]["tokens"],
                       sequences=sum(s["sequences"] for s in meta["sources"]), seq_len=meta["seq_len"],
                       vocab_size=meta["vocab_size"])


class TokenizerParams(Params):
    vocab_size: int = 4096
    min_frequency: int = 2
    balance: bool = False  # train on an equal share of each input dataset


def tokenizer_stage(params: TokenizerParams, inputs: dict, out: Path, ctx: StageContext) -> TokenizerSummary:
    """Recipe stage `tokenizer.train`: a byte-level BPE trained on the `data` input dataset dir(s)."""
    from syllabus.tokenizer import TOKENIZER_FILE, train_tokenizer

    data = inputs["data"] if isinstance(inputs["data"], list) else [inputs["data"]]
    tokenizer = train_tokenizer(data, params.vocab_size, out, params.min_frequency, params.balance)
    return TokenizerSummary(vocab_size=tokenizer.vocab_size, path=str(Path(out) / TOKENIZER_FILE))

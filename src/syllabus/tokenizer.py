"""Byte-level BPE tokenizers: train one on dataset dirs, or load any local Hugging Face tokenizer.

Trained tokenizers follow codegen-350M-mono (the tokenizer phi-1 used): GPT-2 byte-level BPE,
`<|endoftext|>` between documents, and whole runs of spaces and tabs as single tokens so that
indentation costs one token, not one per space.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers

from syllabus.console import console
from syllabus.data.files import atomic_write_json, atomic_write_text
from syllabus.errors import BadInput

EOT = "<|endoftext|>"
TOKENIZER_FILE = "tokenizer.json"
WHITESPACE_RUNS = [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(20, 1, -1)]


class Tokenizer:
    """A `tokenizers.Tokenizer` with the end-of-text token every syllabus model relies on."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, source: str | Path | None = None):
        self.tokenizer = tokenizer
        self.source = source
        eot_id = tokenizer.token_to_id(EOT)
        if eot_id is None:
            raise BadInput(f"tokenizer has no {EOT} token", file=source)
        self.eot_id: int = eot_id

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def save(self, path: str | Path) -> Path:
        """Write tokenizer.json into the dir `path`."""
        out = Path(path) / TOKENIZER_FILE
        atomic_write_text(out, self.tokenizer.to_str(pretty=True))
        return out

    def save_hf(self, path: str | Path, model_max_length: int) -> None:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into the dir `path`, so that
        `AutoTokenizer.from_pretrained(path)` (transformers 4 and 5, vLLM) has <|endoftext|> as bos, eos and pad."""
        path = Path(path)
        self.save(path)
        special = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT, "pad_token": EOT}
        atomic_write_json(path / "special_tokens_map.json", special)
        atomic_write_json(path / "tokenizer_config.json", {
            "tokenizer_class": "PreTrainedTokenizerFast", **special, "model_max_length": model_max_length,
            "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        })

    def check_fits(self, model_vocab_size: int, model: str | Path | None = None) -> None:
        """A token id the model has no embedding for would crash mid-run: refuse up front."""
        if self.vocab_size > model_vocab_size:
            raise BadInput(
                f"tokenizer {self.source or ''} has {self.vocab_size} tokens, more than the model's vocab of {model_vocab_size}",
                file=model,
            )


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load tokenizer.json (a file, or a dir holding one), or a dir with GPT-2 style vocab.json + merges.txt."""
    path = Path(path)
    if path.is_dir():
        if (path / TOKENIZER_FILE).is_file():
            path = path / TOKENIZER_FILE
        elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            return Tokenizer(_from_vocab_and_merges(path), source=path)
        else:
            raise BadInput(f"no {TOKENIZER_FILE} (or vocab.json + merges.txt)", file=path)
    if not path.is_file():
        raise BadInput("no such tokenizer file", file=path)
    try:
        tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception for unreadable files
        raise BadInput(f"not a tokenizers JSON file ({e})", file=path) from None
    return Tokenizer(tok, source=path)


def _from_vocab_and_merges(path: Path) -> tokenizers.Tokenizer:
    tok = tokenizers.Tokenizer(models.BPE.from_file(str(path / "vocab.json"), str(path / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    added = path / "added_tokens.json"
    if added.is_file():  # codegen keeps its whitespace-run tokens here
        tok.add_tokens([AddedToken(t, normalized=False) for t in json.loads(added.read_text())])
    tok.add_special_tokens([EOT])
    return tok


def dataset_texts(dataset_dirs: Iterable[str | Path], max_chars: int | None = None) -> Iterator[str]:
    """Every record's text, dataset after dataset; with max_chars, about that many characters of each."""
    from syllabus.data.dataset import Dataset

    for path in dataset_dirs:
        taken = 0
        for record in Dataset(path).records():
            if max_chars is not None and taken >= max_chars:
                break
            taken += len(record["text"])
            yield record["text"]


def _dataset_chars(path: str | Path) -> int:
    from syllabus.data.dataset import Dataset

    return sum(len(record["text"]) for record in Dataset(path).records())


def train_tokenizer(dataset_dirs: list[str | Path], vocab_size: int, out_dir: str | Path, min_frequency: int = 2,
                    balance: bool = False) -> Tokenizer:
    """Train a byte-level BPE on the texts of dataset dirs; writes out_dir/tokenizer.json. With
    `balance`, on an equal share of each (as many characters as the smallest has), so that no
    source's vocabulary wins by volume: one tokenizer for arms trained on different mixes."""
    """Train a byte-level BPE on the texts of dataset dirs; writes out_dir/tokenizer.json."""
    if vocab_size < 256 + 1 + len(WHITESPACE_RUNS):
        raise BadInput(f"vocab_size {vocab_size} is too small: the 256 bytes, {EOT} and whitespace runs need {257 + len(WHITESPACE_RUNS)}")
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(WHITESPACE_RUNS),
        min_frequency=min_frequency,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    with console.status("training tokenizer"):
        share = min(_dataset_chars(path) for path in dataset_dirs) if balance else None
        tok.train_from_iterator(dataset_texts(dataset_dirs, share), trainer)
    # added tokens are split off before byte-level BPE, longest first, so indentation is one token
    tok.add_tokens([AddedToken(w, normalized=False) for w in WHITESPACE_RUNS])
    tokenizer = Tokenizer(tok, source=Path(out_dir) / TOKENIZER_FILE)
    tokenizer.save(out_dir)
    return tokenizer


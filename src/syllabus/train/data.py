"""Read a packed dir (see `syllabus.train.pack`): the weighted mix of sources as a seeded stream of sequences.

Sample n of the stream is a pure function of (seed, n): epoch e = n // epoch_size is a seeded
shuffle of every source's sequences, each repeated by its weight. So the data position of a run
is one integer (samples consumed), and a resumed run reads exactly what it would have read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from syllabus.data.files import read_json
from syllabus.errors import BadInput
from syllabus.train.pack import META


@dataclass
class TokenStream:
    """One flat token file (and optional loss mask) read as overlapping windows of seq_len + 1."""

    tokens: np.ndarray
    mask: np.ndarray | None
    seq_len: int

    def __len__(self) -> int:
        return max(len(self.tokens) - 1, 0) // self.seq_len

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        start = i * self.seq_len
        end = start + self.seq_len + 1
        return self.tokens[start:end], None if self.mask is None else self.mask[start:end]


def _memmap(path: Path, dtype: str) -> np.ndarray:
    if not path.exists():
        raise BadInput("file listed in meta.json is missing", file=path)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


class PackedData:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / META).exists():
            raise BadInput("not a packed dir (no meta.json; make one with `syllabus train pack`)", file=self.path)
        self.meta = read_json(self.path / META)
        self.seq_len: int = self.meta["seq_len"]
        self.vocab_size: int = self.meta["vocab_size"]
        dtype = self.meta["dtype"]

        def stream(stem: str, masked: bool) -> TokenStream:
            mask = _memmap(self.path / f"{stem}.mask", "uint8") if masked else None
            return TokenStream(_memmap(self.path / f"{stem}.bin", dtype), mask, self.seq_len)

        self.sources = [stream(f"{s['name']}.train", s["masked"]) for s in self.meta["sources"]]
        self.weights = [s["weight"] for s in self.meta["sources"]]
        self.val = stream("val", self.meta["val"]["masked"])
        self.masked = any(s.mask is not None for s in self.sources) or self.val.mask is not None
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])
        if self.offsets[-1] == 0:
            raise BadInput("packed dir has no training sequences", file=self.path)
        self._epoch: tuple[tuple[int, int], np.ndarray] | None = None  # (seed, epoch) -> order

    @property
    def tokenizer_file(self) -> Path:
        return self.path / "tokenizer.json"

    def _epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """Global sequence ids of one epoch: each source repeated by its weight, then shuffled."""
        rng = np.random.default_rng([seed, epoch])
        ids = []
        for offset, source, weight in zip(self.offsets, self.sources, self.weights):
            n = len(source)
            whole, frac = divmod(weight, 1.0)
            ids += [offset + np.arange(n)] * int(whole)
            ids.append(offset + rng.permutation(n)[: round(frac * n)])
        order = np.concatenate(ids)
        return order[rng.permutation(len(order))]

    @property
    def epoch_size(self) -> int:
        return sum(int(w) * len(s) + round((w % 1.0) * len(s)) for s, w in zip(self.sources, self.weights))

    def sample_ids(self, seed: int, start: int, count: int) -> list[int]:
        """Global sequence ids of stream samples [start, start + count)."""
        out = []
        size = self.epoch_size
        for n in range(start, start + count):
            epoch = n // size
            if self._epoch is None or self._epoch[0] != (seed, epoch):
                self._epoch = ((seed, epoch), self._epoch_order(seed, epoch))
            out.append(int(self._epoch[1][n % size]))
        return out

    def _window(self, global_id: int) -> tuple[np.ndarray, np.ndarray | None]:
        source = int(np.searchsorted(self.offsets, global_id, side="right")) - 1
        return self.sources[source].window(global_id - int(self.offsets[source]))

    def train_batch(self, seed: int, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(tokens [count, seq_len + 1] int64, loss mask of the same shape or None)."""
        return _stack([self._window(i) for i in self.sample_ids(seed, start, count)])

    def val_batch(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validation sequences [start, start + count), wrapping around a small validation slice."""
        return _stack([self.val.window(i % len(self.val)) for i in range(start, start + count)])


def _stack(windows: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[torch.Tensor, torch.Tensor | None]:
    tokens = torch.from_numpy(np.stack([w[0] for w in windows]).astype(np.int64))
    if all(w[1] is None for w in windows):
        return tokens, None
    masks = [w[1] if w[1] is not None else np.ones(len(w[0]), np.uint8) for w in windows]
    return tokens, torch.from_numpy(np.stack(masks).astype(np.bool_))

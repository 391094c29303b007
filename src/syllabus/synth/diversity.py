"""How varied synthetic data is, and near-duplicate removal while it is written.

The paper's point is that synthetic data must be diverse; these numbers make that checkable and
comparable between runs: distinct n-gram ratio (lexical variety), near-duplicate rate (kept records
still close to an earlier one, below the filter's threshold), embedding spread (mean pairwise cosine
of `hashing` embeddings, and how evenly records fill k-means clusters of them), the most repeated
openings, and coverage of the topics and names asked for.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from syllabus.codetext import band_hashes, code_tokens, shingle_signatures

NUM_PERM, BANDS, SHINGLE = 64, 16, 5


def tokens(text: str) -> list[str]:
    return code_tokens(text.lower())


class NearDuplicates:
    """MinHash LSH over everything kept so far: `seen(text)` says whether text is a near duplicate
    (estimated Jaccard of 5-token shingles >= threshold) of a kept text, and keeps it if not."""

    def __init__(self, threshold: float = 0.8):
        self.threshold = threshold
        self.buckets: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self.kept: list[np.ndarray] = []

    def seen(self, text: str) -> bool:
        signature = shingle_signatures([tokens(text)], shingle=SHINGLE, num_perm=NUM_PERM, seed=1)
        keys = band_hashes(signature, BANDS, NUM_PERM // BANDS)[0].tolist()
        candidates = {i for band, key in zip(self.buckets, keys) for i in band.get(key, ())}
        if any((self.kept[i] == signature[0]).mean() >= self.threshold for i in candidates):
            return True
        for band, key in zip(self.buckets, keys):
            band[key].append(len(self.kept))
        self.kept.append(signature[0])
        return False


def distinct_ngram_ratio(texts: Iterable[str], n: int = 4) -> float:
    """Distinct n-grams over all n-grams of the texts: 1.0 means no n-gram ever repeats."""
    seen, total = set(), 0
    for text in texts:
        words = tokens(text)
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return round(len(seen) / total, 4) if total else 0.0


def cluster_coverage(texts: list[str], k: int = 16, seed: int = 0) -> dict[str, float | int]:
    """k-means on `syllabus.embed` hashing embeddings; coverage is the normalized entropy of cluster sizes
    (1.0: records spread evenly over all k clusters, 0.0: all in one)."""
    k = min(k, len(texts) // 4)
    if k < 2:
        return {"clusters": 0, "coverage": 0.0}
    from sklearn.cluster import KMeans

    from syllabus.embed import get_embedder

    vectors = get_embedder("hashing").embed(texts)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)
    sizes = np.bincount(labels, minlength=k) / len(labels)
    entropy = -sum(p * math.log(p) for p in sizes if p > 0)
    return {"clusters": k, "coverage": round(entropy / math.log(k), 4)}


def coverage(found: Iterable[str], universe: Iterable[str]) -> dict[str, float | int]:
    found_counts = Counter(found)
    universe = set(universe)
    covered = len(universe & set(found_counts))
    return {"covered": covered, "of": len(universe), "ratio": round(covered / len(universe), 4) if universe else 0.0}


NEAR_THRESHOLD = 0.5  # below the 0.8 the writer drops at: how close the survivors still are
OPENING_TOKENS = 8


def near_duplicate_rate(texts: list[str], threshold: float = NEAR_THRESHOLD) -> float:
    """Fraction of texts whose estimated 5-shingle Jaccard with an earlier one is >= threshold."""
    near = NearDuplicates(threshold)
    return round(sum(near.seen(text) for text in texts) / len(texts), 4) if texts else 0.0


def mean_pairwise_cosine(texts: list[str], max_texts: int = 500) -> float:
    """Mean cosine similarity of distinct pairs of `hashing` embeddings of (at most max_texts evenly
    spaced) texts: 1.0 when all point the same way; lower is more spread out."""
    from syllabus.embed import get_embedder

    sample = texts[::max(1, len(texts) // max_texts)][:max_texts]
    if len(sample) < 2:
        return 0.0
    vectors = np.asarray(get_embedder("hashing").embed(sample), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    total = vectors.sum(axis=0)
    pairs = len(sample) * (len(sample) - 1)
    return round(float((total @ total - (vectors * vectors).sum()) / pairs), 4)


def openings(texts: list[str], top: int = 5) -> dict[str, object]:
    """The first OPENING_TOKENS code tokens of each text: the share of distinct ones and the most repeated."""
    counts = Counter(" ".join(code_tokens(text)[:OPENING_TOKENS]) for text in texts)
    repeated = {opening: count for opening, count in counts.most_common(top) if count > 1}
    return {"distinct_openings": round(len(counts) / len(texts), 4) if texts else 0.0, "top_openings": repeated}


def diversity_summary(texts: list[str], max_texts: int = 5000) -> dict[str, object]:
    """Lexical and embedding diversity over (an evenly spaced sample of at most max_texts) texts."""
    step = max(1, len(texts) // max_texts)
    sample = texts[::step]
    return {"distinct_4gram_ratio": distinct_ngram_ratio(sample), "near_duplicate_rate": near_duplicate_rate(sample),
            "mean_pairwise_cosine": mean_pairwise_cosine(sample), **openings(sample),
            "embedding_clusters": cluster_coverage(sample)}

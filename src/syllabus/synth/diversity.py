"""How varied synthetic data is, and near-duplicate removal while it is written.

The paper's point is that synthetic data must be diverse; these numbers make that checkable:
distinct n-gram ratio (lexical variety), embedding-cluster coverage (how evenly records spread
over k-means clusters of their hashed bag-of-words vectors), and topic coverage.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np
from datasketch import MinHash, MinHashLSH

_TOKEN = re.compile(r"\w+|[^\w\s]")
NUM_PERM = 64


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def minhash(text: str, shingle: int = 5) -> MinHash:
    words = tokens(text)
    grams = {" ".join(words[i:i + shingle]) for i in range(max(1, len(words) - shingle + 1))}
    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch([g.encode() for g in grams])
    return m


class NearDuplicates:
    """MinHash LSH over everything kept so far: `seen(key, text)` says whether text is a near
    duplicate of a kept record, and keeps it if not."""

    def __init__(self, threshold: float = 0.8):
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)

    def seen(self, key: str, text: str) -> bool:
        m = minhash(text)
        if self.lsh.query(m):
            return True
        if key not in self.lsh:
            self.lsh.insert(key, m)
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
    """k-means on hashed bag-of-words vectors; coverage is the normalized entropy of cluster sizes
    (1.0: records spread evenly over all k clusters, 0.0: all in one)."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import HashingVectorizer

    k = min(k, len(texts) // 4)
    if k < 2:
        return {"clusters": 0, "coverage": 0.0}
    vectors = HashingVectorizer(n_features=2**14, alternate_sign=False, token_pattern=r"\w+").transform(texts)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)
    sizes = np.bincount(labels, minlength=k) / len(labels)
    entropy = -sum(p * math.log(p) for p in sizes if p > 0)
    return {"clusters": k, "coverage": round(entropy / math.log(k), 4)}


def coverage(found: Iterable[str], universe: Iterable[str]) -> dict[str, float | int]:
    found_counts = Counter(found)
    universe = set(universe)
    covered = len(universe & set(found_counts))
    return {"covered": covered, "of": len(universe), "ratio": round(covered / len(universe), 4) if universe else 0.0}


def diversity_summary(texts: list[str], max_texts: int = 5000) -> dict[str, object]:
    """Lexical and embedding diversity over (an evenly spaced sample of at most max_texts) texts."""
    step = max(1, len(texts) // max_texts)
    sample = texts[::step]
    return {"distinct_4gram_ratio": distinct_ngram_ratio(sample), "embedding_clusters": cluster_coverage(sample)}

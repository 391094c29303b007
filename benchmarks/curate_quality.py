"""Classifier quality on the gold labels: F1 / ROC-AUC / Spearman per embedder and model.

Repeated stratified 5-fold CV (a new fold split per repeat), mean ± std over repeats, using the
same `cross_validate` that `syllabus curate train` reports. The peer is the hashing baseline with
the paper's random forest, measured in the same run: the ratio column is AUC over its AUC.
Embeddings are cached per embedder part under --cache-dir, so a second run only fits models.

    PYTHONPATH=src python benchmarks/curate_quality.py [--embedders hashing,subtokens+features]
        [--models rf,logreg,ensemble] [--repeats 3] [--first-seed 0] [--tune-threshold]

Seeds first-seed .. first-seed+repeats-1 pick the fold splits (and forest seeds): choose a model on
some seeds, then confirm it on fresh ones (e.g. --first-seed 10) so the table is not a selection.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from syllabus.curate.classifier import cross_validate, embedding_blocks, load_labels
from syllabus.embed import embed_cached, get_embedder

GOLD = Path("/work/shared/data/edu_labels/train.jsonl")
PEER = ("hashing", "rf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=GOLD)
    parser.add_argument("--embedders", default="hashing,features,subtokens,subtokens+features")
    parser.add_argument("--models", default="rf,logreg,ensemble")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--tune-threshold", action="store_true", help="F1 at an inner-CV threshold, not 0.5")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/bench/embed-cache"))
    args = parser.parse_args()

    labels = load_labels(args.labels)
    texts, ids = [lab.text for lab in labels], [lab.id for lab in labels]
    scores = np.array([lab.score for lab in labels])
    print(f"{args.labels}: {len(labels)} labels, {int((scores >= 3).sum())} at score >= 3; "
          f"{args.repeats} x {args.folds}-fold CV (seeds {args.first_seed}-{args.first_seed + args.repeats - 1})"
          f"{' with inner-CV thresholds' if args.tune_threshold else ''}")
    print(f"{'embedder':28s} {'model':9s} {'F1':>13s} {'ROC-AUC':>13s} {'Spearman':>13s} {'AUC/peer':>8s} "
          f"{'fit s':>6s}")
    specs = args.embedders.split(",")
    runs = [PEER] + [(spec, model) for spec in specs for model in args.models.split(",") if (spec, model) != PEER]
    peer_auc = None
    for spec, model in runs:
        embedder = get_embedder(spec)
        features = embed_cached(embedder, texts, args.cache_dir, ids)
        start = time.perf_counter()
        results = [cross_validate(features, scores, model, args.folds, seed, args.workers,
                                  blocks=embedding_blocks(embedder), tune_threshold=args.tune_threshold)
                   for seed in range(args.first_seed, args.first_seed + args.repeats)]
        seconds = (time.perf_counter() - start) / args.repeats
        f1, auc, rho = (np.array([r[key] for r in results]) for key in ("f1", "roc_auc", "spearman"))
        peer_auc = peer_auc or auc.mean()
        print(f"{spec:28s} {model:9s} {f1.mean():7.3f}±{f1.std():.3f} {auc.mean():7.3f}±{auc.std():.3f} "
              f"{rho.mean():7.3f}±{rho.std():.3f} {auc.mean() / peer_auc:7.3f}x {seconds:6.1f}", flush=True)


if __name__ == "__main__":
    main()

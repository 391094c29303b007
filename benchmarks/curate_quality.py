"""Classifier quality on the gold labels: F1 / ROC-AUC / Spearman per embedder and model, beside the
labels' own agreement ceiling, and the learning curve.

Repeated stratified 5-fold CV (a new fold split per repeat), mean ± std over repeats, using the
same `cross_validate` that `syllabus curate train` reports. F1, precision and recall are at the
cut each outer training fold chose for itself (the stack's combiner: CV over its members'
out-of-fold probabilities; other models: an inner CV), F1@0.5 at the fixed probability 0.5.
"round 2 F1" re-checks the cut on the second labelling round alone (annotators D, E, F: snippets
sampled as a corpus holds them, 15% positive against 30% in round 1), where a cut tuned to the
pooled positive rate would drift. The peer is the hashing baseline with the paper's random forest,
measured in the same run: the ratio column is AUC over its AUC. Embeddings are cached per embedder
part under --cache-dir, so a second run only fits models.

    PYTHONPATH=src python benchmarks/curate_quality.py [--embedders hashing,subtokens+features]
        [--models rf,logreg,ensemble] [--repeats 5] [--first-seed 100] [--learning-curve subtokens+features]

Seeds first-seed .. first-seed+repeats-1 pick the fold splits (and forest seeds): choose a model on
some seeds, then confirm it on fresh ones (e.g. --first-seed 100) so the table is not a selection.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from syllabus.curate.classifier import (HIGH_VALUE, cross_validate, embedding_blocks, load_labels, make_model,
                                        metrics, own_threshold)
from syllabus.embed import embed_cached, get_embedder

GOLD = Path("/work/shared/data/edu_labels/train.jsonl")
PEER = ("hashing", "rf")
ROUND_2 = {"D", "E", "F"}  # annotators of the corpus-like second round (README of the labels)
# a second annotator re-rating 150 labelled snippets blind (README of the labels): what the labels allow
CEILING = "F1 0.87-0.89 (P 1.00, R 0.77-0.80), Spearman 0.95"
COLUMNS = ("f1", "precision", "recall", "f1@0.5", "roc_auc", "spearman", "round 2 F1")


def repeat_metrics(features, scores, round_2, model, blocks, seed, folds, workers) -> dict[str, float]:
    result = cross_validate(features, scores, model, folds, seed, workers, blocks=blocks, tune_threshold=True)
    prob, cut = result["oof_prob"], result["oof_threshold"]
    return {"f1": result["f1"], "precision": result["precision"], "recall": result["recall"],
            "f1@0.5": metrics(scores, prob, 0.5)["f1"], "roc_auc": result["roc_auc"],
            "spearman": result["spearman"], "round 2 F1": metrics(scores[round_2], prob[round_2], cut[round_2])["f1"]}


def learning_curve(features, scores, model, blocks, seeds, folds, fractions, workers) -> None:
    """Train on a stratified part of each outer training fold; score the same held-out folds."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    truth = scores >= HIGH_VALUE
    print(f"learning curve ({model}, seeds {seeds.start}-{seeds.stop - 1}): labels in training fold -> F1 / ROC-AUC")
    for fraction in fractions:
        f1s, aucs, sizes = [], [], []
        for seed in seeds:
            prob, cut = np.zeros(len(scores)), np.zeros(len(scores))
            for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, truth):
                if fraction < 1:
                    train, _ = train_test_split(train, train_size=fraction, stratify=truth[train], random_state=seed)
                fitted = make_model(model, seed, workers, blocks=blocks).fit(features[train], truth[train])
                prob[test], cut[test] = fitted.predict_proba(features[test])[:, 1], own_threshold(fitted) or 0.5
                sizes.append(len(train))
            result = metrics(scores, prob, cut)
            f1s.append(result["f1"])
            aucs.append(result["roc_auc"])
        print(f"  {np.mean(sizes):5.0f}  F1 {np.mean(f1s):.3f}±{np.std(f1s):.3f}  ROC-AUC {np.mean(aucs):.3f}"
              f"±{np.std(aucs):.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=GOLD)
    parser.add_argument("--embedders", default="hashing,features,subtokens,subtokens+features")
    parser.add_argument("--models", default="rf,logreg,ensemble")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--learning-curve", metavar="EMBEDDER", help="also the learning curve of the ensemble on it")
    parser.add_argument("--fractions", default="0.25,0.5,0.75,1")
    parser.add_argument("--no-peer", action="store_true", help="skip the hashing + forest peer row")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/bench/embed-cache"))
    args = parser.parse_args()

    labels = load_labels(args.labels)
    annotators = {row["id"]: row.get("annotator") for row in map(json.loads, args.labels.read_text().splitlines())}
    texts, ids = [lab.text for lab in labels], [lab.id for lab in labels]
    scores = np.array([lab.score for lab in labels])
    round_2 = np.array([annotators.get(lab.id) in ROUND_2 for lab in labels])
    seeds = range(args.first_seed, args.first_seed + args.repeats)
    print(f"{args.labels}: {len(labels)} labels, {int((scores >= HIGH_VALUE).sum())} at score >= {HIGH_VALUE} "
          f"({int(round_2.sum())} in round 2); {args.repeats} x {args.folds}-fold CV (seeds {seeds.start}-"
          f"{seeds.stop - 1}); agreement ceiling (second annotator): {CEILING}")
    print(f"{'embedder':34s} {'model':9s} " + " ".join(f"{c:>12s}" for c in COLUMNS) + f" {'AUC/peer':>8s} {'fit s':>6s}")
    specs = [spec for spec in args.embedders.split(",") if spec]  # "" for the learning curve alone
    runs = [] if args.no_peer else [PEER]
    runs += [(spec, model) for spec in specs for model in args.models.split(",") if (spec, model) != PEER]
    peer_auc = None
    for spec, model in runs:
        embedder = get_embedder(spec)
        features = embed_cached(embedder, texts, args.cache_dir, ids)
        start = time.perf_counter()
        results = [repeat_metrics(features, scores, round_2, model, embedding_blocks(embedder), seed, args.folds,
                                  args.workers) for seed in seeds]
        seconds = (time.perf_counter() - start) / args.repeats
        table = {c: np.array([r[c] for r in results]) for c in COLUMNS}
        peer_auc = peer_auc or table["roc_auc"].mean()
        print(f"{spec:34s} {model:9s} " + " ".join(f"{table[c].mean():6.3f}±{table[c].std():.3f}" for c in COLUMNS)
              + f" {table['roc_auc'].mean() / peer_auc:7.3f}x {seconds:6.1f}", flush=True)
    if args.learning_curve:
        embedder = get_embedder(args.learning_curve)
        features = embed_cached(embedder, texts, args.cache_dir, ids)
        learning_curve(features, scores, "ensemble", embedding_blocks(embedder), seeds, args.folds,
                       [float(f) for f in args.fractions.split(",")], args.workers)


if __name__ == "__main__":
    main()

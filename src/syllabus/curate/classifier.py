"""The educational-value classifier: a model on code embeddings, predicting P(score >= 3).

As in phi-1, a small set of judged snippets trains a classifier on embeddings that then scores
the whole corpus. Models: a random forest (the paper's), a logistic regression baseline, and
a stack of both ("ensemble": a logistic regression per embedder block plus a forest on the
structural features, combined by a logistic regression trained on their out-of-fold
probabilities, so a block only gets the weight it earns on unseen snippets). Metrics are honest
out-of-fold predictions of stratified k-fold CV, at probability 0.5 or, with tune_threshold, at
a threshold chosen on each outer training fold alone: the stack's combiner picks its F1-best cut
by CV over the members' out-of-fold probabilities it is trained on (no extra fits); other models
by an inner CV.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from syllabus.config import Params, StageContext
from syllabus.curate import CLASSIFIER_FILE, LABELS_FILE, stage_file
from syllabus.data.dataset import Dataset, record_id
from syllabus.data.files import atomic_path, iter_jsonl
from syllabus.embed import embed_cached, get_embedder
from syllabus.errors import BadInput
from syllabus.summaries import ClassifierSummary

HIGH_VALUE = 3  # the paper's "high educational value" cut on the 0-5 scale
MODELS = ("rf", "logreg", "ensemble")
STACK_FOLDS = 5  # inner CV of the ensemble: its combiner learns from out-of-fold member predictions


@dataclass
class Label:
    id: str
    text: str
    score: int
    source: str = ""


def load_labels(path: str | Path, data: str | Path | None = None) -> list[Label]:
    """Read a labels JSONL (id, score, and text or an id found in `data`); BadInput names the line."""
    texts = {r["id"]: r["text"] for r in Dataset(data).records()} if data else {}
    labels = []
    for lineno, row in iter_jsonl(path):
        if row.get("score") is None:
            continue  # unlabeled: the judge gave no parseable score
        where = f"line {lineno}"
        score = row["score"]
        if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 5:
            raise BadInput(f"{where}: score {score!r} is not an integer 0-5", file=path)
        text = row.get("text")
        if text is None:
            if row.get("id") not in texts:
                raise BadInput(f"{where}: unknown id {row.get('id')!r} (not in --data and no text)", file=path)
            text = texts[row["id"]]
        elif "id" in row and row["id"] != record_id(text):
            raise BadInput(f"{where}: id {row['id']!r} does not match its text (expected {record_id(text)})",
                           file=path)
        labels.append(Label(record_id(text), text, score, str(row.get("source", ""))))
    if len(labels) < 10:
        raise BadInput(f"only {len(labels)} labelled records; need at least 10 to train", file=path)
    return labels


def make_model(kind: str, seed: int = 0, n_jobs: int = 1, trees: int = 300,
               blocks: list[tuple[str, slice]] | None = None):
    """An unfitted model over embedding columns; `blocks` names the column ranges of each
    concatenated embedder (default: one block of every column)."""
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, max_features="sqrt",
                                    class_weight="balanced_subsample", n_jobs=n_jobs, random_state=seed)
    if kind == "rf":
        return forest
    if kind == "logreg":
        # strong regularisation: a few hundred labels against hundreds of embedding dimensions
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000, class_weight="balanced"))
    if kind == "ensemble":
        blocks = blocks or [("all", None)]
        members = [(name, _on_columns(columns, _block_linear_model(name))) for name, columns in blocks]
        # trees find the thresholds in structural features; without them they read every column
        forest_columns = dict(blocks).get("features")
        members.append(("rf", _on_columns(forest_columns, forest)))
        return StackingClassifier(members, final_estimator=CombinerWithCut(), cv=STACK_FOLDS)
    raise BadInput(f"unknown model {kind!r} (expected one of {', '.join(MODELS)})")


class CombinerWithCut(ClassifierMixin, BaseEstimator):
    """The stack's combiner: a class-balanced logistic regression over the members' out-of-fold
    probabilities, which also picks the F1-best cut by CV over those same rows. They are the
    training snippets as unseen by the members, so the cut is an inner-CV one at no extra fit;
    it matters because the balanced fit centres P near 0.5 at a 50% positive rate, not the data's."""

    def __init__(self, folds: int = STACK_FOLDS):
        self.folds = folds

    def fit(self, X: np.ndarray, y: np.ndarray) -> CombinerWithCut:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        self.classes_ = np.unique(y)
        combiner = LogisticRegression(class_weight="balanced")
        inner = StratifiedKFold(self.folds, shuffle=True, random_state=0)
        prob = cross_val_predict(combiner, X, y, cv=inner, method="predict_proba")[:, 1]
        self.threshold_ = best_f1_threshold(y == self.classes_[-1], prob)
        self.model_ = combiner.fit(X, y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.model_.decision_function(X)


def own_threshold(model) -> float | None:
    """The cut a fitted model chose for itself on its training data (a stack's combiner), if any."""
    return getattr(getattr(model, "final_estimator_", None), "threshold_", None)


def _block_linear_model(name: str):
    """Logistic regression on one embedder's columns. Hashed bags of tokens are sparse unit vectors
    that need little regularisation, reweighted by inverse document frequency learnt from the
    training snippets (rare words such as "recursion" or "pragma" say more than "self"); dense
    encoder vectors need more; structural features come in mixed units, so they are standardised
    and regularised most. (One C per kind of block, fixed: choosing it by inner CV inside the
    stack, itself inside CV, multiplies the fits by 20.)"""
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "features":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
    if name in ("hashing", "subtokens"):
        return make_pipeline(TfidfTransformer(), LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced"))
    return LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced")


def _on_columns(columns: slice | None, model):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    if columns is None:
        return model
    return make_pipeline(ColumnTransformer([("block", "passthrough", columns)]), model)


def embedding_blocks(embedder) -> list[tuple[str, slice]]:
    """(embedder name, its columns) for each part of a (concatenated) embedding."""
    blocks, start = [], 0
    for name, dim in embedder.blocks:
        blocks.append((name, slice(start, start + dim)))
        start += dim
    return blocks


def metrics(scores: np.ndarray, prob: np.ndarray, threshold: float | np.ndarray = 0.5) -> dict[str, Any]:
    from scipy.stats import spearmanr
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    truth = scores >= HIGH_VALUE
    predicted = prob >= threshold
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
    both_classes = 0 < truth.sum() < len(truth)
    return {
        "n": int(len(scores)),
        "positives": int(truth.sum()),
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "f1": round(float(f1), 4),
        "roc_auc": round(float(roc_auc_score(truth, prob)), 4) if both_classes else None,
        "spearman": round(float(spearmanr(prob, scores).statistic), 4),
        "confusion": confusion_matrix(truth, predicted, labels=[False, True]).tolist(),  # rows truth, cols predicted
    }


def best_f1_threshold(truth: np.ndarray, prob: np.ndarray) -> float:
    grid = np.linspace(0.2, 0.8, 61)
    f1 = [2 * (truth & (prob >= t)).sum() / max(truth.sum() + (prob >= t).sum(), 1) for t in grid]
    return float(grid[int(np.argmax(f1))])


def cross_validate(features: np.ndarray, scores: np.ndarray, model: str, folds: int = 5, seed: int = 0,
                   n_jobs: int = 1, trees: int = 300, blocks: list[tuple[str, slice]] | None = None,
                   tune_threshold: bool = False) -> dict[str, Any]:
    """Out-of-fold P(high value) from stratified k-fold CV, and the metrics it gives.

    With tune_threshold, each outer fold's threshold is the F1-best one on an inner CV of that
    fold's training part only, so the reported F1 stays an honest estimate.
    """
    from sklearn.model_selection import StratifiedKFold

    truth = scores >= HIGH_VALUE
    if min(truth.sum(), (~truth).sum()) < folds:
        raise BadInput(f"need at least {folds} labels on each side of score {HIGH_VALUE} for {folds}-fold CV")
    build = lambda: make_model(model, seed, n_jobs, trees, blocks)  # noqa: E731
    prob = np.zeros(len(scores))
    thresholds = np.full(len(scores), 0.5)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, truth):
        fitted = build().fit(features[train], truth[train])
        prob[test] = fitted.predict_proba(features[test])[:, 1]
        if tune_threshold:
            thresholds[test] = own_threshold(fitted) or _inner_cv_threshold(build, features[train], truth[train],
                                                                              folds - 1, seed)
    result = {"model": model, "folds": folds, **metrics(scores, prob, thresholds), "oof_prob": prob,
              "oof_threshold": thresholds}
    if tune_threshold:
        result["threshold"] = round(best_f1_threshold(truth, prob), 4)  # for the model fit on all labels
    return result


def _inner_cv_threshold(build, features: np.ndarray, truth: np.ndarray, folds: int, seed: int) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    inner = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return best_f1_threshold(truth, cross_val_predict(build(), features, truth, cv=inner, method="predict_proba")[:, 1])


@dataclass
class EduClassifier:
    """A fitted model plus the embedder it was trained on (its name and version are checked at load)."""

    embedder_spec: str
    embedder_key: str
    model_kind: str
    model: Any
    threshold: float = 0.5
    cv_metrics: dict[str, Any] = field(default_factory=dict)
    _embedder: Any = field(default=None, repr=False, compare=False)

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = get_embedder(self.embedder_spec)
            if self._embedder.key != self.embedder_key:
                raise BadInput(f"classifier was trained on {self.embedder_key}, but {self.embedder_spec!r} "
                               f"is now {self._embedder.key}; retrain it")
        return self._embedder

    def score(self, texts: list[str], cache_dir: str | Path | None = None,
              ids: list[str] | None = None) -> np.ndarray:
        """P(educational value >= 3) for each text."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        features = embed_cached(self.embedder, texts, cache_dir, ids)
        return self.model.predict_proba(features)[:, 1].astype(np.float32)

    def save(self, path: str | Path) -> None:
        state = {k: v for k, v in self.__dict__.items() if k != "_embedder"}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            pickle.dump(state, f)

    @classmethod
    def load(cls, path: str | Path) -> EduClassifier:
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
            return cls(**state)
        except (OSError, pickle.UnpicklingError, EOFError, TypeError) as e:
            raise BadInput(f"cannot load classifier: {e}", file=path) from None


def train_classifier(labels: list[Label], embedder_spec: str, *, model: str = "ensemble", folds: int = 5,
                     seed: int = 0, cache_dir: str | Path | None = None, n_jobs: int = 1,
                     tune_threshold: bool = False) -> EduClassifier:
    """Cross-validate, then fit on all labels. The CV metrics travel with the classifier."""
    embedder = get_embedder(embedder_spec)
    features = embed_cached(embedder, [lab.text for lab in labels], cache_dir, [lab.id for lab in labels])
    scores = np.array([lab.score for lab in labels])
    blocks = embedding_blocks(embedder)
    cv = cross_validate(features, scores, model, folds, seed, n_jobs, blocks=blocks, tune_threshold=tune_threshold)
    cv = {key: value for key, value in cv.items() if not key.startswith("oof_")}
    fitted = make_model(model, seed, n_jobs, blocks=blocks).fit(features, scores >= HIGH_VALUE)
    threshold = (own_threshold(fitted) or cv["threshold"]) if tune_threshold else 0.5
    return EduClassifier(embedder_spec, embedder.key, model, fitted, threshold=round(float(threshold), 4),
                         cv_metrics=cv, _embedder=embedder)


class TrainParams(Params):
    embedder: str = "subtokens+features"
    model: str = "ensemble"
    folds: int = 5
    tune_threshold: bool = True


def train_stage(params: TrainParams, inputs: dict[str, Path | list[Path]], out: Path,
                ctx: StageContext) -> ClassifierSummary:
    labels = load_labels(stage_file(inputs["labels"], LABELS_FILE), inputs.get("data"))
    classifier = train_classifier(labels, params.embedder, model=params.model, folds=params.folds, seed=ctx.seed,
                                  cache_dir=ctx.run_dir / "cache" / "embeddings", n_jobs=ctx.workers,
                                  tune_threshold=params.tune_threshold)
    classifier.save(Path(out) / CLASSIFIER_FILE)
    return ClassifierSummary(embedder=classifier.embedder_key, **classifier.cv_metrics)

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from syllabus.curate.classifier import EduClassifier, cross_validate, load_labels, metrics
from syllabus.curate.filter import EduFilter, score_histogram
from syllabus.curate.judge import HeuristicJudge, LLMJudge, annotate, parse_judgement, stratified_sample
from syllabus.data.dataset import Dataset, DatasetWriter, record_id
from syllabus.embed import get_embedder
from syllabus.errors import BadInput

TEXTBOOK = '''def bubble_sort(items: list[int]) -> list[int]:
    """Sort a list by repeatedly swapping adjacent items that are out of order.

    >>> bubble_sort([3, 1, 2])
    [1, 2, 3]
    """
    items = list(items)
    for end in range(len(items) - 1, 0, -{k}):
        # after each pass the largest remaining item has bubbled to position `end`
        for i in range(end):
            if items[i] > items[i + 1]:
                items[i], items[i + 1] = items[i + 1], items[i]
    return items
'''
GLUE = "from .registry import register{k}\nfrom .backends import Backend\nregister('x', Backend, settings.X{k})\n"


def snippets(n):
    """n/2 textbook-like and n/2 glue snippets, all distinct."""
    return [TEXTBOOK.format(k=k) for k in range(n // 2)] + [GLUE.format(k=k) for k in range(n // 2)]


def corpus(tmp_path, n=40):
    records = [{"id": record_id(t), "text": t, "source": "a" if i % 4 else "b", "path": f"f{i}.py"}
               for i, t in enumerate(snippets(n))]
    writer = DatasetWriter(tmp_path / "raw", stage="test", records_per_shard=10)
    writer.write_many(records)
    return writer.close()


def test_parse_judgement_reads_score_and_reason_or_reports_none():
    assert parse_judgement("Score: 4\nReason: clear and documented.").score == 4
    assert parse_judgement("**Score**: 2\nReason: glue").reason == "glue"
    bad = parse_judgement("I think it is quite good.")
    assert bad.score is None and "no score" in bad.error
    assert parse_judgement(None).score is None


def test_heuristic_judge_prefers_textbook_code_to_glue():
    good, glue = HeuristicJudge().judge_many([TEXTBOOK.format(k=1), GLUE.format(k=1)])
    assert good.score >= 4 and glue.score <= 1


def test_stratified_sample_takes_every_source_and_is_reproducible(tmp_path):
    data = corpus(tmp_path)
    sample = stratified_sample(data, 8, seed=1)
    assert len(sample) == 8 and {r["source"] for r in sample} == {"a", "b"}
    assert [r["id"] for r in stratified_sample(data, 8, seed=1)] == [r["id"] for r in sample]


def test_annotate_writes_provenance_and_resumes(tmp_path):
    data = corpus(tmp_path)
    out = tmp_path / "labels.jsonl"
    first = annotate(data.path, HeuristicJudge(), 6, out)
    assert first.labels == 6 and first.resumed == 0
    row = json.loads(out.read_text().splitlines()[0])
    assert {"id", "text", "score", "reason", "judge", "model", "prompt_sha256"} <= set(row)
    second = annotate(data.path, HeuristicJudge(), 10, out)
    assert second.resumed == 6 and second.labels == 10


def test_llm_judge_retries_unparseable_replies_then_records_unlabeled(tmp_path, monkeypatch):
    llm = pytest.importorskip("syllabus.llm")
    calls = []

    def flaky(prompt, sample):
        calls.append(sample)
        if "register" in prompt:
            return "no idea"  # never parseable
        return "Score: 5\nReason: a lesson." if sample > 0 else "hmm"  # parseable on the retry

    llm.register_offline("test-flaky-judge", flaky)
    judge = LLMJudge("offline:test-flaky-judge", retries=2, cache_dir=tmp_path / "cache")
    result = annotate(corpus(tmp_path, n=4).path, judge, 4, tmp_path / "labels.jsonl")
    assert result.labelled == 2 and result.unlabeled == 2
    assert result.prompt_sha256 == judge.prompt_hash
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert all(r["score"] is None and "no score" in r["error"] for r in rows if "register" in r["text"])


def test_labels_with_bad_scores_or_unknown_ids_name_the_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"id": "x", "text": "a = 1", "score": 2}) + "\n")
    with pytest.raises(BadInput, match="line 1: id 'x' does not match"):
        load_labels(path)
    path.write_text(json.dumps({"text": "a = 1", "score": 2}) + "\n" + json.dumps({"text": "b", "score": 7}) + "\n")
    with pytest.raises(BadInput, match="line 2: score 7 is not an integer 0-5"):
        load_labels(path)
    data = corpus(tmp_path)
    path.write_text(json.dumps({"id": "0123456789abcdef", "score": 2}) + "\n")
    with pytest.raises(BadInput, match="line 1: unknown id"):
        load_labels(path, data.path)


def test_metrics_at_the_high_value_threshold():
    scores = np.array([0, 1, 2, 3, 4, 5])
    m = metrics(scores, np.array([0.1, 0.2, 0.6, 0.7, 0.8, 0.4]))
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert m["precision"] == pytest.approx(2 / 3, abs=1e-3) and m["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert m["roc_auc"] == pytest.approx(8 / 9, abs=1e-3)  # 8 of 9 (positive, negative) pairs ordered


def test_cross_validation_separates_learnable_labels():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 120)
    features = (scores[:, None] >= 3) + rng.normal(0, 0.3, (120, 4))
    for model in ("rf", "logreg", "ensemble"):
        result = cross_validate(features.astype(np.float32), scores, model, trees=20)
        assert result["f1"] > 0.9 and result["roc_auc"] > 0.95


def test_ensemble_stacks_a_linear_model_per_embedder_and_a_forest_on_the_features():
    from syllabus.curate.classifier import embedding_blocks, make_model

    blocks = embedding_blocks(get_embedder("subtokens+features"))
    assert [name for name, _ in blocks] == ["subtokens", "features"]
    rng = np.random.default_rng(0)
    truth = rng.random(80) < 0.4
    features = rng.normal(0, 1, (80, blocks[1][1].stop)).astype(np.float32)
    features[:, blocks[1][1].start] += 3 * truth  # only one structural feature carries the signal
    model = make_model("ensemble", trees=20, blocks=blocks).fit(features, truth)
    assert [name for name, _ in model.estimators] == ["subtokens", "features", "rf"]
    forest = model.named_estimators_["rf"]
    assert forest[-1].n_features_in_ == blocks[1][1].stop - blocks[1][1].start
    # the combiner trusts the informative members, not the noise block
    weights = dict(zip(["subtokens", "features", "rf"], model.final_estimator_.model_.coef_[0]))
    assert weights["features"] > weights["subtokens"] and weights["rf"] > weights["subtokens"]


def test_stack_chooses_its_cut_from_its_own_training_rows():
    from syllabus.curate.classifier import CombinerWithCut, best_f1_threshold, own_threshold
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    truth = rng.random(300) < 0.2  # rare positives: the balanced fit puts too many above 0.5
    member_probs = np.clip(0.35 + 0.3 * truth[:, None] + rng.normal(0, 0.15, (300, 2)), 0, 1)
    combiner = CombinerWithCut().fit(member_probs, truth)
    inner = cross_val_predict(LogisticRegression(class_weight="balanced"), member_probs, truth,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    assert combiner.threshold_ == best_f1_threshold(truth, inner) and combiner.threshold_ > 0.5
    assert (combiner.predict(member_probs) == (combiner.predict_proba(member_probs)[:, 1] >= combiner.threshold_)).all()
    assert own_threshold(LogisticRegression()) is None


def test_token_blocks_weigh_rare_words_by_idf_learnt_from_the_training_snippets():
    from syllabus.curate.classifier import _block_linear_model

    embedder = get_embedder("subtokens")
    texts = ["self value = self value", "self total = self value", "self recursion", "self loop"]
    model = _block_linear_model("subtokens").fit(embedder.embed(texts), [False, False, True, True])
    idf = model[0].idf_
    column = {word: embedder.vectorizer.transform([word]).indices[0] for word in ("self", "value", "recursion")}
    assert idf[column["recursion"]] > idf[column["value"]] > idf[column["self"]]
    assert model.predict(embedder.embed(["recursion"]))[0]


def trained_classifier(tmp_path):
    from syllabus.curate.classifier import Label, train_classifier

    texts = snippets(40)
    labels = [Label(record_id(t), t, 4 if i < 20 else 1) for i, t in enumerate(texts)]
    classifier = train_classifier(labels, "features", model="logreg", folds=3)
    classifier.save(tmp_path / "clf.pkl")
    return tmp_path / "clf.pkl"


def test_classifier_round_trips_and_refuses_a_changed_embedder(tmp_path):
    path = trained_classifier(tmp_path)
    classifier = EduClassifier.load(path)
    assert classifier.cv_metrics["f1"] == 1.0
    scores = classifier.score([TEXTBOOK.format(k=99), GLUE.format(k=99)])
    assert scores[0] > 0.5 > scores[1]
    state = pickle.loads(path.read_bytes())
    path.write_bytes(pickle.dumps({**state, "embedder_key": "features@0"}))
    with pytest.raises(BadInput, match="retrain"):
        EduClassifier.load(path).embedder
    path.write_bytes(b"not a pickle")
    with pytest.raises(BadInput, match="cannot load classifier"):
        EduClassifier.load(path)


def test_filter_step_scores_keeps_and_counts_a_histogram(tmp_path):
    from collections import Counter

    step = EduFilter(trained_classifier(tmp_path), threshold=0.5, batch_size=3)
    texts = snippets(10)
    stats = Counter()
    kept = list(step.run(({"id": record_id(t), "text": t} for t in texts), stats))
    assert len(kept) == 5 and all(r["edu_score"] >= 0.5 and "bubble_sort" in r["text"] for r in kept)
    assert stats["dropped_low_edu_score"] == 5
    assert sum(score_histogram(stats).values()) == 10


def test_curate_cli_end_to_end(tmp_path, cli):
    data = corpus(tmp_path)
    labels, clf, kept = tmp_path / "labels.jsonl", tmp_path / "clf.pkl", tmp_path / "kept"
    done = cli("curate", "annotate", "--data", data.path, "--out", labels, "--n", "40")
    assert done.returncode == 0, done.stderr
    done = cli("curate", "train", "--labels", labels, "--out", clf, "--embedder", "hashing+features",
               "--model", "logreg", "--folds", "3")
    assert done.returncode == 0, done.stderr
    assert {"f1", "roc_auc", "spearman", "confusion"} <= set(json.loads(done.stdout))
    done = cli("curate", "filter", "--data", data.path, "--classifier", clf, "--out", kept,
               "--keep-fraction", "0.5", "--workers", "1")
    assert done.returncode == 0, done.stderr
    result = Dataset(kept)
    assert len(result) == 20 and all("edu_score" in r for r in result.records())
    summary = result.manifest["summary"]["curate.filter"]
    assert sum(summary["histogram"].values()) == 40 and summary["kept"] == 20
    again = cli("curate", "filter", "--data", data.path, "--classifier", clf, "--out", kept, "--threshold", "2")
    assert again.returncode == 2 and "threshold" in again.stderr


def test_curate_filter_on_ray_equals_local(tmp_path, ray_cluster, assert_same_output):
    from syllabus.curate.filter import filter_dataset

    data, classifier = corpus(tmp_path), trained_classifier(tmp_path)
    runs = {executor: filter_dataset(data.path, classifier, tmp_path / executor, threshold=0.5, workers=2,
                                     executor=executor) for executor in ("local", "ray")}
    assert 0 < len(runs["local"]) < len(data)
    assert_same_output(runs["local"], runs["ray"])


def test_builtin_classifier_is_what_its_metadata_says():
    from syllabus.curate.builtin import BUILTIN_DIR, classifier_path, file_sha256, metadata

    meta, path = metadata(), classifier_path("builtin")
    assert path == BUILTIN_DIR / "classifier.pkl"
    assert meta["sha256"] == file_sha256(path) and meta["bytes"] == path.stat().st_size < 5_000_000
    classifier = EduClassifier.load(path)
    assert classifier.embedder_spec == meta["embedder"] and classifier.embedder.key == meta["embedder_key"]
    assert classifier.threshold == meta["threshold"] and classifier.model_kind == meta["model"]
    assert meta["labels"]["n"] == 767 and meta["labels"]["positives"] == 180
    assert all(0 < meta["cv"][key]["mean"] <= 1 for key in ("f1", "precision", "recall", "roc_auc"))


def test_builtin_classifier_was_trained_on_todays_gold_labels():
    from syllabus.curate.builtin import file_sha256, metadata

    gold = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "edu_labels" / "train.jsonl"
    if not gold.exists():
        pytest.skip("the gold labels are not on this machine")
    assert metadata()["labels"]["sha256"] == file_sha256(gold), "labels changed: rebuild with python -m syllabus.curate.builtin"


def test_filter_with_the_builtin_classifier_keeps_the_lessons(tmp_path, cli):
    from syllabus.curate.builtin import metadata

    data = corpus(tmp_path)
    done = cli("curate", "filter", "--data", data.path, "--classifier", "builtin", "--out", tmp_path / "kept",
               "--workers", "1")
    assert done.returncode == 0, done.stderr
    kept = Dataset(tmp_path / "kept")
    assert len(kept) == 20 and all("bubble_sort" in r["text"] for r in kept.records())
    summary = kept.manifest["summary"]["curate.filter"]
    assert summary["threshold"] == metadata()["threshold"]
    assert summary["classifier_cv"]["roc_auc"] == metadata()["cv"]["roc_auc"]["mean"]

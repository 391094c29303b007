"""Curation (phi-1's first lever): judge a sample, train a classifier on embeddings, filter the corpus."""

from pathlib import Path

from syllabus.curate import features as features  # registers the "features" embedder with syllabus.embed

LABELS_FILE = "labels.jsonl"  # what curate.annotate writes in its stage dir
CLASSIFIER_FILE = "classifier.pkl"  # what curate.train writes in its stage dir


def stage_file(path: Path, name: str) -> Path:
    """A recipe input is an earlier stage's dir (holding `name`) or the file itself."""
    path = Path(path)
    return path / name if path.is_dir() else path

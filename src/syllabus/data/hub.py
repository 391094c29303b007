"""Publish a dataset dir to the Hugging Face Hub as a dataset repo (`syllabus data push DIR REPO`).

What is sent is exactly what a reader needs: README.md (the card, whose YAML names the shards),
manifest.json and the shards it lists. Resume state (hidden sidecars, .params.json) and anything
else a stage keeps in its dir (reply caches) stay local. Shards an earlier push left in the repo
and this dataset no longer has are deleted in the same commit, so the repo holds this dataset and
no stale part of another. The token and endpoint are huggingface_hub's: `HF_TOKEN` or a saved
`hf auth login`, and `HF_ENDPOINT`.
"""

from __future__ import annotations

from pathlib import Path

from syllabus.data.dataset import CARD, MANIFEST, Dataset
from syllabus.errors import BadInput


def push_files(dataset: Dataset) -> list[str]:
    """The files of a complete dataset dir that a push sends, in order."""
    if not (dataset.path / CARD).is_file():
        raise BadInput(f"no {CARD} dataset card (written by syllabus since 0.1; re-run the stage that made it)",
                       file=dataset.path)
    return [CARD, MANIFEST, *(shard.name for shard in dataset.shards)]


def push_dataset(path: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                 message: str | None = None, token: str | None = None) -> str:
    """Verify the dataset dir, create the dataset repo if needed and commit its files; returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    dataset = Dataset(path)
    files = push_files(dataset)
    dataset.verify()
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=dataset.path, repo_id=repo_id, repo_type="dataset", revision=revision,
            allow_patterns=files, delete_patterns=["shard-*"],
            commit_message=message or f"syllabus: {dataset.stage} dataset, {len(dataset):,} records")
    except HfHubHTTPError as e:
        raise BadInput(f"push to dataset repo {repo_id} failed: {str(e).splitlines()[0]}", file=dataset.path) from None
    return commit.commit_url

import json

import pytest

from syllabus.data import Dataset, DatasetWriter, record_id, write_dataset
from syllabus.errors import BadInput


def _records(n, prefix="r"):
    return [{"id": record_id(f"{prefix}{i}"), "text": f"{prefix}{i}", "n": i} for i in range(n)]


@pytest.mark.parametrize("fmt", ["jsonl.zst", "parquet"])
def test_round_trip_with_manifest(tmp_path, fmt):
    writer = DatasetWriter(tmp_path / "ds", stage="test", params={"a": 1}, format=fmt, records_per_shard=3)
    writer.write_many(_records(8))
    ds = writer.close(summary={"note": "x"})
    assert [r["n"] for r in ds.records()] == list(range(8))
    assert len(ds) == 8 and len(ds.shards) == 3
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["stage"] == "test" and manifest["params"] == {"a": 1}
    assert [s["records"] for s in manifest["shards"]] == [3, 3, 2]
    assert all(len(s["sha256"]) == 64 for s in manifest["shards"])
    ds.verify()


def test_incomplete_dataset_is_not_readable(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", stage="test", records_per_shard=2)
    writer.write_many(_records(5))  # two shards flushed, no manifest yet: as if killed
    with pytest.raises(BadInput, match="not a complete dataset"):
        Dataset(tmp_path / "ds")
    assert len(writer.done_shards()) == 2


def test_rewriting_removes_old_manifest_first(tmp_path):
    write_dataset(tmp_path / "ds", _records(3), stage="first")
    DatasetWriter(tmp_path / "ds", stage="second")  # started, never closed
    assert not Dataset.is_complete(tmp_path / "ds")


def test_verify_detects_tampered_shard(tmp_path):
    ds = write_dataset(tmp_path / "ds", _records(4), stage="test")
    shard = ds.shard_path(ds.shards[0])
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(BadInput, match="sha256 mismatch"):
        ds.verify()


def test_resume_keeps_finished_shards(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", stage="test")
    writer.write_shard("shard-00000.jsonl.zst", _records(2, "a"))
    # a new run of the same stage finds the finished shard and adds the rest
    writer = DatasetWriter(tmp_path / "ds", stage="test")
    assert set(writer.done_shards()) == {"shard-00000.jsonl.zst"}
    writer.write_shard("shard-00001.jsonl.zst", _records(3, "b"), stats={"dropped_x": 1})
    ds = writer.close()
    assert len(ds) == 5 and ds.stats == {"dropped_x": 1}


def test_reading_streams_without_loading_everything(tmp_path):
    ds = write_dataset(tmp_path / "ds", ({"id": str(i), "text": "x" * 100} for i in range(50_000)), stage="big")
    it = ds.records()
    assert next(it)["id"] == "0"  # lazily: the first record comes before the rest are decoded
    assert sum(1 for _ in it) == 49_999


def test_load_dataset_reads_the_same_records_from_jsonl_zst_and_parquet_dirs(tmp_path):
    """A dataset dir is a Hugging Face dataset repo: its card names the shards, sidecars stay hidden."""
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    records = [{**r, "edu_score": r["n"] / 45, "tags": ["a"] * (r["n"] % 3)} for r in _records(45)]
    loaded = {}
    for fmt in ("jsonl.zst", "parquet"):
        writer = DatasetWriter(tmp_path / fmt, stage="test", params={"threshold": 0.8}, format=fmt,
                               records_per_shard=20)
        writer.write_many(records)
        dataset = writer.close({"note": "kept 45"})
        names = sorted(p.name for p in dataset.path.iterdir())
        assert names == [".params.json"] + [f".shard-0000{i}.{fmt}.json" for i in range(3)] + [
            "README.md", "manifest.json"] + [f"shard-0000{i}.{fmt}" for i in range(3)]
        assert all(p.stat().st_mode & 0o044 == 0o044 for p in dataset.path.iterdir())  # readable by others
        loaded[fmt] = datasets.load_dataset(str(dataset.path), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert loaded["jsonl.zst"].to_list() == loaded["parquet"].to_list() == records


def test_dataset_card_says_what_made_the_dataset(tmp_path):
    import yaml

    from syllabus.summaries import FilterSummary

    parent = write_dataset(tmp_path / "raw", _records(5), stage="data.ingest")
    writer = DatasetWriter(tmp_path / "kept", stage="curate.filter", params={"threshold": 0.5}, parents=[parent],
                           format="parquet")
    writer.write_shard("shard-00000.parquet", _records(3), stats={"total": 5, "forwarded": 3, "dropped_low_score": 2})
    writer.write_shard("shard-00001.parquet", [], stats={"total": 2, "dropped_low_score": 2})  # nothing kept
    summary = FilterSummary(total=5, kept=3, threshold=0.5, keep_fraction=None, embedder="subtokens+features",
                            histogram={0.0: 2, 0.5: 3})
    writer.close({"curate.filter": summary.dump()})
    card = (tmp_path / "kept" / "README.md").read_text()
    _, header, body = card.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": ["shard-00000.parquet"]}]}]
    assert meta["license"] == "unknown" and meta["size_categories"] == ["n<1K"]
    assert "`curate.filter`" in body and '"threshold": 0.5' in body and str(tmp_path / "raw") in body
    assert "| dropped_low_score | 4 |" in body  # the step's counters, summed over shards
    # the stage's summary, read through its model: labelled numbers with units and meaning, drop reasons
    assert "| records scored | 5 | records | records the classifier scored |" in body
    assert "| embedder | subtokens+features |" in body and "| below threshold | 2 |" in body
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(tmp_path / "kept"), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.to_list() == _records(3)  # the empty Parquet shard is not among the data files


def test_every_writing_stage_takes_format_and_the_cli_converts(tmp_path, cli):
    from syllabus.recipe import stage_function

    writing = ("data.ingest", "curate.filter", "dedup", "decontam", "synth.textbook", "synth.exercises")
    for kind in writing:
        assert "format" in stage_function(kind)[1].model_fields, kind
    src = tmp_path / "src"
    src.mkdir()
    for i, body in enumerate(["x * 2", "[y for y in x if y]", "sorted(x, reverse=True)", "len(set(x))"]):
        (src / f"m{i}.py").write_text(f"def f{i}(x):\n    return {body}\n")
    (src / "z_copy.py").write_text("def f1(x):\n    return [y for y in x if y]\n")
    assert cli("data", "ingest", str(src), "--out", str(tmp_path / "raw"), "--format", "parquet").returncode == 0
    assert cli("dedup", "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "dedup"), "--format", "jsonl.zst",
               "--workers", "1").returncode == 0
    raw, deduped = Dataset(tmp_path / "raw"), Dataset(tmp_path / "dedup")
    assert (raw.format, deduped.format) == ("parquet", "jsonl.zst")
    assert [r["text"] for r in deduped] == [r["text"] for r in raw if r["path"] != "z_copy.py"]
    bad = cli("data", "ingest", str(src), "--out", str(tmp_path / "x"), "--format", "csv")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "format" in bad.stderr


def test_data_push_commits_card_manifest_and_shards_to_the_hub(tmp_path, cli):
    from syllabus.testing.hub_server import HubStandIn

    writer = DatasetWriter(tmp_path / "ds", stage="test", format="parquet", records_per_shard=3)
    writer.write_many(_records(5))
    writer.close()
    (tmp_path / "ds" / "llm-cache").mkdir()  # what a stage keeps beside its shards stays local
    (tmp_path / "ds" / "llm-cache" / "replies.sqlite").write_bytes(b"x")
    sent = ["README.md", "manifest.json", "shard-00000.parquet", "shard-00001.parquet"]
    with HubStandIn() as hub:
        hub.repos["me/data"] = {"shard-00002.parquet": b"stale", "notes.md": b"kept"}  # an earlier push
        result = cli("data", "push", str(tmp_path / "ds"), "me/data", HF_ENDPOINT=hub.url, HF_TOKEN="hf_test")
        assert result.returncode == 0, result.stderr
        assert sorted(hub.repos["me/data"]) == sorted(sent + ["notes.md"])
        for name in sent:
            assert hub.repos["me/data"][name] == (tmp_path / "ds" / name).read_bytes()
        assert hub.tokens == {"hf_test"} and hub.commits[-1]["summary"] == "syllabus: test dataset, 5 records"
        assert json.loads(result.stdout.strip().splitlines()[-1])["commit"].startswith(f"{hub.url}/datasets/me/data/commit/")

        (tmp_path / "ds" / "shard-00001.parquet").write_bytes(b"tampered")
        result = cli("data", "push", str(tmp_path / "ds"), "me/data", HF_ENDPOINT=hub.url, HF_TOKEN="hf_test")
        assert result.returncode == 2 and "sha256 mismatch" in result.stderr and len(hub.commits) == 1

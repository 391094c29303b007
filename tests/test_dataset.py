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

"""The step runner on local processes and on a local Ray cluster: same output, resumable, fault tolerant."""

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from syllabus.data import Dataset, DatasetWriter, write_dataset
from syllabus.scale import run_step


class KeepEven:
    name = "keep_even"

    def run(self, records, stats: Counter):
        for record in records:
            if record["n"] % 2:
                stats["dropped_odd"] += 1
                continue
            yield {**record, "half": record["n"] // 2}


class SlowOnce(KeepEven):
    """Kills its own worker process the first time it sees shard 1's first record."""

    name = "slow_once"

    def __init__(self, marker: Path):
        self.marker = marker

    def run(self, records, stats):
        for record in records:
            if record["n"] == 10 and not self.marker.exists():
                self.marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            yield record


def _source(tmp_path, n=40, per_shard=10):
    writer = DatasetWriter(tmp_path / "src", stage="test", records_per_shard=per_shard)
    writer.write_many({"id": str(i), "text": f"t{i}", "n": i} for i in range(n))
    return writer.close()


def test_local_step_counts_and_resumes(tmp_path):
    src = _source(tmp_path)
    out = run_step(KeepEven(), src, tmp_path / "out", workers=2)
    assert [r["n"] for r in out.records()] == list(range(0, 40, 2))
    assert out.stats == {"total": 40, "forwarded": 20, "dropped_odd": 20}
    # a killed run leaves finished shards: drop the manifest and one shard, re-run does only that shard
    (tmp_path / "out" / "manifest.json").unlink()
    kept = out.shard_path(out.shards[0]).stat().st_mtime_ns
    out.shard_path(out.shards[3]).unlink()
    again = run_step(KeepEven(), src, tmp_path / "out", workers=1)
    assert again.shard_path(again.shards[0]).stat().st_mtime_ns == kept
    assert [r["n"] for r in again.records()] == list(range(0, 40, 2))


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # Ray workers must import this module to unpickle the steps defined here
    here = str(Path(__file__).parent)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}})
    yield ray
    ray.shutdown()


def test_ray_output_equals_local(tmp_path, ray_cluster):
    src = _source(tmp_path)
    local = run_step(KeepEven(), src, tmp_path / "local", workers=2)
    on_ray = run_step(KeepEven(), src, tmp_path / "ray", executor="ray", workers=2)
    assert list(local.records()) == list(on_ray.records())
    assert [s.sha256 for s in local.shards] == [s.sha256 for s in on_ray.shards]


def test_ray_retries_a_killed_worker(tmp_path, ray_cluster):
    src = _source(tmp_path)
    marker = tmp_path / "killed"
    out = run_step(SlowOnce(marker), src, tmp_path / "out", executor="ray", workers=2)
    assert marker.exists()  # a worker really died mid-shard
    assert [r["n"] for r in out.records()] == list(range(40))  # and its shard was redone, once
    assert not list((tmp_path / "out").glob(".*.tmp"))

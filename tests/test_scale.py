"""The step runner on local processes and on a local Ray cluster: same output, resumable, fault tolerant."""

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from syllabus.data import DatasetWriter, write_dataset
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


def test_ray_output_equals_local(tmp_path, ray_cluster, assert_same_output):
    src = _source(tmp_path)
    local = run_step(KeepEven(), src, tmp_path / "local", workers=2)
    on_ray = run_step(KeepEven(), src, tmp_path / "ray", executor="ray", workers=2)
    assert_same_output(local, on_ray)


def test_ray_retries_a_killed_worker(tmp_path, ray_cluster):
    src = _source(tmp_path)
    marker = tmp_path / "killed"
    out = run_step(SlowOnce(marker), src, tmp_path / "out", executor="ray", workers=2)
    assert marker.exists()  # a worker really died mid-shard
    assert [r["n"] for r in out.records()] == list(range(40))  # and its shard was redone, once
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_local_pool_survives_a_killed_worker_and_the_rerun_finishes(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    src = _source(tmp_path)
    marker = tmp_path / "killed"
    with pytest.raises(BrokenProcessPool):  # no retries on the local pool: the run fails...
        run_step(SlowOnce(marker), src, tmp_path / "out", workers=2)
    assert marker.exists()
    out = run_step(SlowOnce(marker), src, tmp_path / "out", workers=2)  # ...and a re-run, on a new pool, finishes
    assert [r["n"] for r in out.records()] == list(range(40))
    assert not list((tmp_path / "out").glob(".*.tmp"))


@pytest.mark.parametrize("command", [["dedup"], ["decontam"], ["curate", "filter", "--classifier", "clf.pkl"]])
def test_cli_stages_take_the_executor_options(tmp_path, cli, command):
    data = write_dataset(tmp_path / "data", [{"id": "a", "text": "x = 1"}], stage="test").path
    done = cli(*command, "--data", data, "--out", tmp_path / "out", "--executor", "spark", "--address", "auto",
               "--workers", "1", cwd=tmp_path)
    # a usage error about the value, not "No such option": every stage has all three options
    assert done.returncode == 2 and "Invalid value for '--executor'" in done.stderr, done.stderr


class KeepOdd(KeepEven):
    def run(self, records, stats: Counter):
        yield from (record for record in records if record["n"] % 2)


def test_a_rerun_with_other_params_does_not_keep_the_old_shards(tmp_path):
    src = _source(tmp_path)
    run_step(KeepEven(), src, tmp_path / "out", params={"keep": "even"})
    (tmp_path / "out" / "manifest.json").unlink()  # killed before the manifest
    other = run_step(KeepOdd(), src, tmp_path / "out", params={"keep": "odd"})
    assert [r["n"] for r in other.records()] == list(range(1, 40, 2))

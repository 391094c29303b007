import json
import sysconfig
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from syllabus.data import Dataset, DatasetWriter, write_dataset
from syllabus.dedup import (DedupParams, SignatureStore, band_keys, dedup, exact_key, grouped_pairs, lsh_params,
                             minhash_signatures)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
DISTINCT = ["textwrap.py", "bisect.py", "colorsys.py", "fnmatch.py", "shlex.py", "heapq.py", "glob.py"]


def _files() -> list[str]:
    return [(STDLIB / name).read_text(encoding="utf-8") for name in DISTINCT]


def _near_copy(text: str) -> str:
    """A few small edits: one renamed function, one changed constant, one extra statement."""
    lines = text.splitlines()
    lines.insert(len(lines) // 2, "    _unused = 0")
    return "\n".join(lines).replace("def dedent(", "def remove_indent(", 1).replace("70", "72", 1)


def _reformatted(text: str) -> str:
    """Same tokens: different indentation of comments, blank lines, trailing spaces, added comment lines."""
    return "# copied from somewhere\n\n" + "\n".join(line + "   " for line in text.splitlines()) + "\n\n# end\n"


def _corpus(tmp_path) -> Path:
    files = _files()
    texts = files + [_reformatted(files[1]), _near_copy(files[0])]
    records = [{"id": f"r{i}", "text": t, "path": f"f{i}.py"} for i, t in enumerate(texts)]
    dataset = tmp_path / "corpus"
    writer = DatasetWriter(dataset, stage="test", records_per_shard=4)
    writer.write_many(records)
    writer.close()
    return dataset


def test_exact_key_ignores_whitespace_and_comment_lines_not_tokens():
    code = "def f(x):\n    return x + 1\n"
    assert exact_key(code) == exact_key("# header\n\ndef  f(x):   \n        return x + 1\n\n")
    assert exact_key(code) != exact_key(code.replace("1", "2"))


def test_near_copies_share_a_bucket_and_distinct_files_do_not():
    files = _files()
    signatures = minhash_signatures(files + [_near_copy(files[0])], shingle=5, num_perm=128, seed=1)
    bands, rows = lsh_params(0.8, 128)
    pairs = {tuple(p) for p in grouped_pairs(band_keys(signatures, 0, bands, rows)).tolist()}
    assert pairs == {(0, len(files))}


def test_cli_dedup_keeps_first_of_each_cluster_and_counts(tmp_path, cli):
    src = _corpus(tmp_path)
    result = cli("dedup", "--data", str(src), "--out", str(tmp_path / "out"), "--workers", "2")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["records"], summary["kept"], summary["exact_duplicates"], summary["near_duplicates"]) == (9, 7, 1, 1)
    out = Dataset(tmp_path / "out")
    assert [r["id"] for r in out.records()] == [f"r{i}" for i in range(7)]
    assert out.stats == {"total": 9, "forwarded": 7, "dropped_exact_duplicate": 1, "dropped_near_duplicate": 1}
    clusters = out.manifest["summary"]["dedup"]["example_clusters"]
    assert sorted([m["path"] for m in c] for c in clusters) == [["f0.py", "f8.py"], ["f1.py", "f7.py"]]
    assert all(c[0]["kept"] and not c[1]["kept"] for c in clusters)
    assert not (tmp_path / "out" / ".minhash").exists()


def test_params_are_recorded_and_a_rerun_gives_the_same_output(tmp_path):
    src = _corpus(tmp_path)
    params = DedupParams(threshold=0.7, shingle=3, num_perm=64)
    first = dedup(src, tmp_path / "out", params)
    assert first.manifest["params"]["shingle"] == 3 and first.manifest["summary"]["dedup"]["lsh"]["num_perm"] == 64
    again = dedup(src, tmp_path / "out", params)
    assert [s.sha256 for s in again.shards] == [s.sha256 for s in first.shards]


def test_empty_dataset_and_bad_threshold_exit_2(tmp_path, cli):
    write_dataset(tmp_path / "empty", [], stage="test")
    result = cli("dedup", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "dataset is empty" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    result = cli("dedup", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), "--threshold", "1.5")
    assert result.returncode == 2 and "threshold" in result.stderr


def _in_memory_dedup(texts: list[str], params: DedupParams) -> list[int]:
    """The kept records, computed the plain way: every signature and band key in one process."""
    parent = list(range(len(texts)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    def join(a, b):
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)

    first_of_key = {}
    for i, text in enumerate(texts):
        join(first_of_key.setdefault(exact_key(text), i), i)
    unique = sorted(first_of_key.values())
    signatures = minhash_signatures(texts, shingle=params.shingle, num_perm=params.num_perm, seed=params.seed)
    keys = band_keys(signatures[unique], 0, *lsh_params(params.threshold, params.num_perm))
    for a, b in grouped_pairs(keys):
        if (signatures[unique[a]] == signatures[unique[b]]).mean() >= params.threshold:
            join(unique[a], unique[b])
    return [i for i in range(len(texts)) if root(i) == i]


def test_partitioned_shuffle_equals_the_in_memory_computation(tmp_path):
    files = _files()
    texts = files + [_near_copy(files[0]), _reformatted(files[2]), _near_copy(_near_copy(files[0])), files[3],
                     _reformatted(_near_copy(files[0]))]
    writer = DatasetWriter(tmp_path / "src", stage="test", records_per_shard=3)
    writer.write_many({"id": f"r{i}", "text": t} for i, t in enumerate(texts))
    writer.close()
    params = DedupParams(threshold=0.7)
    expected = [f"r{i}" for i in _in_memory_dedup(texts, params)]
    assert len(expected) < len(texts) - 2  # exact and near duplicates, chained across shards
    outputs = [dedup(tmp_path / "src", tmp_path / f"p{p}", params.model_copy(update={"partitions": p}))
               for p in (1, 4, 7)]
    for out in outputs:
        assert [r["id"] for r in out.records()] == expected
        assert out.manifest["summary"]["dedup"]["example_clusters"] == \
            outputs[0].manifest["summary"]["dedup"]["example_clusters"]


def test_the_driver_does_not_hold_the_signatures(tmp_path):
    def corpus(name, n):
        writer = DatasetWriter(tmp_path / name, stage="test", records_per_shard=n // 4)
        writer.write_many({"id": str(i), "text": f"def f{i}(x):\n    return x * {i} + {i % 7}\n"} for i in range(n))
        return writer.close().path

    params = DedupParams(num_perm=512, partitions=4)
    dedup(corpus("warm", 8), tmp_path / "warm-out", params, workers=2)  # imports and worker start-up, not measured
    src = corpus("src", 4000)
    tracemalloc.start()
    try:
        dedup(src, tmp_path / "out", params, workers=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    signatures = 4000 * params.num_perm * np.dtype(np.uint32).itemsize  # 8 MB
    assert peak < signatures / 4


def test_signature_lookup_keeps_few_files_open_across_many_shards(tmp_path):
    signatures = np.arange(50 * 4, dtype=np.uint32).reshape(50, 4)
    (tmp_path / "signatures").mkdir()
    firsts = tuple(range(0, 50, 5))
    shards = tuple(f"s{i}" for i in range(len(firsts)))
    for shard, first in zip(shards, firsts):
        np.save(tmp_path / "signatures" / f"{shard}.npy", signatures[first : first + 5])
    store = SignatureStore(tmp_path, shards, firsts, max_open=3)
    open_before = len(list(Path("/proc/self/fd").iterdir()))
    for seed in range(5):
        records = np.random.default_rng(seed).integers(0, 50, size=30)
        assert (store.rows(records) == signatures[records]).all()
        assert len(list(Path("/proc/self/fd").iterdir())) - open_before <= 3


def test_a_run_killed_in_the_reduce_resumes_without_signing_again(tmp_path, monkeypatch):
    from syllabus import dedup as dedup_module

    src = _corpus(tmp_path)
    params = DedupParams(partitions=4)
    whole = [r["id"] for r in dedup(src, tmp_path / "whole", params).records()]
    signed, reduced, real_reduce, real_signatures = [], [], dedup_module.reduce_partition, dedup_module._signatures

    def reduce_then_kill(task):
        if len(reduced) == 2:
            raise KeyboardInterrupt  # the run dies after two of four partitions
        reduced.append(task.part)
        return real_reduce(task)

    monkeypatch.setattr(dedup_module, "_signatures", lambda *a: signed.append(1) or real_signatures(*a))
    monkeypatch.setattr(dedup_module, "reduce_partition", reduce_then_kill)
    with pytest.raises(KeyboardInterrupt):
        dedup(src, tmp_path / "out", params)
    shards = len(Dataset(src).shards)
    assert len(signed) == shards  # every shard signed before the kill
    recomputed = []

    def reduce_counting(task):
        recomputed.append(not (task.cache / "edges" / f"part-{task.part:05d}.npz").exists())
        return real_reduce(task)

    monkeypatch.setattr(dedup_module, "reduce_partition", reduce_counting)
    assert [r["id"] for r in dedup(src, tmp_path / "out", params).records()] == whole
    assert len(signed) == shards  # nothing signed again
    assert sum(recomputed) == 2  # only the two partitions the killed run had not reduced


def test_dedup_on_ray_equals_local(tmp_path, ray_cluster, assert_same_output):
    data = _corpus(tmp_path)
    runs = {executor: dedup(data, tmp_path / executor, workers=2, executor=executor) for executor in ("local", "ray")}
    assert len(runs["local"]) < len(Dataset(data))  # it really removed duplicates
    assert_same_output(runs["local"], runs["ray"])
    assert runs["local"].manifest["summary"] == runs["ray"].manifest["summary"]

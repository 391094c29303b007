import json
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syllabus.data import Dataset


def _tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "good.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "pkg" / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (root / "pkg" / "blob.py").write_bytes(b"\x00\x01\x02binary")
    (root / "pkg" / "empty.py").write_text("\n\n")
    (root / "pkg" / "huge.py").write_text("x = 1\n" * 50_000)
    (root / "pkg" / "notes.txt").write_text("not python")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.py").write_text("x = 1\n")
    return root


def test_ingest_directory_skips_and_counts_bad_files(tmp_path, cli):
    src = _tree(tmp_path / "src")
    result = cli("data", "ingest", str(src), "--out", str(tmp_path / "raw"), "--max-bytes", "100000")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["kept"] == 1
    assert summary["skipped_not_utf8"] == 1 and summary["skipped_binary"] == 1
    assert summary["skipped_empty"] == 1 and summary["skipped_too_large"] == 1
    (record,) = Dataset(tmp_path / "raw").records()
    assert record["path"] == "pkg/good.py" and record["repo"] == "src" and record["text"].startswith("def add")


def test_ingest_git_checkout_uses_tracked_files(tmp_path, cli):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tracked.py").write_text("print('hi')\n")
    (repo / "LICENSE").write_text("MIT License\n\nCopyright\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "tracked.py", "LICENSE"], check=True)
    (repo / "untracked.py").write_text("print('no')\n")
    assert cli("data", "ingest", str(repo), "--out", str(tmp_path / "raw")).returncode == 0
    records = list(Dataset(tmp_path / "raw").records())
    assert [r["path"] for r in records] == ["tracked.py"]
    assert records[0]["license"] == "unknown"  # a LICENSE file's text is not a declaration (see data/licenses.py)


def test_ingest_the_stack_parquet_layout(tmp_path, cli):
    table = pa.table({
        "content": ["def f():\n    return 1\n", "class A:\n    pass\n"],
        "max_stars_repo_path": ["a/f.py", "b/a.py"],
        "max_stars_repo_name": ["user/a", "user/b"],
        "max_stars_repo_licenses": [["MIT"], ["Apache-2.0", "MIT"]],
        "lang": ["Python", "Python"],
    })
    pq.write_table(table, tmp_path / "stack.parquet")
    assert cli("data", "ingest", str(tmp_path / "stack.parquet"), "--out", str(tmp_path / "raw")).returncode == 0
    records = list(Dataset(tmp_path / "raw").records())
    assert [(r["path"], r["repo"], r["license"]) for r in records] == [
        ("a/f.py", "user/a", "MIT"), ("b/a.py", "user/b", "Apache-2.0,MIT")]


def test_ingest_jsonl_with_text_column_and_bad_line(tmp_path, cli):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": "x = 1\n", "path": "x.py"}) + "\n")
    assert cli("data", "ingest", str(good), "--out", str(tmp_path / "raw")).returncode == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x = 1\n"}) + "\n{oops\n")
    result = cli("data", "ingest", str(bad), "--out", str(tmp_path / "raw2"))
    assert result.returncode == 2
    assert "bad.jsonl: line 2: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "raw2" / "manifest.json").exists()


def test_missing_source_is_bad_input(tmp_path, cli):
    result = cli("data", "ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "raw"))
    assert result.returncode == 2 and "nope: no such file or directory" in result.stderr


def test_stdlib_ingest_and_stats(tmp_path, cli):
    assert cli("data", "ingest", "stdlib", "--out", str(tmp_path / "std"), "--max-files", "200").returncode == 0
    result = cli("data", "stats", str(tmp_path / "std"))
    stats = json.loads(result.stdout)
    assert stats["records"] == 200 and stats["languages"] == {"python": 200}
    assert stats["approx_tokens"] > 10_000
    assert cli("data", "verify", str(tmp_path / "std")).returncode == 0
    assert {r["license"] for r in Dataset(tmp_path / "std")} == {"PSF-2.0"}  # not LICENSE.txt's first line
    assert Dataset(tmp_path / "std").manifest["licenses"] == ["PSF-2.0"]
    assert "license: other\nlicense_name: psf-2.0\n" in (tmp_path / "std" / "README.md").read_text()


def _dist(site, name, files, metadata):
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {name}\nVersion: 1.0\n{metadata}")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    for f in files:
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        (site / f).write_text(f"# {f}\nx = 1\n")


def test_licenses_are_spdx_identifiers_packages_declare(tmp_path, cli):
    site = tmp_path / "site"
    _dist(site, "alpha", ["alpha/__init__.py"], "License-Expression: MIT OR Apache-2.0\nLicense: whatever\n")
    _dist(site, "beta", ["beta/core.py"], "License: BSD-3-Clause\n")
    _dist(site, "gamma", ["gamma.py"], "Classifier: License :: OSI Approved :: Apache Software License\n"
                                       "Classifier: Programming Language :: Python\n")
    _dist(site, "delta", ["delta/a.py"], "License: Copyright 2001 Somebody\n"
                                         "Classifier: License :: OSI Approved :: BSD License\n")  # no SPDX id
    (site / "stray.py").write_text("y = 2\n")  # in no distribution's RECORD
    (site / "LICENSE").write_text("A. HISTORY OF THE SOFTWARE\n")
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "mod.py").write_text("z = 3\n")
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nlicense = "GPL-3.0-or-later"\n')
    assert cli("data", "ingest", str(site), str(project), "--out", str(tmp_path / "raw")).returncode == 0
    dataset = Dataset(tmp_path / "raw")
    assert {r["path"]: r["license"] for r in dataset} == {
        "alpha/__init__.py": "MIT OR Apache-2.0", "beta/core.py": "BSD-3-Clause", "gamma.py": "Apache-2.0",
        "delta/a.py": "unknown", "stray.py": "unknown", "pkg/mod.py": "GPL-3.0-or-later"}
    assert dataset.manifest["licenses"] == ["Apache-2.0", "BSD-3-Clause", "GPL-3.0-or-later", "MIT OR Apache-2.0",
                                            "unknown"]
    header = (tmp_path / "raw" / "README.md").read_text().split("---\n")[1]
    assert "- gpl-3.0\n- other\n- unknown\n" in header and "- apache-2.0\n- bsd-3-clause\n" in header


def _forest(root):
    """Two source trees and a JSONL file, with files that are skipped in between."""
    for tree in ("a", "b"):
        (root / tree / "pkg").mkdir(parents=True)
        for i in range(9):
            (root / tree / "pkg" / f"m{i}.py").write_text(f"def {tree}{i}():\n    return {i}\n")
        (root / tree / "pkg" / "blob.py").write_bytes(b"\x00binary")
    rows = [{"text": f"x = {i}\n", "path": f"t{i}.py"} for i in range(5)] + [{"text": "  "}]
    (root / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [str(root / "a"), str(root / "rows.jsonl"), str(root / "b")]


def _ingested(dataset):
    return list(dataset.records()), [(s.name, s.sha256) for s in dataset.shards], dataset.manifest["summary"]


def test_ingest_output_is_the_same_on_any_executor_and_worker_count(tmp_path, cli, ray_cluster):
    from syllabus.ingest import IngestParams, ingest

    sources = _forest(tmp_path / "src")
    for max_files in (None, 13):  # 13 ends inside the fourth unit (the JSONL file)
        params = IngestParams(sources=sources, records_per_shard=4, max_files=max_files)
        one = _ingested(ingest(params, tmp_path / f"one-{max_files}"))
        paths = [f"pkg/m{i}.py" for i in range(9)] + [f"t{i}.py" for i in range(5)] + [f"pkg/m{i}.py" for i in range(9)]
        assert [r["path"] for r in one[0]] == paths[:max_files]  # in source order, across units
        assert len(one[1]) == (7 if max_files is None else 4)  # units: 3 per tree, 1 JSONL
        assert one[2]["data.ingest"]["skipped_binary"] == (2 if max_files is None else 1)
        for executor in ("local", "ray"):
            out = tmp_path / f"{executor}-{max_files}"
            assert _ingested(ingest(params, out, workers=2, executor=executor)) == one, executor
    args = ["data", "ingest", *sources, "--out", tmp_path / "cli", "--records-per-shard", "4", "--workers", "2"]
    assert cli(*args).returncode == 0
    assert _ingested(Dataset(tmp_path / "cli"))[:2] == _ingested(Dataset(tmp_path / "one-None"))[:2]


def test_a_killed_ingest_resumes_from_its_finished_units(tmp_path, monkeypatch):
    from syllabus import ingest as ingest_module

    sources = _forest(tmp_path / "src")
    params = ingest_module.IngestParams(sources=sources, records_per_shard=4)
    whole = _ingested(ingest_module.ingest(params, tmp_path / "whole"))
    read, real_unit = [], ingest_module.ingest_unit

    def unit_then_kill(task):
        if len(read) == 3:
            raise KeyboardInterrupt  # the run dies after three units
        read.append(task.shard)
        return real_unit(task)

    monkeypatch.setattr(ingest_module, "ingest_unit", unit_then_kill)
    with pytest.raises(KeyboardInterrupt):
        ingest_module.ingest(params, tmp_path / "out")
    assert not Dataset.is_complete(tmp_path / "out")
    killed, read[:] = list(read), []
    monkeypatch.setattr(ingest_module, "ingest_unit", lambda task: read.append(task.shard) or real_unit(task))
    assert _ingested(ingest_module.ingest(params, tmp_path / "out")) == whole
    assert not set(read) & set(killed) and len(read) == len(whole[1]) - 3  # units 1-3 not read again

    other = params.model_copy(update={"sources": sources[:2]})  # other params: nothing is kept from before
    assert _ingested(ingest_module.ingest(other, tmp_path / "out")) == \
        _ingested(ingest_module.ingest(other, tmp_path / "fresh"))


def test_ingest_keeps_files_holding_an_excluded_snippet_out(tmp_path):
    from syllabus.ingest import IngestParams, ingest

    src = tmp_path / "src"
    src.mkdir()
    lesson = "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n"
    (src / "with_lesson.py").write_text("import math\n\n" + lesson + "\nprint(gcd(4, 6))\n")
    (src / "other.py").write_text("def add(a, b):\n    return a + b\n")
    (src / "same_lines_apart.py").write_text("    return a\nx = 1\n")  # the anchor line alone is not the snippet
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"text": lesson, "score": 4}) + "\n")
    data = ingest(IngestParams(sources=[str(src)], exclude=[labels]), tmp_path / "raw")
    assert sorted(r["path"] for r in data.records()) == ["other.py", "same_lines_apart.py"]
    assert data.manifest["summary"]["data.ingest"]["skipped_excluded"] == 1


def test_ingest_exclude_file_must_exist(tmp_path, cli):
    result = cli("run", "edu-embedder", "--out", str(tmp_path / "run"), cwd=tmp_path)  # ../shared is not there
    assert result.returncode == 2 and "exclude" in result.stderr and "Traceback" not in result.stderr

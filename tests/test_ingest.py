import json
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq

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
    assert records[0]["license"] == "MIT License"


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

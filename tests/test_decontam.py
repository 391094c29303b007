import json
import sysconfig
from pathlib import Path

import pytest

from syllabus.benchmarks import load_benchmark
from syllabus.data import Dataset, write_dataset
from syllabus.decontam import DecontamParams, Task, code_units, decontaminate

STDLIB = Path(sysconfig.get_paths()["stdlib"])
CLEAN = ["textwrap.py", "bisect.py", "colorsys.py", "fnmatch.py", "heapq.py"]


def _tasks() -> list[Task]:
    """The first 40 HumanEval tasks: enough neighbours for HumanEval/0, fast to index."""
    return [Task("humaneval", p.task_id, p.prompt + p.canonical_solution) for p in load_benchmark("humaneval")[:40]]


def _planted() -> dict[str, str]:
    p = load_benchmark("humaneval")[0]
    program = p.prompt + p.canonical_solution
    docstring = p.prompt.split('"""')[1]
    return {
        "verbatim": "import os\n\n" + program + "\n\nprint(has_close_elements([1.0, 2.0], 0.5))\n",
        "renamed": (
            "def any_pair_near(values, limit):\n"
            '    """Tell whether two entries of values differ by less than limit."""\n'
            "    for i, a in enumerate(values):\n"
            "        for j, b in enumerate(values):\n"
            "            if i != j:\n"
            "                gap = abs(a - b)\n"
            "                if gap < limit:\n"
            "                    return True\n"
            "    return False\n"
        ),
        "reformatted": program.replace("    ", "  ").replace("abs(elem - elem2)", "abs( elem-elem2 )  # distance")
        .replace("if idx != idx2:", "if idx != idx2 :\n") + "\n",
        "paraphrased": program.replace(
            docstring, " Return True when some pair of values in the list lies nearer than the given threshold.\n    "),
    }


def _dataset(tmp_path) -> Path:
    records = [{"id": f"clean-{name}", "text": (STDLIB / name).read_text(encoding="utf-8"), "path": name}
               for name in CLEAN]
    records += [{"id": kind, "text": text, "path": f"{kind}.py"} for kind, text in _planted().items()]
    write_dataset(tmp_path / "data", records, stage="test")
    return tmp_path / "data"


def _methods_by_record(report: dict) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for entry in report["tasks"].values():
        for match in entry["matches"]:
            found.setdefault(match["id"], {}).update(match["methods"])
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("decontam")
    params = DecontamParams(embedder="minilm", embed_cutoff=0.85, tau=0.8)  # paraphrase needs a semantic model
    return decontaminate(_dataset(tmp_path), params=params, tasks=_tasks(), report_dir=tmp_path / "report",
                         prune_out=tmp_path / "pruned", split_out=tmp_path / "split"), tmp_path


def test_each_method_finds_the_contamination_it_is_designed_for(report):
    found = _methods_by_record(report[0])
    assert "ngram" in found["verbatim"] and "ngram" in found["reformatted"]
    assert found["renamed"]["ast"] == 1.0 and found["reformatted"]["ast"] == 1.0
    assert "ngram" not in found["renamed"]
    assert found["paraphrased"]["embedding"] >= 0.85


def test_clean_records_are_not_flagged_and_are_kept(report):
    report, tmp_path = report
    assert not any(rid.startswith("clean-") for rid in _methods_by_record(report))
    assert report["flagged_records"] == 4 and report["flagged_fraction"] == 4 / 9
    pruned = Dataset(tmp_path / "pruned")
    assert sorted(r["id"] for r in pruned.records()) == sorted(f"clean-{n}" for n in CLEAN)
    assert pruned.stats["dropped_contaminated"] == 4


def test_report_split_and_sweep(report):
    report, tmp_path = report
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    entry = saved["tasks"]["humaneval:HumanEval/0"]
    assert entry["similar"] and {m["id"] for m in entry["matches"]} == set(_planted())
    split = json.loads((tmp_path / "split" / "humaneval.json").read_text())
    assert "HumanEval/0" in split["similar"] and len(split["similar"]) + len(split["non_similar"]) == 40
    assert [row["tau"] for row in saved["tau_sweep"]] == [0.95, 0.9, 0.85, 0.8]
    assert saved["tau_sweep"][0]["ast_records"] >= 3  # verbatim, renamed and reformatted score 1.0
    assert set(saved["seconds"]) >= {"wall", "ngram", "ast", "embedding"}


def test_ast_shape_ignores_names_literals_and_docstrings_but_not_structure():
    a = code_units('def f(x):\n    """doc"""\n    return [y * 2 for y in x if y > 0]\n')[0].shape
    b = code_units("def g(items):\n    return [v * 7 for v in items if v > 1]\n")[0].shape
    c = code_units("def g(items):\n    return [v * 7 for v in items]\n")[0].shape
    assert a == b and a != c


def test_cli_decontam_and_bad_input(tmp_path, cli):
    data = _dataset(tmp_path)
    result = cli("decontam", "--data", str(data), "--benchmark", "humaneval", "--out", str(tmp_path / "r"),
                 "--prune", str(tmp_path / "pruned"), "--split", str(tmp_path / "split"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["tasks"]["humaneval:HumanEval/0"]["similar"]
    assert (tmp_path / "split" / "humaneval.json").exists() and len(Dataset(tmp_path / "pruned")) <= 6

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no prompt here"}\n')
    result = cli("decontam", "--data", str(data), "--benchmark", str(bad), "--out", str(tmp_path / "r2"))
    assert result.returncode == 2 and str(bad) in result.stderr and result.stderr.strip().count("\n") == 0

    write_dataset(tmp_path / "empty", [], stage="test")
    result = cli("decontam", "--data", str(tmp_path / "empty"), "--benchmark", "humaneval", "--out", str(tmp_path / "r3"))
    assert result.returncode == 2 and "dataset is empty" in result.stderr


def test_recipe_stages_dedup_then_decontam(tmp_path):
    from syllabus.recipe import load_and_run

    _dataset(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: t\nstages:\n"
        "  - {name: unique, uses: dedup, inputs: {data: data}}\n"
        "  - {name: clean, uses: decontam, inputs: {data: unique},"
        " params: {benchmarks: [humaneval], embed_cutoff: 0.7}}\n"
    )
    run_dir, summaries = load_and_run(recipe, tmp_path / "run")
    # the reformatted copy is a near duplicate of the verbatim one; the other 3 planted records are pruned
    assert summaries["unique"]["kept"] == 8 and summaries["clean"]["flagged_records"] == 3
    assert sorted(r["id"] for r in Dataset(run_dir / "clean").records()) == sorted(f"clean-{n}" for n in CLEAN)
    assert json.loads((run_dir / "clean" / "report.json").read_text())["records"] == 8
    assert (run_dir / "clean" / "split" / "humaneval.json").exists()

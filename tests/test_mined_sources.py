import textwrap

from syllabus.benchmarks import MBPP_TEST_SPLIT
from syllabus.ingest import IngestParams, ingest
from syllabus.synth.mined import (HumanTextbookParams, MinedExercisesParams, human_textbook, mbpp_exercises,
                                  mine_exercises)

MODULE = textwrap.dedent('''
    import math

    LIMIT = 10


    def hypotenuse(a, b):
        """The long side of a right triangle.

        >>> hypotenuse(3, 4)
        5.0
        """
        return math.sqrt(a * a + b * b)


    def wrong_example(n):
        """Twice n.

        >>> wrong_example(2)
        5
        """
        return 2 * n


    def uses_a_global(n):
        """Clamp n.

        >>> uses_a_global(12)
        10
        """
        return min(n, LIMIT)


    def no_self_call(n):
        """>>> 1 + 1
        2
        """
        return n
    ''')


def _package(tmp_path, monkeypatch):
    package = tmp_path / "lib" / "geometry_lessons"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    return package


def test_doctest_exercises_are_kept_only_when_the_original_passes_in_the_sandbox(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch)
    dataset = mine_exercises(MinedExercisesParams(packages=["geometry_lessons"], mbpp=False), tmp_path / "ex")
    records = list(dataset.records())
    assert [r["prompt"].split("def ")[1].split("(")[0] for r in records] == ["hypotenuse"]
    record = records[0]
    assert record["prompt"].startswith("import math\n") and record["prompt"].rstrip().endswith('"""')
    assert record["completion"].strip() == "return math.sqrt(a * a + b * b)"
    assert "hypotenuse" in record["tests"] and record["source"] == "mined.doctest"
    assert record["id"]  # decontam prunes by id: a record without one could be flagged but never dropped
    summary = dataset.manifest["summary"]["synth.mined_exercises"]
    # the wrong example fails; the module global is not part of the exercise, so that one fails too
    assert summary["doctest_candidates"] == 3 and summary["dropped_tests_failed"] == 2


def test_mbpp_exercises_are_the_non_test_splits():
    ids = [int(problem.task_id.removeprefix("Mbpp/")) for problem, _ in mbpp_exercises()]
    assert len(ids) == 474 and not set(ids) & set(MBPP_TEST_SPLIT)
    assert min(ids) == 1 and max(ids) == 974


def test_human_textbook_has_pydoc_topics_and_docstring_lessons(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch)
    dataset = human_textbook(HumanTextbookParams(packages=["geometry_lessons"], min_chars=10), tmp_path / "tb")
    sources = {r["source"] for r in dataset.records()}
    assert sources == {"pydoc.topics", "docstring.lesson"}
    lesson = next(r for r in dataset.records() if r.get("name") == "hypotenuse")
    assert lesson["text"].startswith("## hypotenuse\n\nThe long side") and "```python\ndef hypotenuse" in lesson["text"]
    capped = human_textbook(HumanTextbookParams(packages=["geometry_lessons"], max_chars=5000), tmp_path / "cap")
    assert capped.manifest["summary"]["synth.human_textbook"]["dropped_over_max_chars"] > 0


def test_ingest_reads_installed_packages_and_excludes_held_out_paths(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch)
    (package / "held_out").mkdir()
    (package / "held_out" / "secret.py").write_text("x = 1\n")
    dataset = ingest(IngestParams(sources=["package:geometry_lessons"], exclude_paths=["held_out/*"]), tmp_path / "raw")
    assert [r["path"] for r in dataset.records()] == ["__init__.py"]
    assert len(ingest(IngestParams(sources=["package:geometry_lessons"]), tmp_path / "all")) == 2

"""Prompt spaces that scale: distinct prompts before repeats, a stage that needs too many repeats stops
before sending, and three ways to grow the space (axes, corpus seeds, a teacher-expanded vocabulary);
diversity numbers measured on the output."""

import pytest

from syllabus.data.dataset import record_id, write_dataset
from syllabus.errors import BadInput
from syllabus.synth.diversity import diversity_summary
from syllabus.synth.exercises import ExercisesParams, load_names, synth_exercises
from syllabus.synth.expand import ExpandParams, expand
from syllabus.synth.prompts import PromptSpace
from syllabus.synth.textbook import TextbookParams, load_topics, synth_textbook

SMALL_TOPICS = """topics:
  Strings: [slicing, f-strings]
audiences: [beginners]
styles: [tutorial]
"""


@pytest.fixture
def small_topics(tmp_path):
    path = tmp_path / "topics.yaml"
    path.write_text(SMALL_TOPICS)
    return path


def test_a_prompt_space_sends_every_distinct_prompt_once_before_any_repeat():
    space = PromptSpace({"a": [{"a": i} for i in range(3)], "b": [{"b": i} for i in range(4)]})
    jobs = space.jobs("{a}-{b}", 12, seed=1, max_repeats=1, stage="s")
    assert len({job.prompt for job in jobs}) == 12 and {job.sample for job in jobs} == {0}
    again = space.jobs("{a}-{b}", 18, seed=1, max_repeats=2, stage="s")
    assert [j.prompt for j in again[:12]] == [j.prompt for j in jobs] and {j.sample for j in again[12:]} == {1}
    # a trillion combinations are walked without being listed
    huge = PromptSpace({name: [{name: i} for i in range(10_000)] for name in "xyz"})
    assert huge.size == 10**12
    assert len({job.prompt for job in huge.jobs("{x} {y} {z}", 2000, seed=0, max_repeats=1, stage="s")}) == 2000


def test_a_stage_whose_n_needs_too_many_repeats_stops_before_sending(tmp_path, cli):
    names = len(load_names())
    with pytest.raises(BadInput, match=rf"{names} distinct prompts .* x max_repeats 2; grow it"):
        synth_exercises(ExercisesParams(teacher="http://127.0.0.1:9/v1", n=names * 2 + 1), tmp_path / "ex")
    assert not (tmp_path / "ex").exists()
    result = cli("synth", "textbook", "--out", str(tmp_path / "tb"), "--n", "100000")
    assert result.returncode == 2 and "exceeds the prompt space" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_constraint_axes_multiply_the_space_and_reach_the_prompts_and_records(tmp_path, small_topics):
    params = TextbookParams(topics=str(small_topics), n=6, max_repeats=1, axes={"level": ["easy", "medium", "hard"]})
    dataset = synth_textbook(params, tmp_path / "tb")
    summary = dataset.manifest["summary"]["synth.textbook"]
    assert summary["prompts"]["distinct"] == 6 and summary["prompts"]["axes"]["level"] == 3
    records = list(dataset.records())
    assert {(r["topic"], r["level"]) for r in records} <= {(t, lv) for t in ("Strings > slicing", "Strings > f-strings")
                                                         for lv in ("easy", "medium", "hard")}
    assert all(r["provenance"]["sample"] == 0 for r in records)
    with pytest.raises(BadInput, match="6 distinct prompts"):
        synth_textbook(params.model_copy(update={"n": 7}), tmp_path / "tb2")


def test_corpus_seeded_prompts_carry_one_snippet_each(tmp_path, small_topics):
    code = [f"def add_{i}(x):\n    return x + {i}\n" for i in range(10)]
    write_dataset(tmp_path / "corpus", [{"id": record_id(t), "text": t} for t in code], stage="test")
    seen = []

    from syllabus.llm import register_offline
    from syllabus.synth.offline import write_textbook

    register_offline("seen-textbook", lambda prompt, sample: seen.append(prompt) or write_textbook(prompt, sample))
    params = TextbookParams(teacher="offline:seen-textbook", topics=str(small_topics), n=20, max_repeats=1)
    dataset = synth_textbook(params, tmp_path / "tb", seeds=tmp_path / "corpus")
    assert dataset.manifest["summary"]["synth.textbook"]["prompts"]["distinct"] == 2 * 10
    assert len(set(seen)) == 20 and all("Inspiration:" in p and "def add_" in p for p in seen)
    assert {r["seed_id"] for r in dataset.records()} <= {record_id(t) for t in code}


def test_the_teacher_expands_the_vocabulary_into_editable_files_once(tmp_path):
    params = ExpandParams(target_topics=200, target_names=600)
    summary = expand(params, tmp_path / "vocab")
    topics, audiences, _ = load_topics(tmp_path / "vocab" / "topics.yaml")
    names = load_names(tmp_path / "vocab" / "function_names.txt")
    assert summary.topics == len(topics) >= 200 and summary.topics_before < 100 and len(names) == 600
    assert len({name for _, name in names}) == 600 and len(audiences) == 5
    assert summary.llm.sent > 0
    again = expand(params, tmp_path / "vocab")  # a re-run (or a resumed one) pays for nothing twice
    assert again.llm.sent == 0 and again.llm.cached == summary.llm.sent and again.topics == summary.topics
    # the user's edit is what the synthesis stage reads
    (tmp_path / "vocab" / "function_names.txt").write_text("lists: rotate_left\nlists: chunk_list\n")
    result = synth_exercises(ExercisesParams(names=str(tmp_path / "vocab" / "function_names.txt"), n=4,
                                             batch_size=4), tmp_path / "ex")
    assert {r["function_name"] for r in result.records()} <= {"rotate_left", "chunk_list"}


def test_the_phi_1_recipes_dry_run_shows_distinct_prompts_at_least_n(cli, tmp_path):
    for recipe in ("phi-1", "phi-1-small"):
        result = cli("run", recipe, "--dry-run", "--out", str(tmp_path / "run"), COLUMNS="400")
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr  # the plan table goes to the console
        assert "750,000 distinct for n 600,000 (≥ n)" in output
        assert "1,440,000 distinct for n 1,000,000 (≥ n)" in output


def test_diversity_numbers_tell_repeated_output_from_varied_output():
    same = ["def f(x):\n    return x + 1\n# the same every time\n" * 3] * 40
    varied = [f"def f_{i}(items_{i}):\n    return sorted(items_{i}, key=lambda v: v % {i + 2})[{i}:]\n" + "# " +
              " ".join(f"w{(i * 7 + j) % 97}" for j in range(20)) for i in range(40)]
    low, high = diversity_summary(same), diversity_summary(varied)
    assert low["near_duplicate_rate"] > 0.9 > high["near_duplicate_rate"]
    assert low["mean_pairwise_cosine"] > 0.99 > high["mean_pairwise_cosine"]
    assert low["distinct_openings"] < high["distinct_openings"] and list(low["top_openings"].values()) == [40]
    assert low["distinct_4gram_ratio"] < high["distinct_4gram_ratio"]

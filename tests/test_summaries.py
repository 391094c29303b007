import pytest

from syllabus.config import validate
from syllabus.errors import BadInput
from syllabus.summaries import SUMMARIES, DedupSummary, Summary, read_summary


def all_models(base=Summary):
    for model in base.__subclasses__():
        yield model
        yield from all_models(model)


@pytest.mark.parametrize("model", list(all_models()), ids=lambda m: m.__name__)
def test_every_field_says_what_it_is(model):
    for name, info in model.model_fields.items():
        assert info.description and info.json_schema_extra["label"], (model.__name__, name)
        assert "unit" in info.json_schema_extra, (model.__name__, name)


def test_every_stage_kind_has_its_own_model():
    assert all(model.kind == kind for kind, model in SUMMARIES.items())
    assert len(set(SUMMARIES.values())) == len(SUMMARIES)


def test_a_renamed_or_unknown_field_is_one_line_naming_file_and_field():
    good = DedupSummary(records=3, kept=2, exact_duplicates=1, near_duplicates=0, clusters=1, lsh={}).dump()
    assert read_summary("dedup", good, file="s.json") == validate(DedupSummary, good, file=None)
    renamed = dict(good)
    renamed["exact_removed"] = renamed.pop("exact_duplicates")
    with pytest.raises(BadInput, match=r"^s.json: summary.exact_duplicates: Field required$"):
        read_summary("dedup", renamed, file="s.json")
    with pytest.raises(BadInput, match="no summary model for stage kind 'nope'"):
        read_summary("nope", good, file="s.json")


def test_facts_carry_label_unit_and_meaning_and_skip_tables():
    summary = DedupSummary(records=3, kept=2, exact_duplicates=1, near_duplicates=0, clusters=1, lsh={"bands": 4})
    facts = {f.name: f for f in summary.facts()}
    assert set(facts) == {"records", "kept", "exact_duplicates", "near_duplicates", "clusters"}
    assert (facts["exact_duplicates"].label, facts["exact_duplicates"].value, facts["exact_duplicates"].unit) == \
        ("exact duplicates", 1, "records")
    assert summary.dropped() == {"exact duplicate": 1}
    assert [f.name for f in summary.facts("lsh")] == ["lsh"]  # asked for by name, a table is a fact too

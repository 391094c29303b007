import numpy as np
import pytest

from syllabus.embed import FEATURE_NAMES, code_features, embed_cached, get_embedder
from syllabus.errors import BadInput

DOCUMENTED = '''def gcd(a: int, b: int) -> int:
    """Greatest common divisor by Euclid's algorithm.

    >>> gcd(12, 18)
    6
    """
    while b:
        a, b = b, a % b  # the remainder shrinks every step
    return a
'''
GLUE = "from .registry import register\nfrom .backends import Backend\nregister('x', Backend, settings.X)\n"
GENERATED = "# This file is auto-generated. DO NOT EDIT.\nTABLE = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"


def test_features_separate_textbook_code_from_glue_and_generated_code():
    good, glue, generated = code_features(DOCUMENTED), code_features(GLUE), code_features(GENERATED)
    assert good["documented_defs_frac"] == 1.0 and good["doctest_lines"] > 0
    assert good["defined_used_frac"] > glue["defined_used_frac"]
    assert glue["import_frac"] > good["import_frac"]
    assert generated["generated_marker"] == 1.0 and good["generated_marker"] == 0.0
    assert code_features("def broken(:\n")["parses"] == 0.0


@pytest.mark.parametrize("spec", ["hashing", "features", "hashing+features"])
def test_embedders_return_float32_rows_of_their_dim(spec):
    embedder = get_embedder(spec)
    vectors = embedder.embed([DOCUMENTED, GLUE, GENERATED])
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    if spec == "features":
        assert embedder.dim == len(FEATURE_NAMES)
    if spec == "hashing+features":
        assert embedder.name == "hashing+features" and "+" in embedder.version


def test_embed_cached_reuses_vectors_by_record_id(tmp_path):
    embedder = get_embedder("features")
    calls = []
    original = embedder.embed
    embedder.embed = lambda texts: calls.append(len(texts)) or original(texts)
    first = embed_cached(embedder, [DOCUMENTED, GLUE], tmp_path)
    again = embed_cached(embedder, [GLUE, DOCUMENTED, GENERATED], tmp_path)
    assert calls == [2, 1]  # only the new text was embedded the second time
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[1], first[0])


def test_unknown_embedder_and_missing_model_dir_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="unknown embedder"):
        get_embedder("word2vec")
    with pytest.raises(BadInput, match="no config.json"):
        get_embedder(f"hf:{tmp_path}")
    with pytest.raises(BadInput, match="no config.json"):
        get_embedder(f"lm:{tmp_path}")


@pytest.mark.slow
def test_minilm_embeds_offline():
    embedder = get_embedder("minilm")
    vectors = embedder.embed([DOCUMENTED, GLUE])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_lm_embedder_mean_pools_a_syllabus_model(tiny_model_dir):
    embedder = get_embedder(f"lm:{tiny_model_dir}")
    batch = embedder.embed([DOCUMENTED, GLUE, ""])
    assert batch.shape == (3, 32) and np.isfinite(batch).all()
    # padding must not leak into the pooled vector: a text alone embeds the same as in a batch
    np.testing.assert_allclose(embedder.embed([GLUE])[0], batch[1], atol=1e-5)

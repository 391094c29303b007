import numpy as np
import pytest

import syllabus.curate.features  # noqa: F401 -- registers the "features" embedder these tests combine
from syllabus.codetext import code_prose, identifier_subtokens
from syllabus.embed import Embedder, ProseEmbedder, embed_cached, get_embedder
from syllabus.errors import BadInput


def test_subtokens_split_names_whatever_their_style():
    assert identifier_subtokens("getUserName = get_user_name(HTTPServer, utf8)") == [
        "get", "user", "name", "get", "user", "name", "http", "server", "utf", "8"]
    embedder = get_embedder("subtokens")
    camel, snake, other = embedder.embed(["totalCount = countItems()", "total_count = count_items()", "x = y()"])
    assert camel @ snake == pytest.approx(1.0) and camel @ other < 0.5


@pytest.mark.parametrize("spec", ["hashing", "subtokens", "features", "hashing+features"])
def test_embedders_return_float32_rows_of_their_dim(spec, snippets):
    embedder = get_embedder(spec)
    vectors = embedder.embed([snippets.documented, snippets.glue, snippets.generated])
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    if spec == "hashing+features":
        assert embedder.name == "hashing+features" and "+" in embedder.version


def test_embed_cached_reuses_vectors_by_record_id(tmp_path, snippets):
    embedder = get_embedder("features")
    calls = []
    original = embedder.embed
    embedder.embed = lambda texts: calls.append(len(texts)) or original(texts)
    first = embed_cached(embedder, [snippets.documented, snippets.glue], tmp_path)
    again = embed_cached(embedder, [snippets.glue, snippets.documented, snippets.generated], tmp_path)
    assert calls == [2, 1]  # only the new text was embedded the second time
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[1], first[0])


def test_embed_cached_stores_concatenated_embedders_per_part(tmp_path, snippets):
    features = get_embedder("features")
    embed_cached(features, [snippets.documented, snippets.glue], tmp_path)
    both = get_embedder("hashing+features")
    both.parts[1].embed = lambda texts: pytest.fail("features were cached")
    vectors = embed_cached(both, [snippets.glue, snippets.documented], tmp_path)
    np.testing.assert_array_equal(vectors[:, -features.dim:], features.embed([snippets.glue, snippets.documented]))


def test_unknown_embedder_and_missing_model_dir_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="unknown embedder"):
        get_embedder("word2vec")
    with pytest.raises(BadInput, match="no config.json"):
        get_embedder(f"hf:{tmp_path}")
    with pytest.raises(BadInput, match="no config.json"):
        get_embedder(f"lm:{tmp_path}")


@pytest.mark.slow
def test_minilm_embeds_offline(snippets):
    embedder = get_embedder("minilm")
    vectors = embedder.embed([snippets.documented, snippets.glue])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_prose_embedder_reads_only_docstrings_and_comments(snippets):
    assert code_prose(snippets.documented).splitlines() == ["the remainder shrinks every step",
                                                            "Greatest common divisor by Euclid's algorithm.", "",
                                                            ">>> gcd(12, 18)", "6"]
    assert code_prose(snippets.glue) == ""
    assert code_prose("def f(:\n    # still a comment\n") == "still a comment"  # no parse: comments still count

    class Recorder(Embedder):
        name, version, dim = "rec", "1", 1

        def embed(self, texts):
            self.seen = list(texts)
            return np.ones((len(texts), 1), dtype=np.float32)

    prose = ProseEmbedder(Recorder())
    lesson = 'def halve(n):\n    """Half of n, rounded down."""\n    return n // 2  # floor division\n'
    assert prose.embed([lesson]).shape == (1, 1)
    assert prose.encoder.seen == ["floor division\nHalf of n, rounded down."]
    assert prose.key == "rec-docs@1-prose1" != Recorder().key  # its own cache, never the code vectors


@pytest.mark.slow
def test_minilm_docs_is_minilm_over_the_prose(snippets):
    docs, minilm = get_embedder("minilm-docs"), get_embedder("minilm")
    np.testing.assert_allclose(docs.embed([snippets.documented]), minilm.embed([code_prose(snippets.documented)]),
                               atol=1e-5)


def test_lm_embedder_mean_pools_a_syllabus_model(tiny_model_dir, snippets):
    embedder = get_embedder(f"lm:{tiny_model_dir}")
    batch = embedder.embed([snippets.documented, snippets.glue, ""])
    assert batch.shape == (3, 32) and np.isfinite(batch).all()
    # padding must not leak into the pooled vector: a text alone embeds the same as in a batch
    np.testing.assert_allclose(embedder.embed([snippets.glue])[0], batch[1], atol=1e-5)


def test_lm_embedder_pools_chosen_layers(tiny_model_dir, snippets):
    last = get_embedder(f"lm:{tiny_model_dir}")
    chosen = get_embedder(f"lm:{tiny_model_dir}@0,1,{last.n_layer}")
    vectors = chosen.embed([snippets.documented, snippets.glue])
    assert chosen.dim == 3 * last.dim and chosen.name.endswith(f"@0,1,{last.n_layer}")
    # each layer is pooled and normalised apart; the last one is what the plain spec gives
    np.testing.assert_allclose(np.linalg.norm(vectors.reshape(2, 3, -1), axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[:, -last.dim:], last.embed([snippets.documented, snippets.glue]), atol=1e-5)
    assert not np.allclose(vectors[:, :last.dim], vectors[:, last.dim:2 * last.dim])


@pytest.mark.parametrize("spec", ["lm:{dir}@x", "lm:{dir}@9"])
def test_lm_embedder_rejects_bad_layers(tiny_model_dir, spec):
    with pytest.raises(BadInput, match="layers"):
        get_embedder(spec.format(dir=tiny_model_dir))


def test_edu_embedder_recipe_in_small_trains_an_lm_the_embedder_reads(tmp_path, snippets):
    """The packaged recipe, with a two-file corpus and two steps: every stage and the lm: embedder."""
    import yaml

    from syllabus.config import load_recipe
    from syllabus.recipe import packaged_recipe, run_recipe

    body = yaml.safe_load(packaged_recipe("edu-embedder").read_text())
    src = tmp_path / "src"
    src.mkdir()
    for i, text in enumerate([snippets.documented, snippets.glue] * 20):
        (src / f"m{i}.py").write_text(f"# file {i}\n{text}")
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "# file 0\\n", "score": 0}\n')
    stages = {stage["name"]: stage for stage in body["stages"]}
    stages["raw"]["params"].update(sources=[str(src)], max_files=None, exclude=[str(labels)])
    stages["tokenizer"]["params"]["vocab_size"] = 320
    stages["packed"]["params"].update(seq_len=32, val_fraction=0.1)
    stages["lm"]["params"]["overrides"].update(max_steps=2, warmup_steps=0, eval_every=2, checkpoint_every=2,
                                               model_overrides={"vocab_size": 320, "n_layer": 2, "n_embd": 32,
                                                                "n_head": 2, "n_inner": 64, "rotary_dim": 8})
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(body))
    summaries = run_recipe(load_recipe(tmp_path / "recipe.yaml"), tmp_path / "run")
    assert summaries["raw"]["skipped_excluded"] == 1 and summaries["lm"]["steps"] == 2
    vectors = get_embedder(f"lm:{tmp_path / 'run' / 'lm'}@1,2").embed([snippets.documented])
    assert vectors.shape == (1, 64) and np.isfinite(vectors).all()

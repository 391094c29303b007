import json

import pytest
import tokenizers

from syllabus.errors import BadInput
from syllabus.config import StageContext
from syllabus.tokenizer import EOT, load_tokenizer, train_tokenizer
from syllabus.train.pack import TokenizerParams, tokenizer_stage

CODE = [
    "def add(a, b):\n    return a + b\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n",
    "for i in range(10):\n\tif i % 2 == 0:\n\t\tprint(i)  # even\n",
    "import math\n\ndef area(r):\n    \"\"\"Area of a circle of radius r.\"\"\"\n    return math.pi * r ** 2\n",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_dataset):
    root = tmp_path_factory.mktemp("tok")
    make_dataset(root / "a", CODE * 20)
    make_dataset(root / "b", ["x = 'héllo wörld 日本'\n"] * 10)
    return train_tokenizer([root / "a", root / "b"], vocab_size=400, out_dir=root / "out"), root


def test_trained_tokenizer_round_trips_code(trained):
    tok, root = trained
    assert (root / "out" / "tokenizer.json").is_file()
    assert tok.vocab_size <= 400 and tok.eot_id == tok.tokenizer.token_to_id(EOT)
    for text in CODE + ["x = 'héllo wörld 日本'\n", "🙂 unseen \x00 bytes\r\n", "a" + EOT + "b"]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("a" + EOT)[-1] == tok.eot_id
    assert tok.encode_batch(CODE[:2]) == [tok.encode(CODE[0]), tok.encode(CODE[1])]
    # learned merges: common code is much shorter than its bytes; indentation runs are single tokens
    assert len(tok.encode(CODE[1])) < len(CODE[1].encode()) / 2
    assert len(tok.encode(" " * 8)) == 1 and len(tok.encode("\t\t")) == 1


def test_load_from_file_dir_and_vocab_merges(trained, tmp_path):
    tok, root = trained
    for source in (root / "out", root / "out" / "tokenizer.json"):
        assert load_tokenizer(source).encode(CODE[1]) == tok.encode(CODE[1])
    # a GPT-2 style dir (vocab.json + merges.txt), as older saved tokenizers come
    model = json.loads(tok.tokenizer.to_str())["model"]
    (tmp_path / "vocab.json").write_text(json.dumps(model["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    gpt2 = load_tokenizer(tmp_path)
    assert gpt2.decode(gpt2.encode(CODE[0])) == CODE[0]
    assert gpt2.eot_id == tok.eot_id


def test_bad_tokenizers_are_bad_input(trained, tmp_path):
    tok, root = trained
    with pytest.raises(BadInput, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "t.json").write_text("{nope")
    with pytest.raises(BadInput, match="not a tokenizers JSON file"):
        load_tokenizer(tmp_path / "t.json")
    bare = tokenizers.Tokenizer(tokenizers.models.BPE())
    bare.save(str(tmp_path / "bare.json"))
    with pytest.raises(BadInput, match=r"no <\|endoftext\|> token"):
        load_tokenizer(tmp_path / "bare.json")
    tok.check_fits(400)
    with pytest.raises(BadInput, match=f"has {tok.vocab_size} tokens, more than the model's vocab of 300"):
        tok.check_fits(300)
    with pytest.raises(BadInput, match="too small"):
        train_tokenizer([root / "a"], vocab_size=100, out_dir=tmp_path / "x")


def test_tokenizer_cli(tmp_path, cli, make_dataset):
    make_dataset(tmp_path / "data", CODE * 5)
    r = cli("tokenizer", "train", str(tmp_path / "data"), "--out", str(tmp_path / "tok"), "--vocab-size", "350")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["vocab_size"] <= 350
    r = cli("tokenizer", "encode", "--tokenizer", str(tmp_path / "tok"), CODE[0])
    ids = json.loads(r.stdout)
    r = cli("tokenizer", "decode", "--tokenizer", str(tmp_path / "tok"), *map(str, ids))
    assert r.stdout == CODE[0]
    r = cli("tokenizer", "decode", "--tokenizer", str(tmp_path / "tok"), "99999")
    assert r.returncode == 2 and "outside the vocab" in r.stderr and "Traceback" not in r.stderr
    r = cli("tokenizer", "train", str(tmp_path / "nope"), "--out", str(tmp_path / "t2"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_recipe_stage(trained, tmp_path):
    _, root = trained
    summary = tokenizer_stage(TokenizerParams(vocab_size=400), {"data": root / "a"}, tmp_path / "tok",
                              StageContext(run_dir=tmp_path, stage="tokenizer"))
    assert summary.vocab_size == load_tokenizer(tmp_path / "tok").vocab_size <= 400

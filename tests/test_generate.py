import pytest
import torch

from syllabus.codetext import truncate_at_stop
from syllabus.errors import BadInput
from syllabus.model.generate import generate, generate_ids, sample_next

pytestmark = pytest.mark.usefixtures("one_thread")


def test_greedy_matches_transformers_generate_with_left_padding(random_model):
    model = random_model("odd", seed=3)
    hf = model.to_hf()
    eot = 7
    torch.manual_seed(1)
    prompts = [torch.randint(10, 300, (n,)).tolist() for n in (5, 12, 1, 9)]
    ours = generate_ids(model, prompts, max_new_tokens=20, eot_id=eot)

    longest = max(map(len, prompts))
    ids = torch.tensor([[0] * (longest - len(p)) + p for p in prompts])
    mask = (torch.arange(longest)[None] >= torch.tensor([longest - len(p) for p in prompts])[:, None]).long()
    out = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=20, eos_token_id=eot, pad_token_id=0)
    for row, mine in zip(out[:, longest:].tolist(), ours):
        expected = row[: row.index(eot)] if eot in row else row
        assert mine == expected
    assert sum(len(o) for o in ours) > 20  # the test compares real continuations


def test_generation_respects_eot_stop_and_context(random_model):
    model = random_model()
    first = generate_ids(model, [[1, 2, 3]], max_new_tokens=10)[0]
    assert len(first) == 10
    eot = first[4]
    stopped = generate_ids(model, [[1, 2, 3]], max_new_tokens=10, eot_id=eot)[0]
    assert stopped == first[: first.index(eot)]
    assert generate_ids(model, [[1, 2, 3]], max_new_tokens=10, on_token=lambda i, ids: len(ids) == 2)[0] == first[:2]
    block = model.config.block_size
    assert len(generate_ids(model, [[1] * (block - 3)], max_new_tokens=10)[0]) == 3
    with pytest.raises(BadInput, match="does not fit the model's context"):
        generate_ids(model, [[1] * block], max_new_tokens=1)


def test_sampling_top_p_and_seed(random_model):
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    drawn = {sample_next(logits, 1.0, 0.7, g).item() for _ in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.7: the tail is cut
    assert {sample_next(logits, 1.0, 0.1, g).item() for _ in range(50)} == {0}
    assert sample_next(logits, 0.0, 1.0).item() == 0
    model = random_model()
    a = generate_ids(model, [[1, 2]] * 3, 12, temperature=1.0, generator=torch.Generator().manual_seed(5))
    b = generate_ids(model, [[1, 2]] * 3, 12, temperature=1.0, generator=torch.Generator().manual_seed(5))
    assert a == b and len({tuple(x) for x in a}) > 1


class CharTokenizer:
    """One token per character; enough to test the text-level API without training a BPE."""

    eot_id = 0
    vocab_size = 512

    def __init__(self):
        self.decoded_lengths = []

    def encode_batch(self, texts):
        return [[ord(c) % 500 + 1 for c in t] for t in texts]

    def decode(self, ids):
        self.decoded_lengths.append(len(ids))
        return "".join(chr(96 + i % 26) for i in ids)

    def check_fits(self, model_vocab_size, model=None):
        assert self.vocab_size <= model_vocab_size


def test_text_generate_cuts_at_stop_strings_and_keeps_order(random_model):
    model = random_model()
    tok = CharTokenizer()
    prompts = ["a longer prompt here", "hi", "mid size"]
    free = generate(model, tok, prompts, max_new_tokens=24, batch_size=2)
    assert all(len(t) == 24 for t in free)
    assert free[1] == generate(model, tok, ["hi"], max_new_tokens=24)[0]  # batching and padding change nothing
    stop = free[1][5:7]
    cut = generate(model, tok, prompts, max_new_tokens=24, stop=[stop, "zzzzz"])
    assert cut[1] == free[1][: free[1].index(stop)]
    for full, short in zip(free, cut):
        assert stop not in short and full.startswith(short)
    late_stop = next(free[1][k : k + 2] for k in range(20, 0, -1) if free[1].index(free[1][k : k + 2]) == k)
    tok.decoded_lengths.clear()
    late_cut = generate(model, tok, ["hi"], max_new_tokens=24, stop=[late_stop])[0]
    *checks, final = tok.decoded_lengths
    assert final == len(late_cut) + 2 > 8  # generation ended at the stop...
    assert max(checks) <= 8  # ...and each check decoded only the tail: 4 tokens a character at most
    assert truncate_at_stop("abc\ndef", ["\nd", "c"]) == ("ab", True)

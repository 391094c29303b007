import numpy as np

from syllabus.codetext import (
    MIX,
    band_hashes,
    code_tokens,
    code_words,
    normalize_code,
    shingle_signatures,
    strip_comments,
    window_hashes,
)


def test_tokens_are_words_and_single_punctuation_whitespace_never():
    assert code_tokens("x[i] = f(a_1,  2)\n") == ["x", "[", "i", "]", "=", "f", "(", "a_1", ",", "2", ")"]
    assert code_words("x[i] = f(a_1,  2)\n") == ["x", "i", "f", "a_1", "2"]
    assert code_words(strip_comments("total = 0  # the running sum\n# a whole line\n")) == ["total", "0"]


def test_normalize_code_ignores_indentation_blank_and_comment_lines_only():
    a = "def f(x):\n    # doubles\n    return x  *  2\n\n"
    b = "def f(x):\n  return x * 2"
    assert normalize_code(a) == normalize_code(b) == "def f(x):\nreturn x * 2"
    assert normalize_code("return x * 3") != normalize_code("return x * 2")


def test_window_hashes_roll_a_polynomial_over_each_run():
    values = np.array([3, 5, 7], dtype=np.uint64)
    mix = int(MIX)
    assert window_hashes(values, 2).tolist() == [(3 * mix + 5) % 2**64, (5 * mix + 7) % 2**64]
    assert len(window_hashes(values, 4)) == 0  # shorter than a window: none
    assert window_hashes(values, 4, whole_if_shorter=True).tolist() == window_hashes(values, 3).tolist()
    signatures = np.arange(12, dtype=np.uint32).reshape(2, 6)
    bands = band_hashes(signatures, bands=3, rows=2)
    assert bands.shape == (2, 3) and bands[1, 2] == window_hashes(signatures[1, 4:6], 2)[0]


def test_shingle_signatures_agree_in_proportion_to_shared_shingles():
    base = code_tokens("def add(a, b):\n    total = a + b\n    return total\n" * 3)
    near = base[:-1] + ["result"]
    other = code_tokens("class Stack:\n    def push(self, item):\n        self.items.append(item)\n")
    sig = shingle_signatures([base, base, near, other], shingle=3, num_perm=128, seed=1)
    assert sig.shape == (4, 128) and sig.dtype == np.uint32
    assert (sig[0] == sig[1]).all()
    assert (sig[0] == sig[2]).mean() > 0.7 > 0.2 > (sig[0] == sig[3]).mean()

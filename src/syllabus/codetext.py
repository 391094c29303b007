"""Python source as text: tokens, normalisation, shingle hashes, MinHash signatures, AST shapes, prose.

One definition of each, shared by dedup, decontam, embed, curation and synth's diversity checks:

- tokens: a word (identifier, keyword, number: `\\w+`) or one punctuation character; whitespace
  never makes a token. `code_words` keeps the words only (punctuation runs like `[1, 2, 3]` are
  shared by unrelated code); `identifier_subtokens` splits names whatever their style.
- normalisation: `normalize_code` (lines stripped, blank and whole-line `#` lines dropped, runs of
  spaces collapsed) and `strip_comments`.
- window hashes: a 64-bit polynomial hash of every run of n consecutive token hashes (shingles);
  `band_hashes` is the same hash over each LSH band of a signature.
- MinHash: `shingle_signatures` signs the shingle sets with rensa (see dedup's docstring for why rensa).
- AST shapes: `code_units` gives each function with the set of hashes of its subtrees, identifiers,
  literals, docstrings, annotations and load/store context abstracted away.
- prose: `code_prose`, the docstrings and comments of a snippet.
- completions: `truncate_at_stop` cuts generated code at the first stop string.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

WORD = r"\w+"
CODE_TOKEN = re.compile(WORD + r"|[^\w\s]")
_WORDS = re.compile(WORD)
# Parts of identifiers and words: lower-case runs with an optional capital, acronyms, numbers.
SUBTOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_COMMENT = re.compile(r"#[^\n]*")
_SPACES = re.compile(r"[ \t]+")  # \f and \v end a line for str.splitlines: never inside one
_FENCED = re.compile(r"```(?:python|py)?[^\n]*\n(.*?)```", re.DOTALL)
MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the rolling window and band hashes
# Structural features and prose read the head of long files: bounded cost per record, and the gold
# labels (what the curation classifier learns from) are snippets of a few thousand characters.
MAX_FEATURE_CHARS = 20_000


# ── tokens and normalisation ────────────────────────────────────────────────────────────────


def code_tokens(text: str) -> list[str]:
    """Words and single punctuation characters, as written."""
    return CODE_TOKEN.findall(text)


def code_words(text: str) -> list[str]:
    """The words only: identifiers, keywords, numbers."""
    return _WORDS.findall(text)


def identifier_subtokens(text: str) -> list[str]:
    """Words of names and prose alike: naming style stops splitting the vocabulary."""
    return [part.lower() for part in SUBTOKEN.findall(text)]


def normalize_code(text: str) -> str:
    """Every line stripped, blank lines and whole-line `#` comments dropped, runs of spaces collapsed.

    Trailing `# ...` comments are kept because a `#` may sit inside a string, and telling them
    apart needs a tokenizer, which costs more than a whole dedup pass.
    """
    lines = (line.strip() for line in _SPACES.sub(" ", text).splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def strip_comments(text: str) -> str:
    """Every `#` to the end of its line removed (a `#` inside a string too: cheap, and rare in code)."""
    return _COMMENT.sub("", text)


# ── shingle hashes and MinHash ──────────────────────────────────────────────────────────────


def window_hashes(values: np.ndarray, n: int, *, whole_if_shorter: bool = False) -> np.ndarray:
    """u64 polynomial hash of every run of n consecutive values.

    A sequence shorter than n has no window, or (whole_if_shorter) one: all of it.
    """
    values = np.asarray(values).astype(np.uint64, copy=False)
    if len(values) < n:
        if not whole_if_shorter or len(values) == 0:
            return np.zeros(0, dtype=np.uint64)
        n = len(values)
    count = len(values) - n + 1
    out = values[:count].copy()
    for j in range(1, n):
        out = out * MIX + values[j : j + count]
    return out


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """[records, bands] u64: the window hash of each band's `rows` signature values."""
    sig = signatures[:, : bands * rows].astype(np.uint64).reshape(len(signatures), bands, rows)
    out = sig[:, :, 0].copy()
    for j in range(1, rows):
        out = out * MIX + sig[:, :, j]
    return out


def shingle_signatures(token_lists: Sequence[Sequence[str]], *, shingle: int, num_perm: int,
                       seed: int) -> np.ndarray:
    """MinHash signatures [n, num_perm] uint32 of each token list's set of `shingle`-token windows
    (the whole list when it is shorter)."""
    import rensa

    per_doc = [window_hashes(h, shingle, whole_if_shorter=True)
               for h in rensa.RMinHash.hash_token_sets([list(t) for t in token_lists])]
    offsets = np.zeros(len(per_doc) + 1, dtype=np.uint64)
    np.cumsum([len(s) for s in per_doc], out=offsets[1:])
    flat = np.concatenate(per_doc) if per_doc else np.zeros(0, dtype=np.uint64)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, num_perm, seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(len(per_doc), num_perm)


# ── AST shapes ──────────────────────────────────────────────────────────────────────────────


@dataclass
class CodeUnit:
    source: str
    shape: frozenset[int] | None  # subtree hashes; None when the unit is not a function


def code_units(text: str) -> list[CodeUnit]:
    """The functions of a Python text (or of its fenced code blocks); else the whole text as one unit."""
    units = []
    for tree, lines in _parseable_blocks(text):
        functions: list[tuple[ast.AST, set[int]]] = []
        try:
            _shape_hash(tree, [], functions)
        except RecursionError:
            continue
        for node, shape in functions:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            units.append(CodeUnit("\n".join(lines[start : node.end_lineno]), frozenset(shape)))
    return units or [CodeUnit(text, None)]


def _parseable_blocks(text: str) -> Iterator[tuple[ast.AST, list[str]]]:
    for source in [text] if "```" not in text else _FENCED.findall(text):
        try:
            yield ast.parse(source), source.splitlines()
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


def _children(node: ast.AST) -> list[ast.AST]:
    # type annotations are names too: `numbers: List[float]` and `values` have the same shape
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [node.args, *node.decorator_list, *_strip_docstring(node.body)]
    if isinstance(node, ast.arg):
        return []
    out = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            out += [v for v in value if isinstance(v, ast.AST)]
        elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
            out.append(value)
    return out


def _shape_hash(node: ast.AST, open_functions: list[set[int]], done: list[tuple[ast.AST, set[int]]]) -> int:
    """Hash of node's shape (node types only); adds every internal node's hash to each enclosing function's set."""
    is_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    if is_function:
        open_functions.append(set())
    children = _children(node)
    h = hash((type(node).__name__, *(_shape_hash(c, open_functions, done) for c in children)))
    if children:
        for shape in open_functions:
            shape.add(h)
    if is_function:
        done.append((node, open_functions.pop()))
    return h


# ── completions ─────────────────────────────────────────────────────────────────────────────


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


# ── prose ───────────────────────────────────────────────────────────────────────────────────


def code_prose(text: str) -> str:
    """The docstrings and comments of a snippet, one per line: what it says in words."""
    text = text[:MAX_FEATURE_CHARS]
    try:
        comments = [tok.string.lstrip("#").strip() for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                    if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):  # unbalanced brackets, bad indentation: read # lines instead
        comments = [line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip().startswith("#")]
    try:
        nodes = [n for n in ast.walk(ast.parse(text))
                 if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        docstrings = [ast.get_docstring(n) or "" for n in nodes]
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        docstrings = []
    return "\n".join(part for part in comments + docstrings if part)

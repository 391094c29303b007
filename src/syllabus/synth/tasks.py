"""The task library of the offline template teacher: small Python functions it knows how to write.

Each `Task` is a function name, a topic, a signature, a one-sentence docstring and a body; random
arguments for it come from `ARGUMENTS` by parameter name. Families (count_vowels, sum_of_even_numbers,
compute_squares, ...) are generated from tables; the rest are written out. The shipped vocabulary
`function_names.txt` lists these names, so every name in it has a task; a real teacher can be given
any names at all.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    topic: str
    params: str  # "numbers: list[int], k: int"
    returns: str
    doc: str
    body: str  # unindented
    imports: str = ""

    @property
    def arg_names(self) -> list[str]:
        return [arg.arg for arg in ast.parse(f"def f({self.params}): pass").body[0].args.args]


WORDS = ("apple banana cherry dog elephant forest garden house island jungle kitten lemon mountain "
         "notebook orange pencil queen river sunset tiger umbrella violin window yellow zebra data code "
         "python loop list value index string number level radar noon stats moon").split()


def _text(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(0, 7)):
        word = rng.choice(WORDS)
        roll = rng.random()
        word = word.capitalize() if roll < 0.3 else word.upper() if roll < 0.4 else word
        if rng.random() < 0.15:
            word += str(rng.randint(0, 99))
        if rng.random() < 0.15:
            word += rng.choice(".,;:!?-")
        words.append(word)
    return " ".join(words)


def _sorted_ints(rng: random.Random) -> list[int]:
    return sorted(rng.randint(-10, 40) for _ in range(rng.randint(0, 7)))


def _ints(rng: random.Random) -> list[int]:
    return [rng.randint(-20, 60) for _ in range(rng.randint(0, 8))]


def _anagram_pair(rng: random.Random) -> tuple[str, str]:
    first = rng.choice(WORDS)
    letters = list(first)
    rng.shuffle(letters)
    return first, "".join(letters) if rng.random() < 0.6 else rng.choice(WORDS)


ARGUMENTS: dict[str, Callable[[random.Random], object]] = {
    "numbers": _ints,
    "sorted_numbers": _sorted_ints,
    "left": _sorted_ints,
    "right": _sorted_ints,
    "target": lambda rng: rng.randint(-10, 60),
    "text": _text,
    "identifier": lambda rng: "_".join(rng.sample(WORDS, rng.randint(1, 3))),
    "camel": lambda rng: "".join(w.capitalize() if i else w for i, w in enumerate(rng.sample(WORDS, rng.randint(1, 3)))),
    "value": lambda rng: rng.randint(1, 500),
    "x": lambda rng: rng.randint(1, 120),
    "y": lambda rng: rng.randint(1, 120),
    "n": lambda rng: rng.randint(0, 15),
    "year": lambda rng: rng.choice([1900, 2000, 2024, 2023]) if rng.random() < 0.3 else rng.randint(1800, 2100),
    "score": lambda rng: rng.randint(0, 100),
    "number": lambda rng: rng.randint(-5, 5),
    "k": lambda rng: rng.randint(1, 4),
    "words": lambda rng: [rng.choice(WORDS) for _ in range(rng.randint(0, 6))],
    "counts": lambda rng: {w: rng.randint(0, 9) for w in rng.sample(WORDS, rng.randint(0, 4))},
    "more_counts": lambda rng: {w: rng.randint(0, 9) for w in rng.sample(WORDS, rng.randint(0, 4))},
    "matrix": lambda rng: [[rng.randint(-9, 9) for _ in range(c)] for c in [rng.randint(1, 4)] for _ in range(rng.randint(1, 3))],
    "brackets": lambda rng: "".join(rng.choice("()[]{}") for _ in range(rng.randint(0, 8))) if rng.random() < 0.5
    else rng.choice(["()", "([]){}", "{[()()]}", "(()", "([)]", ""]),
    "base": lambda rng: rng.randint(-4, 4),
    "exponent": lambda rng: rng.randint(0, 6),
    "rows": lambda rng: rng.randint(1, 6),
    "cols": lambda rng: rng.randint(1, 6),
}


def sample_args(task: Task, rng: random.Random) -> tuple:
    names = task.arg_names
    if names == ["first", "second"]:
        return _anagram_pair(rng)
    args = {name: ARGUMENTS[name](rng) for name in names}
    pool = args.get("numbers") or args.get("sorted_numbers")
    if "target" in args and pool and rng.random() < 0.7:  # make hits as likely as misses
        args["target"] = rng.choice(pool) if task.topic == "searching" else sum(rng.sample(pool, min(2, len(pool))))
    return tuple(args.values())


# ── generated families ───────────────────────────────────────────────────────────────────────

# plural noun -> (predicate on `ch`, what it means)
CHAR_CLASSES = {
    "vowels": ('ch in "aeiouAEIOU"', "vowels"),
    "consonants": ('ch.isalpha() and ch.lower() not in "aeiou"', "consonants"),
    "digits": ("ch.isdigit()", "digits"),
    "uppercase_letters": ("ch.isupper()", "uppercase letters"),
    "lowercase_letters": ("ch.islower()", "lowercase letters"),
    "letters": ("ch.isalpha()", "letters"),
    "spaces": ('ch == " "', "spaces"),
    "punctuation": ("ch in string.punctuation", "punctuation marks"),
    "alphanumerics": ("ch.isalnum()", "letters or digits"),
}

# plural noun -> (predicate on `n`, what it means)
NUMBER_CLASSES = {
    "even_numbers": ("n % 2 == 0", "even numbers"),
    "odd_numbers": ("n % 2 == 1", "odd numbers"),
    "positive_numbers": ("n > 0", "positive numbers"),
    "negative_numbers": ("n < 0", "negative numbers"),
    "nonzero_numbers": ("n != 0", "non-zero numbers"),
    "multiples_of_3": ("n % 3 == 0", "multiples of 3"),
    "multiples_of_4": ("n % 4 == 0", "multiples of 4"),
    "multiples_of_5": ("n % 5 == 0", "multiples of 5"),
    "multiples_of_7": ("n % 7 == 0", "multiples of 7"),
    "single_digit_numbers": ("-10 < n < 10", "single-digit numbers"),
    "two_digit_numbers": ("10 <= abs(n) <= 99", "two-digit numbers"),
    "numbers_above_10": ("n > 10", "numbers greater than 10"),
    "perfect_squares": ("n >= 0 and math.isqrt(n) ** 2 == n", "perfect squares"),
}

# plural noun -> (expression in `n`, what each element becomes, result element type)
NUMBER_MAPS = {
    "squares": ("n * n", "its square", "int"),
    "cubes": ("n ** 3", "its cube", "int"),
    "doubles": ("2 * n", "twice its value", "int"),
    "halves": ("n // 2", "half of it, rounded down", "int"),
    "negations": ("-n", "its negation", "int"),
    "absolute_values": ("abs(n)", "its absolute value", "int"),
    "last_digits": ("abs(n) % 10", "its last digit", "int"),
    "digit_sums": ("sum(int(d) for d in str(abs(n)))", "the sum of its digits", "int"),
    "successors": ("n + 1", "the next integer", "int"),
    "parities": ('"even" if n % 2 == 0 else "odd"', '"even" or "odd"', "str"),
}


def _char_tasks() -> list[Task]:
    tasks = []
    for noun, (pred, desc) in CHAR_CLASSES.items():
        imports = "import string" if "string." in pred else ""
        tasks += [
            Task(f"count_{noun}", "strings", "text: str", "int", f"Return how many characters of `text` are {desc}.",
                 f"return sum(1 for ch in text if {pred})", imports),
            Task(f"remove_{noun}", "strings", "text: str", "str", f"Return `text` without its {desc}.",
                 f'return "".join(ch for ch in text if not ({pred}))', imports),
            Task(f"keep_only_{noun}", "comprehensions", "text: str", "str",
                 f"Return only the {desc} of `text`, in order.", f'return "".join(ch for ch in text if {pred})', imports),
            Task(f"contains_{noun}", "conditionals", "text: str", "bool",
                 f"Return True if `text` contains any {desc}.", f"return any({pred} for ch in text)", imports),
            Task(f"index_of_first_{noun}", "loops", "text: str", "int",
                 f"Return the index of the first of the {desc} in `text`, or -1 if there is none.",
                 f"for i, ch in enumerate(text):\n    if {pred}:\n        return i\nreturn -1", imports),
        ]
    return tasks


def _number_tasks() -> list[Task]:
    tasks = []
    for noun, (pred, desc) in NUMBER_CLASSES.items():
        imports = "import math" if "math." in pred else ""
        p = "numbers: list[int]"
        tasks += [
            Task(f"sum_of_{noun}", "lists", p, "int", f"Return the sum of the {desc} in `numbers`.",
                 f"return sum(n for n in numbers if {pred})", imports),
            Task(f"count_{noun}", "lists", p, "int", f"Return how many of `numbers` are {desc}.",
                 f"return sum(1 for n in numbers if {pred})", imports),
            Task(f"keep_{noun}", "comprehensions", p, "list[int]", f"Return the {desc} of `numbers`, in order.",
                 f"return [n for n in numbers if {pred}]", imports),
            Task(f"remove_{noun}", "comprehensions", p, "list[int]",
                 f"Return `numbers` without its {desc}, keeping the order.", f"return [n for n in numbers if not ({pred})]",
                 imports),
            Task(f"largest_of_{noun}", "lists", p, "int | None",
                 f"Return the largest of the {desc} in `numbers`, or None if there are none.",
                 f"candidates = [n for n in numbers if {pred}]\nreturn max(candidates) if candidates else None", imports),
            Task(f"smallest_of_{noun}", "lists", p, "int | None",
                 f"Return the smallest of the {desc} in `numbers`, or None if there are none.",
                 f"candidates = [n for n in numbers if {pred}]\nreturn min(candidates) if candidates else None", imports),
            Task(f"has_only_{noun}", "conditionals", p, "bool",
                 f"Return True if every element of `numbers` is one of the {desc} (True for an empty list).",
                 f"return all({pred} for n in numbers)", imports),
            Task(f"product_of_{noun}", "loops", p, "int",
                 f"Return the product of the {desc} in `numbers` (1 if there are none).",
                 f"result = 1\nfor n in numbers:\n    if {pred}:\n        result *= n\nreturn result", imports),
        ]
    return tasks


def _map_tasks() -> list[Task]:
    tasks = []
    for noun, (expr, desc, kind) in NUMBER_MAPS.items():
        tasks.append(Task(f"compute_{noun}", "comprehensions", "numbers: list[int]", f"list[{kind}]",
                          f"Return a list where each number of `numbers` is replaced by {desc}.",
                          f"return [{expr} for n in numbers]"))
        if kind == "int":
            tasks.append(Task(f"sum_of_{noun}", "loops", "numbers: list[int]", "int",
                              f"Return the total obtained by replacing each number of `numbers` by {desc} and adding them up.",
                              f"total = 0\nfor n in numbers:\n    total += {expr}\nreturn total"))
    return tasks


# ── written out ──────────────────────────────────────────────────────────────────────────────

_WRITTEN: list[tuple] = [
    # (name, topic, params, returns, doc, body[, imports])
    ("reverse_string", "strings", "text: str", "str", "Return `text` reversed.", "return text[::-1]"),
    ("is_palindrome", "strings", "text: str", "bool",
     "Return True if `text` reads the same backwards, ignoring case, spaces and punctuation.",
     "letters = [ch.lower() for ch in text if ch.isalnum()]\nreturn letters == letters[::-1]"),
    ("count_words", "strings", "text: str", "int", "Return the number of whitespace-separated words in `text`.",
     "return len(text.split())"),
    ("longest_word", "strings", "text: str", "str",
     "Return the longest word of `text` (the first one on ties, '' if there are no words).",
     'words = text.split()\nreturn max(words, key=len) if words else ""'),
    ("shortest_word", "strings", "text: str", "str",
     "Return the shortest word of `text` (the first one on ties, '' if there are no words).",
     'words = text.split()\nreturn min(words, key=len) if words else ""'),
    ("reverse_words", "strings", "text: str", "str", "Return the words of `text` in reverse order, joined by single spaces.",
     'return " ".join(reversed(text.split()))'),
    ("capitalize_words", "strings", "text: str", "str", "Return `text` with every word capitalized, joined by single spaces.",
     'return " ".join(word.capitalize() for word in text.split())'),
    ("acronym", "strings", "text: str", "str", "Return the upper-cased first letters of the words of `text`.",
     'return "".join(word[0].upper() for word in text.split())'),
    ("snake_to_camel", "strings", "identifier: str", "str", "Convert a snake_case `identifier` to camelCase.",
     'head, *rest = identifier.split("_")\nreturn head + "".join(part.capitalize() for part in rest)'),
    ("camel_to_snake", "strings", "camel: str", "str", "Convert a camelCase name to snake_case.",
     'return "".join("_" + ch.lower() if ch.isupper() else ch for ch in camel).lstrip("_")'),
    ("run_length_encode", "strings", "text: str", "str",
     "Encode `text` as runs: each character followed by how many times it repeats in a row ('aab' -> 'a2b1').",
     'encoded = []\ni = 0\nwhile i < len(text):\n    j = i\n    while j < len(text) and text[j] == text[i]:\n'
     '        j += 1\n    encoded.append(f"{text[i]}{j - i}")\n    i = j\nreturn "".join(encoded)'),
    ("remove_duplicate_characters", "sets and tuples", "text: str", "str",
     "Return `text` keeping only the first occurrence of each character.",
     'seen = set()\nkept = []\nfor ch in text:\n    if ch not in seen:\n        seen.add(ch)\n        kept.append(ch)\n'
     'return "".join(kept)'),
    ("caesar_shift", "strings", "text: str, k: int", "str",
     "Shift every letter of `text` by `k` places in the alphabet, keeping case; other characters stay.",
     "shifted = []\nfor ch in text:\n    if ch.isascii() and ch.isalpha():\n        base = ord('A') if ch.isupper() else ord('a')\n"
     "        ch = chr((ord(ch) - base + k) % 26 + base)\n    shifted.append(ch)\nreturn ''.join(shifted)"),
    ("is_anagram", "strings", "first: str, second: str", "bool",
     "Return True if `first` and `second` use exactly the same letters, ignoring case.",
     "return sorted(first.lower()) == sorted(second.lower())"),
    ("character_frequencies", "dictionaries", "text: str", "dict[str, int]",
     "Return a dictionary mapping each character of `text` to how often it occurs.",
     "counts = {}\nfor ch in text:\n    counts[ch] = counts.get(ch, 0) + 1\nreturn counts"),
    ("most_common_character", "collections", "text: str", "str",
     "Return the most frequent character of `text` (the earliest on ties, '' for empty text).",
     'return Counter(text).most_common(1)[0][0] if text else ""', "from collections import Counter"),
    ("word_frequencies", "collections", "text: str", "dict[str, int]",
     "Return a dictionary mapping each lower-cased word of `text` to its number of occurrences.",
     "return dict(Counter(text.lower().split()))", "from collections import Counter"),
    ("group_words_by_length", "dictionaries", "words: list[str]", "dict[int, list[str]]",
     "Group `words` by their length, keeping their order within each group.",
     "groups = {}\nfor word in words:\n    groups.setdefault(len(word), []).append(word)\nreturn groups"),
    ("invert_counts", "hash maps", "counts: dict[str, int]", "dict[int, list[str]]",
     "Map each count in `counts` to the sorted list of keys that have it.",
     "inverted = {}\nfor key, count in counts.items():\n    inverted.setdefault(count, []).append(key)\n"
     "return {count: sorted(keys) for count, keys in inverted.items()}"),
    ("key_with_largest_value", "dictionaries", "counts: dict[str, int]", "str | None",
     "Return the key of `counts` with the largest value (the first on ties), or None if it is empty.",
     "return max(counts, key=counts.get) if counts else None"),
    ("merge_counts", "hash maps", "counts: dict[str, int], more_counts: dict[str, int]", "dict[str, int]",
     "Return a new dictionary adding up the counts of both dictionaries key by key.",
     "merged = dict(counts)\nfor key, count in more_counts.items():\n    merged[key] = merged.get(key, 0) + count\n"
     "return merged"),
    ("factorial", "loops", "n: int", "int", "Return n! (the product 1 * 2 * ... * n; 0! is 1).",
     "result = 1\nfor i in range(2, n + 1):\n    result *= i\nreturn result"),
    ("fibonacci", "dynamic programming", "n: int", "int", "Return the n-th Fibonacci number (fibonacci(0) is 0, fibonacci(1) is 1).",
     "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nreturn a"),
    ("is_prime", "number theory", "value: int", "bool", "Return True if `value` is a prime number.",
     "if value < 2:\n    return False\ni = 2\nwhile i * i <= value:\n    if value % i == 0:\n        return False\n"
     "    i += 1\nreturn True"),
    ("greatest_common_divisor", "number theory", "x: int, y: int", "int",
     "Return the greatest common divisor of two positive integers (Euclid's algorithm).",
     "while y:\n    x, y = y, x % y\nreturn x"),
    ("least_common_multiple", "math", "x: int, y: int", "int", "Return the least common multiple of two positive integers.",
     "return x * y // math.gcd(x, y)", "import math"),
    ("digit_sum", "variables and arithmetic", "value: int", "int", "Return the sum of the decimal digits of `value`.",
     "total = 0\nwhile value:\n    total += value % 10\n    value //= 10\nreturn total"),
    ("number_of_digits", "variables and arithmetic", "value: int", "int", "Return how many decimal digits `value` has.",
     "return len(str(value))"),
    ("reverse_digits", "variables and arithmetic", "value: int", "int", "Return the integer whose digits are those of `value` reversed.",
     "return int(str(value)[::-1])"),
    ("is_perfect_square", "math", "value: int", "bool", "Return True if `value` is the square of an integer.",
     "return math.isqrt(value) ** 2 == value", "import math"),
    ("collatz_steps", "loops", "value: int", "int",
     "Return how many Collatz steps (halve if even, else 3n + 1) take `value` to 1.",
     "steps = 0\nwhile value != 1:\n    value = value // 2 if value % 2 == 0 else 3 * value + 1\n    steps += 1\nreturn steps"),
    ("sum_of_proper_divisors", "number theory", "value: int", "int",
     "Return the sum of the divisors of `value` that are smaller than `value`.",
     "return sum(d for d in range(1, value) if value % d == 0)"),
    ("is_perfect_number", "number theory", "value: int", "bool",
     "Return True if `value` equals the sum of its proper divisors (6 = 1 + 2 + 3).",
     "return value == sum(d for d in range(1, value) if value % d == 0)"),
    ("to_binary", "variables and arithmetic", "value: int", "str",
     "Return the binary representation of a positive integer, without a prefix.",
     'bits = ""\nwhile value:\n    bits = str(value % 2) + bits\n    value //= 2\nreturn bits or "0"'),
    ("count_set_bits", "variables and arithmetic", "value: int", "int", "Return how many 1 bits `value` has in binary.",
     'return bin(value).count("1")'),
    ("triangular_number", "variables and arithmetic", "n: int", "int", "Return the n-th triangular number 1 + 2 + ... + n.",
     "return n * (n + 1) // 2"),
    ("recursive_sum", "recursion", "numbers: list[int]", "int", "Return the sum of `numbers`, computed recursively.",
     "if not numbers:\n    return 0\nreturn numbers[0] + recursive_sum(numbers[1:])"),
    ("recursive_power", "recursion", "base: int, exponent: int", "int",
     "Return `base` raised to a non-negative `exponent`, computed recursively.",
     "if exponent == 0:\n    return 1\nreturn base * recursive_power(base, exponent - 1)"),
    ("count_grid_paths", "dynamic programming", "rows: int, cols: int", "int",
     "Return how many paths go from the top-left to the bottom-right cell of a grid, moving only right or down.",
     "paths = [1] * cols\nfor _ in range(1, rows):\n    for c in range(1, cols):\n        paths[c] += paths[c - 1]\n"
     "return paths[-1]"),
    ("climb_stairs", "dynamic programming", "n: int", "int",
     "Return in how many ways a staircase of `n` steps can be climbed taking 1 or 2 steps at a time.",
     "a, b = 1, 1\nfor _ in range(n):\n    a, b = b, a + b\nreturn a"),
    ("binary_search", "searching", "sorted_numbers: list[int], target: int", "int",
     "Return an index of `target` in the sorted list `sorted_numbers`, or -1 if it is absent.",
     "lo, hi = 0, len(sorted_numbers) - 1\nwhile lo <= hi:\n    mid = (lo + hi) // 2\n"
     "    if sorted_numbers[mid] == target:\n        return mid\n    if sorted_numbers[mid] < target:\n"
     "        lo = mid + 1\n    else:\n        hi = mid - 1\nreturn -1"),
    ("linear_search", "searching", "numbers: list[int], target: int", "int",
     "Return the index of the first occurrence of `target` in `numbers`, or -1.",
     "for i, n in enumerate(numbers):\n    if n == target:\n        return i\nreturn -1"),
    ("insertion_sort", "sorting", "numbers: list[int]", "list[int]", "Return a sorted copy of `numbers`, using insertion sort.",
     "result = list(numbers)\nfor i in range(1, len(result)):\n    item = result[i]\n    j = i - 1\n"
     "    while j >= 0 and result[j] > item:\n        result[j + 1] = result[j]\n        j -= 1\n    result[j + 1] = item\n"
     "return result"),
    ("bubble_sort", "sorting", "numbers: list[int]", "list[int]", "Return a sorted copy of `numbers`, using bubble sort.",
     "result = list(numbers)\nfor end in range(len(result) - 1, 0, -1):\n    for i in range(end):\n"
     "        if result[i] > result[i + 1]:\n            result[i], result[i + 1] = result[i + 1], result[i]\nreturn result"),
    ("selection_sort", "sorting", "numbers: list[int]", "list[int]", "Return a sorted copy of `numbers`, using selection sort.",
     "result = list(numbers)\nfor i in range(len(result)):\n    smallest = min(range(i, len(result)), key=result.__getitem__)\n"
     "    result[i], result[smallest] = result[smallest], result[i]\nreturn result"),
    ("is_sorted", "sorting", "numbers: list[int]", "bool", "Return True if `numbers` is in non-decreasing order.",
     "return all(a <= b for a, b in zip(numbers, numbers[1:]))"),
    ("merge_sorted_lists", "two pointers", "left: list[int], right: list[int]", "list[int]",
     "Merge two sorted lists into one sorted list.",
     "merged = []\ni = j = 0\nwhile i < len(left) and j < len(right):\n    if left[i] <= right[j]:\n"
     "        merged.append(left[i])\n        i += 1\n    else:\n        merged.append(right[j])\n        j += 1\n"
     "return merged + left[i:] + right[j:]"),
    ("second_largest", "lists", "numbers: list[int]", "int | None",
     "Return the second largest distinct value of `numbers`, or None if there is none.",
     "distinct = sorted(set(numbers))\nreturn distinct[-2] if len(distinct) >= 2 else None"),
    ("running_total", "itertools", "numbers: list[int]", "list[int]", "Return the running totals of `numbers`.",
     "return list(accumulate(numbers))", "from itertools import accumulate"),
    ("pairwise_differences", "itertools", "numbers: list[int]", "list[int]",
     "Return the differences between each element of `numbers` and the one before it.",
     "return [b - a for a, b in pairwise(numbers)]", "from itertools import pairwise"),
    ("count_pairs_with_sum", "itertools", "numbers: list[int], target: int", "int",
     "Return how many pairs of positions in `numbers` hold values adding up to `target`.",
     "return sum(1 for a, b in combinations(numbers, 2) if a + b == target)", "from itertools import combinations"),
    ("product_of_list", "functools", "numbers: list[int]", "int", "Return the product of `numbers` (1 for an empty list).",
     "return reduce(lambda acc, n: acc * n, numbers, 1)", "from functools import reduce"),
    ("unique_in_order", "sets and tuples", "numbers: list[int]", "list[int]",
     "Return `numbers` without repeated values, keeping first occurrences in order.",
     "seen = set()\nunique = []\nfor n in numbers:\n    if n not in seen:\n        seen.add(n)\n        unique.append(n)\n"
     "return unique"),
    ("count_distinct", "sets and tuples", "numbers: list[int]", "int", "Return how many different values `numbers` holds.",
     "return len(set(numbers))"),
    ("common_elements", "sets and tuples", "left: list[int], right: list[int]", "list[int]",
     "Return the sorted values that occur in both lists.", "return sorted(set(left) & set(right))"),
    ("min_and_max", "sets and tuples", "numbers: list[int]", "tuple[int, int] | None",
     "Return a tuple (smallest, largest) of `numbers`, or None for an empty list.",
     "if not numbers:\n    return None\nreturn min(numbers), max(numbers)"),
    ("chunk_list", "lists", "numbers: list[int], k: int", "list[list[int]]",
     "Split `numbers` into consecutive chunks of `k` elements (the last may be shorter).",
     "return [numbers[i:i + k] for i in range(0, len(numbers), k)]"),
    ("rotate_left", "lists", "numbers: list[int], k: int", "list[int]", "Return `numbers` rotated `k` places to the left.",
     "if not numbers:\n    return []\nk %= len(numbers)\nreturn numbers[k:] + numbers[:k]"),
    ("rotate_with_deque", "collections", "numbers: list[int], k: int", "list[int]",
     "Return `numbers` rotated `k` places to the right, using collections.deque.",
     "items = deque(numbers)\nitems.rotate(k)\nreturn list(items)", "from collections import deque"),
    ("flatten_matrix", "comprehensions", "matrix: list[list[int]]", "list[int]", "Return the elements of `matrix` row by row in one list.",
     "return [x for row in matrix for x in row]"),
    ("transpose", "matrices", "matrix: list[list[int]]", "list[list[int]]", "Return the transpose of a rectangular `matrix`.",
     "return [list(column) for column in zip(*matrix)]"),
    ("row_sums", "matrices", "matrix: list[list[int]]", "list[int]", "Return the sum of each row of `matrix`.",
     "return [sum(row) for row in matrix]"),
    ("column_sums", "matrices", "matrix: list[list[int]]", "list[int]", "Return the sum of each column of a rectangular `matrix`.",
     "return [sum(column) for column in zip(*matrix)]"),
    ("largest_in_matrix", "matrices", "matrix: list[list[int]]", "int", "Return the largest element of a non-empty `matrix`.",
     "return max(max(row) for row in matrix)"),
    ("is_balanced", "stacks and queues", "brackets: str", "bool",
     "Return True if every bracket in `brackets` is closed in the right order.",
     'pairs = {")": "(", "]": "[", "}": "{"}\nstack = []\nfor ch in brackets:\n    if ch in pairs:\n'
     "        if not stack or stack.pop() != pairs[ch]:\n            return False\n    else:\n        stack.append(ch)\n"
     "return not stack"),
    ("remove_adjacent_duplicates", "stacks and queues", "text: str", "str",
     "Repeatedly remove pairs of equal adjacent characters from `text` ('abbaca' -> 'ca').",
     'stack = []\nfor ch in text:\n    if stack and stack[-1] == ch:\n        stack.pop()\n    else:\n        stack.append(ch)\n'
     'return "".join(stack)'),
    ("max_subarray_sum", "dynamic programming", "numbers: list[int]", "int",
     "Return the largest sum of a contiguous slice of `numbers` (0 for the empty slice).",
     "best = current = 0\nfor n in numbers:\n    current = max(0, current + n)\n    best = max(best, current)\nreturn best"),
    ("two_sum_indices", "hash maps", "numbers: list[int], target: int", "tuple[int, int] | None",
     "Return the first pair of indices (i, j), i < j, whose values add up to `target`, or None.",
     "seen = {}\nfor j, n in enumerate(numbers):\n    if target - n in seen:\n        return seen[target - n], j\n"
     "    seen.setdefault(n, j)\nreturn None"),
    ("first_unique_character", "hash maps", "text: str", "str",
     "Return the first character of `text` that occurs only once, or '' if there is none.",
     'counts = {}\nfor ch in text:\n    counts[ch] = counts.get(ch, 0) + 1\nfor ch in text:\n    if counts[ch] == 1:\n'
     '        return ch\nreturn ""'),
    ("longest_increasing_run", "two pointers", "numbers: list[int]", "int",
     "Return the length of the longest run of strictly increasing consecutive elements.",
     "best = run = 0\nfor i, n in enumerate(numbers):\n    run = run + 1 if i and n > numbers[i - 1] else 1\n"
     "    best = max(best, run)\nreturn best"),
    ("max_window_sum", "two pointers", "numbers: list[int], k: int", "int | None",
     "Return the largest sum of `k` consecutive elements of `numbers`, or None if the list is shorter than `k`.",
     "if len(numbers) < k:\n    return None\nwindow = best = sum(numbers[:k])\nfor i in range(k, len(numbers)):\n"
     "    window += numbers[i] - numbers[i - k]\n    best = max(best, window)\nreturn best"),
    ("is_leap_year", "conditionals", "year: int", "bool", "Return True if `year` is a leap year in the Gregorian calendar.",
     "return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)"),
    ("letter_grade", "conditionals", "score: int", "str",
     "Return the letter grade of a 0-100 `score`: A from 90, B from 80, C from 70, D from 60, else F.",
     'if score >= 90:\n    return "A"\nif score >= 80:\n    return "B"\nif score >= 70:\n    return "C"\n'
     'if score >= 60:\n    return "D"\nreturn "F"'),
    ("fizzbuzz", "loops", "n: int", "list[str]",
     "Return the FizzBuzz sequence from 1 to `n` as strings.",
     'result = []\nfor i in range(1, n + 1):\n    word = ("Fizz" if i % 3 == 0 else "") + ("Buzz" if i % 5 == 0 else "")\n'
     "    result.append(word or str(i))\nreturn result"),
    ("describe_sign", "conditionals", "number: int", "str", 'Return "positive", "negative" or "zero" for `number`.',
     'if number > 0:\n    return "positive"\nif number < 0:\n    return "negative"\nreturn "zero"'),
    ("extract_numbers", "re", "text: str", "list[int]", "Return the whole numbers written in `text`, in order.",
     r'return [int(match) for match in re.findall(r"\d+", text)]', "import re"),
    ("capitalized_words", "re", "text: str", "list[str]", "Return the words of `text` that start with an uppercase letter.",
     r'return re.findall(r"\b[A-Z]\w*", text)', "import re"),
    ("count_long_words", "functions", "words: list[str], k: int", "int", "Return how many of `words` are longer than `k` characters.",
     "return sum(1 for word in words if len(word) > k)"),
    ("sort_words_by_length", "functions", "words: list[str]", "list[str]",
     "Return `words` sorted by length, then alphabetically.", "return sorted(words, key=lambda word: (len(word), word))"),
]


def all_tasks() -> dict[str, Task]:
    tasks = _char_tasks() + _number_tasks() + _map_tasks() + [Task(*row) for row in _WRITTEN]
    by_name = {task.name: task for task in tasks}
    assert len(by_name) == len(tasks), "task names must be unique"
    return by_name


TASKS = all_tasks()

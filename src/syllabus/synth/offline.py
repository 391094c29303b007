"""The offline template teacher: textbook sections and exercises composed from templates, the task
library (`syllabus.synth.tasks`) and the constraints in the prompt (topic, audience, style, function
name). It is deterministic and not a language model; records it writes carry `teacher:
offline:...` and the stage summaries say so. It exists so the demo and tests run with no model.

Importing this module registers `offline:textbook`, `offline:exercises` and `offline:expand` (the
lists synth.expand asks for) with `syllabus.llm`.
"""

from __future__ import annotations

import functools
import random
import re
import textwrap

from syllabus.llm import register_offline
from syllabus.synth.tasks import TASKS, Task, sample_args

NOTE = "offline template teacher: deterministic templates, not a language model"


def prompt_field(prompt: str, label: str) -> str | None:
    """The value of a `Label: value` line of a prompt."""
    match = re.search(rf"^{re.escape(label)}:\s*(.+?)\s*$", prompt, re.MULTILINE)
    return match.group(1) if match else None


def task_source(task: Task, docstring: str) -> str:
    head = f"{task.imports}\n\n\n" if task.imports else ""
    doc = textwrap.indent(docstring, "    ").lstrip() + ("\n    " if "\n" in docstring else "")
    return f'{head}def {task.name}({task.params}) -> {task.returns}:\n    """{doc}"""\n' \
           f"{textwrap.indent(task.body, '    ')}\n"


@functools.lru_cache(maxsize=None)
def _reference(name: str):
    """The task compiled from this package's own template source (trusted code, not teacher output),
    to compute the expected values that the examples and tests show."""
    task = TASKS[name]
    namespace: dict = {}
    exec(compile(task_source(task, task.doc), f"<task {name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


def _call(task: Task, args: tuple) -> tuple[str, str]:
    """('name(arg reprs)', repr(result))."""
    result = _reference(task.name)(*[_copy(a) for a in args])
    return f"{task.name}({', '.join(repr(a) for a in args)})", repr(result)


def _copy(value):
    return [_copy(v) for v in value] if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def _calls(task: Task, rng: random.Random, n: int) -> list[tuple[str, str]]:
    calls: dict[str, str] = {}
    for _ in range(n * 4):
        call, result = _call(task, sample_args(task, rng))
        calls.setdefault(call, result)
        if len(calls) == n:
            break
    return list(calls.items())


EXAMPLE_FORMS = (
    "For example, {call} returns {result}.",
    ">>> {call}\n{result}",
    "Example: {call} == {result}",
)


def write_exercise(prompt: str, sample: int) -> str:
    """A CodeExercise for the prompt's `Function name:` in the strict SOLUTION/TESTS format."""
    name = prompt_field(prompt, "Function name") or ""
    task = TASKS.get(name)
    if task is None:
        return (f"The offline template teacher has no template for the function name {name!r}; "
                "it only writes the functions listed in syllabus/synth/function_names.txt.")
    rng = random.Random(f"exercise:{prompt}:{sample}")  # every distinct prompt its own exercise
    (call, result), *tests = _calls(task, rng, 6)
    example = rng.choice(EXAMPLE_FORMS).format(call=call, result=result)
    solution = task_source(task, f"{task.doc}\n\n{example}")
    asserts = "".join(f"assert {c} == {r}\n" for c, r in [(call, result), *tests])
    return f"### SOLUTION\n```python\n{solution}```\n\n### TESTS\n```python\n{asserts}```\n"


# ── textbook sections ────────────────────────────────────────────────────────────────────────

OPENINGS = {
    "beginner": ("If you have never programmed before, {leaf} can look mysterious. It is not: it is a small idea "
                 "you will use every day, and by the end of this section you will have used it yourself."),
    "high-school": ("Think of {leaf} as a tool in a toolbox: once you know when to reach for it, many homework "
                    "problems become a few lines of Python."),
    "college": ("This section treats {leaf} the way a first programming course does: a precise idea, a small "
                "function that uses it, and the reasoning that shows the function is correct."),
    "spreadsheet": ("In a spreadsheet you would fill a column with a formula and drag it down. In Python, {leaf} "
                    "plays that role, with the advantage that the steps are written down and can be tested."),
    "experienced": ("If you already program in another language, {leaf} in Python will feel familiar; what "
                    "differs is the idiom, and idioms are what this section is about."),
}
STYLE_INTROS = {
    "tutorial": "We will build the solution one step at a time and run it at the end.",
    "socratic": "We will proceed by questions: each answer leads to the next question.",
    "mistakes": "We will look at a correct solution first, then at the mistakes people usually make.",
    "reference": "What follows is a compact reference: the definition, an implementation and its behaviour.",
    "exercise": "Read the worked example, then solve the exercise at the end before looking back.",
}
TOPIC_NOTES = {
    "strings": "A string is an immutable sequence of characters: you can index it, slice it and loop over it, "
               "but every change produces a new string.",
    "lists": "A list holds values in order; it can grow and shrink, and it can be walked with a `for` loop.",
    "comprehensions": "A comprehension builds a new collection from an old one in a single expression: "
                      "`[expression for item in items if condition]`.",
    "loops": "A loop repeats a block of code: `for` visits the items of a collection, `while` repeats as long "
             "as a condition holds.",
    "conditionals": "An `if` statement chooses between paths; `any()` and `all()` ask a yes-or-no question about "
                    "a whole collection at once.",
    "dictionaries": "A dictionary maps keys to values, and looking a key up takes the same time however large it grows.",
    "hash maps": "A hash map (a Python `dict` or `set`) answers 'have I seen this before?' in constant time, "
                 "which turns many quadratic algorithms into linear ones.",
    "recursion": "A recursive function solves a problem by solving a smaller instance of the same problem, "
                 "and stops at a base case.",
    "dynamic programming": "Dynamic programming keeps the answers to smaller subproblems so that each is computed once.",
    "sorting": "Sorting puts values in order; simple sorts swap or insert elements until no pair is out of order.",
    "searching": "Searching finds where a value is; on sorted data, halving the range each step is far faster.",
    "two pointers": "Two indices moving through the data, each only forward, often replace a nested loop.",
    "stacks and queues": "A stack (a Python list used with `append` and `pop`) gives back the most recent item first.",
    "matrices": "A matrix is a list of rows; `zip(*matrix)` gives its columns.",
    "sets and tuples": "A set keeps each value once and answers membership fast; a tuple is a fixed, immutable group.",
    "number theory": "Number theory studies divisibility; the `%` operator gives the remainder of a division.",
}


def _pick(table: dict[str, str], key: str, rng: random.Random) -> str:
    for word, text in table.items():
        if word in key.lower():
            return text
    return rng.choice(list(table.values()))


def _walkthrough(task: Task) -> str:
    body, sentences = task.body, []
    if "for " in body and "[" not in body.split("for ")[0][-20:]:
        sentences.append("A `for` loop visits each element once, so the work grows linearly with the input.")
    if "while " in body:
        sentences.append("The `while` loop runs until its condition becomes false; each pass must make progress "
                         "towards that, or the loop would never end.")
    if re.search(r"\[[^\]]* for ", body) or re.search(r"\(\w+ for |\(1 for |\(ch for ", body):
        sentences.append("A comprehension or generator expression does the looping inside one expression.")
    if "if " in body:
        sentences.append("The `if` decides, item by item, which case applies.")
    if f"{task.name}(" in body:
        sentences.append("The function calls itself on a smaller input, and the base case stops the recursion.")
    if task.imports:
        sentences.append(f"It relies on the standard library (`{task.imports}`) rather than reinventing it.")
    if "None" in task.returns:
        sentences.append("When there is no answer it returns `None`, which the caller must check for.")
    return " ".join(sentences) or "The body is a single expression that computes the answer directly."


def write_textbook(prompt: str, sample: int) -> str:
    """A markdown textbook section on the prompt's `Topic:` for its `Audience:` in its `Style:`."""
    topic = prompt_field(prompt, "Topic") or "Python basics"
    audience = prompt_field(prompt, "Audience") or "beginners"
    style = prompt_field(prompt, "Style") or "tutorial"
    parts = [p.strip() for p in topic.split(">")]
    leaf, area = parts[-1], parts[min(1, len(parts) - 1)].lower()
    rng = random.Random(f"textbook:{prompt}:{sample}")
    candidates = [t for t in TASKS.values() if t.topic == area] or list(TASKS.values())
    task = rng.choice(candidates)
    (call, result), *more = _calls(task, rng, 3)
    source = task_source(task, task.doc)
    lines = [
        f"## {leaf[0].upper() + leaf[1:]}: `{task.name}`",
        "",
        _pick(OPENINGS, audience, rng).format(leaf=leaf) + " " + _pick(STYLE_INTROS, style, rng),
        "",
        TOPIC_NOTES.get(area, TOPIC_NOTES.get(task.topic, "")) + f" Our example: {task.doc[0].lower()}{task.doc[1:]}",
        "",
        f"```python\n{source}```",
        "",
        f"`{task.name}` takes `{task.params}` and returns `{task.returns}`. {_walkthrough(task)}",
        "",
        "Calling it:",
        "",
        "```python\n" + "".join(f"print({c})  # {r}\n" for c, r in [(call, result), *more]) + "```",
    ]
    style_key = style.lower()
    if "socratic" in style_key or "question" in style_key:
        for c, r in more:
            lines += ["", f"**Q:** What does `{c}` give? **A:** `{r}`. Trace the body by hand to see why."]
    elif "mistake" in style_key:
        lines += ["", "**Common mistakes.** Forgetting the empty input (what should happen when there is nothing "
                      "to process?), stopping a range one element too early, and changing the caller's data "
                      "instead of building a new result."]
    elif "exercise" in style_key:
        lines += ["", f"**Exercise.** Write a variant of `{task.name}` that works on a list of inputs and returns "
                      "a list of results, then test it on the calls above."]
    lines += ["", f"**Key idea:** {leaf} is learned by writing small functions like this one and checking them "
                  "on examples you can verify by hand."]
    return "\n".join(lines) + "\n"





# ── vocabulary expansion (synth.expand) ──────────────────────────────────────────────────────

ASPECTS = ("basics", "common mistakes", "edge cases", "with loops", "with recursion", "with dictionaries",
           "in practice", "step by step", "and testing", "and efficiency", "with strings", "with lists")
VERBS = ("count", "find", "sum", "filter", "sort", "group", "check", "build", "merge", "split", "reverse",
         "rank", "pair", "scale", "clean", "encode", "decode", "compare", "index", "flatten")


def _slug(text: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", text.lower())[-3:]) or "items"


def write_list(prompt: str, sample: int) -> str:
    """A one-per-line list for the synth.expand prompts: subtopics of the prompt's `Topic:` (its last
    part joined with an aspect), or function names (a verb and the topic's words)."""
    topic = (prompt_field(prompt, "Topic") or "python").split(">")[-1].strip()
    k = int(re.search(r"List (\d+)", prompt).group(1)) if re.search(r"List (\d+)", prompt) else 8
    rng = random.Random(f"expand:{prompt}:{sample}")
    if "function names" in prompt:
        verbs = rng.sample(VERBS, min(k, len(VERBS)))
        return "\n".join(f"{verb}_{_slug(topic)}" for verb in verbs)
    aspects = rng.sample(ASPECTS, min(k, len(ASPECTS)))
    return "\n".join(f"- {topic} {aspect}" for aspect in aspects)
register_offline("textbook", write_textbook)
register_offline("exercises", write_exercise)
register_offline("expand", write_list)

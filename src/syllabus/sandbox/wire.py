"""Plain data across the sandbox's process boundary: one JSON line per message, never pickle.

Only None, bool, int, float, complex, str, bytes, list, tuple, dict, set and frozenset cross (an
instance of a subclass of one of them crosses as its base type's value, so the receiver never
runs the subclass's methods); a
message is at most MAX_MESSAGE bytes, and `encode` refuses values nested more than MAX_DEPTH deep
(`decode` takes what JSON's parser can, which stops at the interpreter's recursion limit). JSON carries None, bool, int, float,
str and list as themselves; the others are one-key objects: {"t": [...]} a tuple, {"s": [...]} a
set, {"f": [...]} a frozenset, {"d": [[k, v], ...]} a dict, {"b": "hex"} bytes, {"c": [re, im]} a
complex, {"i": "hex"} an int too long for JSON's decimal digits, {"r": n, "type": name} a
reference to an object that stays in the process that sent it.

`decode` builds every value anew from JSON, so what it returns is made of exact built-in types
(`type(x) is int`, never a subclass) whatever the sender wrote. Imported by the sandbox server
(standard library only).
"""

from __future__ import annotations

import json

MAX_MESSAGE = 16 << 20  # bytes in one message
MAX_DEPTH = 100  # nesting of lists, tuples, dicts and sets in one value
LONG_INT = 1 << 64  # ints at least this large travel as hex: JSON's decimal digits are limited

_PLAIN_SCALARS = (type(None), bool, int, float, str)
_COLLECTIONS = {"t": tuple, "s": set, "f": frozenset}
# The value of a subclass instance as its exact base type, read with the base type's own methods
# (never the subclass's overrides): the receiver compares that data, not the subclass's __eq__.
_SUBCLASSED = ((int, int.__int__), (float, float.__float__), (str, str.__str__), (bytes, bytes.__bytes__),
               (complex, complex.__complex__), (list, list.copy), (tuple, lambda t: tuple.__getitem__(t, slice(None))),
               (dict, dict.copy), (set, set.copy), (frozenset, frozenset.copy))


class WireError(ValueError):
    """A message that is not plain data within the limits."""


class Unsendable(ValueError):
    """A value with an object that cannot cross (and may not travel as a reference)."""

    def __init__(self, type_name: str):
        super().__init__(type_name)
        self.type_name = type_name


def encode(value, reference=None) -> bytes:
    """One message line for `value`. Objects of any other type become references through
    `reference(obj) -> (number, type name)`, or raise Unsendable if it is None."""
    return json.dumps(_to_json(value, reference, 0), allow_nan=True).encode() + b"\n"


def _to_json(value, reference, depth: int):
    kind = type(value)
    if kind is int:
        return value if -LONG_INT < value < LONG_INT else {"i": hex(value)}
    if kind in _PLAIN_SCALARS:
        return value
    if depth >= MAX_DEPTH:
        raise WireError(f"a value nested deeper than {MAX_DEPTH} levels")
    depth += 1
    if kind is list:
        return [_to_json(v, reference, depth) for v in value]
    if kind is tuple:
        return {"t": [_to_json(v, reference, depth) for v in value]}
    if kind is dict:
        return {"d": [[_to_json(k, reference, depth), _to_json(v, reference, depth)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"s" if kind is set else "f": [_to_json(v, reference, depth) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    for base, base_value in _SUBCLASSED:
        if isinstance(value, base):  # Counter, OrderedDict, a namedtuple, an IntEnum...
            return _to_json(base_value(value), reference, depth - 1)
    name = getattr(kind, "__qualname__", "?")
    if not isinstance(name, str):
        name = "?"
    if reference is None:
        raise Unsendable(name)
    number, name = reference(value)
    return {"r": number, "type": name}


class Decoder:
    """Reads message lines into values rebuilt from exact built-in types. A reference {"r": n}
    becomes `dereference(n, type name)`; with no dereference, it raises Unsendable(type name).
    Made once per channel: json's decoder is not cheap to build for every message."""

    def __init__(self, dereference=None):
        self.dereference = dereference
        self._json = json.JSONDecoder(object_hook=self._tagged)

    def _tagged(self, obj: dict):
        if len(obj) == 1:
            (tag, payload), = obj.items()
            if tag in _COLLECTIONS and type(payload) is list:
                return _COLLECTIONS[tag](payload)
            if tag == "d" and type(payload) is list and all(type(p) is list and len(p) == 2 for p in payload):
                return dict(payload)
            if tag == "b" and type(payload) is str:
                return bytes.fromhex(payload)
            if tag == "i" and type(payload) is str:
                return int(payload, 16)
            if tag == "c" and type(payload) is list and len(payload) == 2 and all(type(x) in (int, float) for x in payload):
                return complex(*payload)
        elif len(obj) == 2 and type(obj.get("r")) is int and type(obj.get("type")) is str:
            if self.dereference is None:
                raise Unsendable(obj["type"][:200])
            return self.dereference(obj["r"], obj["type"][:200])
        raise WireError("not a plain-data message")

    def decode(self, line: bytes):
        if len(line) > MAX_MESSAGE:
            raise WireError(f"a message larger than {MAX_MESSAGE} bytes")
        try:
            return self._json.decode(line.decode("utf-8"))
        except (Unsendable, WireError):
            raise
        except RecursionError:
            raise WireError(f"a value nested deeper than {MAX_DEPTH} levels") from None
        except (ValueError, TypeError, OverflowError, MemoryError) as e:  # bad JSON, unhashable set members...
            raise WireError(f"not a plain-data message ({type(e).__name__})") from None


_plain = Decoder()


def decode(line: bytes):
    """The value in a message line of plain data only (a reference raises Unsendable)."""
    return _plain.decode(line)

"""The builders behind `fnn.data.safe_pickle`: numpy's array reconstructors, re-done without numpy's code.

A numpy array's pickle names a few of numpy's functions (``_reconstruct``, ``ndarray``, ``dtype``,
``scalar``, ``_frombuffer``; ``_codecs.encode`` and ``bytes`` under protocols 0-2) and calls them with
arguments from the file. `safe_pickle`'s opcode machine never imports them: ``GLOBAL`` pushes a label
(`_Name`) from the fixed table `GLOBALS`, and ``REDUCE``/``BUILD`` on a label call the builder of
`NumpyBuilders` for it (a mixin of the machine, which provides ``fail``, ``charge`` and
``max_bytes``). A builder checks its arguments and makes an array from (shape, dtype descr, raw
bytes) with ``np.frombuffer(...).copy()``: only plain number types (``b1 i* u* f* c*``), only bytes
that are in the file, exactly prod(shape) x itemsize of them; ``numpy.ndarray(...)`` called directly
(uninitialised memory) is refused.
"""

from __future__ import annotations

import math
import re

import numpy as np

MAX_NDIM = 32
CAP_HINT = "pass max_bytes= to safe_load or load_book_weights to raise the cap"

# Globals a numpy array's pickle names -> the builder that stands for each (nothing is imported).
GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("numpy.core.multiarray", "scalar"): "scalar",
    ("numpy._core.multiarray", "scalar"): "scalar",
    ("numpy.core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "_frombuffer",
    ("_codecs", "encode"): "encode",
    ("__builtin__", "bytes"): "bytes",
    ("builtins", "bytes"): "bytes",
}
_DESCR = re.compile(r"b1|[iu][1248]|f(2|4|8|10|12|16)|c(8|16|20|24|32)")
_DTYPE_STATE_TAIL = (None, None, None, -1, -1, 0)  # (subarray, names, fields, elsize, alignment, flags)


def _eq(x, expected) -> bool:
    """``x == expected`` for plain values and tuples of them only: an array built from the file
    compares elementwise, and the truth of that is an error, not a refusal."""
    if type(x) is tuple:
        return (type(expected) is tuple and len(x) == len(expected)
                and all(_eq(a, b) for a, b in zip(x, expected, strict=True)))
    return type(x) in (type(None), bool, int, float, str, bytes) and x == expected


def _in(x, options: tuple) -> bool:
    return any(_eq(x, option) for option in options)


class _Name:
    """A global the file named: a label for one of the builders, never the object."""

    __slots__ = ("qualname", "role")

    def __init__(self, qualname: str, role: str):
        self.qualname, self.role = qualname, role


class _Dtype:
    """``numpy.dtype(descr)`` of a plain number type, with the byte order its ``BUILD`` sets."""

    __slots__ = ("dtype", "built")

    def __init__(self, dtype: np.dtype):
        self.dtype, self.built = dtype, False


class _Array:
    """``_reconstruct(numpy.ndarray, (0,), b'b')``: an array to be filled by its ``BUILD``."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None


def _show(x, depth: int = 0) -> str:
    """A short description of a value for an error message (never a huge repr)."""
    if isinstance(x, (bool, float)) or x is None:
        return repr(x)
    if isinstance(x, int):
        return repr(x) if x.bit_length() <= 256 else f"<int of {x.bit_length()} bits>"
    if isinstance(x, str):
        return repr(x) if len(x) <= 40 else repr(x[:40]) + f"... ({len(x)} characters)"
    if isinstance(x, (bytes, bytearray)):
        return f"<{len(x)} bytes>"
    if isinstance(x, _Name):
        return x.qualname
    if isinstance(x, _Dtype):
        return f"dtype {x.dtype.str!r}"
    if isinstance(x, tuple) and depth < 2:
        inner = ", ".join(_show(v, depth + 1) for v in x[:6]) + (", ..." if len(x) > 6 else "")
        return f"({inner}{',' if len(x) == 1 else ''})"
    if isinstance(x, (tuple, list, dict)):
        return f"a {type(x).__name__} of {len(x)} items"
    return "an array" if isinstance(x, (_Array, np.ndarray)) else f"a {type(x).__name__}"


class NumpyBuilders:
    """The builders of numpy's reconstructors, as methods of the opcode machine (``call_<role>`` for
    a ``REDUCE``, ``build_dtype``/``build_array`` for a ``BUILD``); the machine provides ``fail(what)``,
    ``charge(nbytes, what)`` and ``max_bytes``."""

    def call_ndarray(self, qualname: str, args: tuple):
        self.fail(f"{qualname}{_show(args)} called directly would return uninitialised memory, not bytes "
                  "from the file; refused")

    def call__reconstruct(self, qualname: str, args: tuple):
        if (len(args) != 3 or type(args[0]) is not _Name or args[0].role != "ndarray" or not _eq(args[1], (0,))
                or not _in(args[2], (b"b", "b"))):
            self.fail(f"{qualname}{_show(args)}, expected numpy's own (numpy.ndarray, (0,), b'b')")
        return _Array()

    def call_dtype(self, qualname: str, args: tuple):
        descr = args[0] if len(args) == 3 and _in(args[1], (0, 1)) and _in(args[2], (0, 1)) else None
        if type(descr) is not str or not _DESCR.fullmatch(descr):
            self.fail(f"{qualname}{_show(args)} is not a plain number type (expected bool, int, uint, float "
                      "or complex: b1, i1..i8, u1..u8, f2..f16, c8..c32); object, void, structured, string "
                      "and datetime arrays are refused")
        try:
            return _Dtype(np.dtype(descr))
        except TypeError:
            self.fail(f"dtype {descr!r} does not exist on this machine")

    def build_dtype(self, obj: _Dtype, state):
        if type(state) is not tuple or len(state) != 8 or not _eq(state[0], 3) or not _eq(state[2:], _DTYPE_STATE_TAIL):
            self.fail(f"dtype state {_show(state)}, expected (3, byteorder, None, None, None, -1, -1, 0) "
                      "as numpy writes for a plain number type")
        order = state[1]
        if not _in(order, ("<", ">", "=", "|")) or (order == "|" and obj.dtype.itemsize > 1):
            self.fail(f"byte order {_show(order)} for {obj.dtype.name}, expected '<', '>' or '='")
        if order in ("<", ">"):
            obj.dtype = obj.dtype.newbyteorder(order)
        obj.built = True

    def build_array(self, obj: _Array, state):
        if type(state) is tuple and len(state) == 5 and _eq(state[0], 1):
            state = state[1:]  # (version, shape, dtype, is_fortran, data); version 0 has no version
        if type(state) is not tuple or len(state) != 4 or not _in(state[2], (0, 1)):
            self.fail(f"array state {_show(state)}, expected (1, shape, dtype, is_fortran, bytes)")
        shape, dtype, fortran, data = state
        obj.array = self.array(data, dtype, shape, "F" if fortran else "C", "an array")

    def call__frombuffer(self, qualname: str, args: tuple):
        if len(args) != 4 or not _in(args[3], ("C", "F")):
            self.fail(f"{qualname}{_show(args)}, expected (buffer, dtype, shape, 'C' or 'F')")
        data, dtype, shape, order = args
        return self.array(data, dtype, shape, order, qualname)

    def call_scalar(self, qualname: str, args: tuple):
        if len(args) != 2:
            self.fail(f"{qualname}{_show(args)}, expected (dtype, bytes)")
        return self.array(args[1], args[0], (), "C", qualname)[()]

    def call_encode(self, qualname: str, args: tuple):
        if len(args) != 2 or type(args[0]) is not str or not _in(args[1], ("latin1", "latin-1")):
            self.fail(f"{qualname}{_show(args)}, expected (text, 'latin1') as numpy writes for bytes")
        return self.raw(args[0], qualname)

    def call_bytes(self, qualname: str, args: tuple):
        if not _eq(args, ()):
            self.fail(f"{qualname}{_show(args)}, expected {qualname}() (empty bytes)")
        return b""

    def raw(self, data, what: str) -> bytes | bytearray:
        """Bytes from the file; text (Python 2 str, ``_codecs.encode``'s argument) as latin-1."""
        if type(data) is str:
            try:
                data = data.encode("latin-1")
            except UnicodeEncodeError:
                self.fail(f"{what}: text with characters above U+00FF, expected latin-1 bytes")
            self.charge(len(data), what)
        if type(data) not in (bytes, bytearray):
            self.fail(f"{what}: data is {_show(data)}, expected bytes in the file")
        return data

    def array(self, data, dtype, shape, order: str, what: str) -> np.ndarray:
        """A new array of ``shape`` from exactly prod(shape) x itemsize bytes of the file."""
        if type(dtype) is not _Dtype:
            self.fail(f"{what}: dtype is {_show(dtype)}, expected numpy.dtype(...) of a plain number type")
        dtype = dtype.dtype
        if type(shape) is not tuple or len(shape) > MAX_NDIM or any(type(d) is not int or d < 0 for d in shape):
            self.fail(f"{what}: shape {_show(shape)}, expected a tuple of at most {MAX_NDIM} integers >= 0")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > self.max_bytes:
            self.fail(f"{what}: shape {_show(shape)} of {dtype.name} needs {_show(nbytes)} bytes, more than "
                      f"max_bytes={self.max_bytes}; {CAP_HINT}")
        data = self.raw(data, what)
        if len(data) != nbytes:
            self.fail(f"{what}: shape {_show(shape)} of {dtype.name} needs {nbytes} bytes, the file holds "
                      f"{len(data)}")
        self.charge(nbytes, what)
        return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order=order).copy(order="K")

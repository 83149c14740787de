"""A pickle reader for numpy weights that imports and calls nothing from the file: `safe_load`.

`pickle.load` runs whatever a file asks for, and an allow-list of numpy's own reconstructors (a
restricted ``Unpickler.find_class``) is not safe either: ``numpy.ndarray(shape, dtype)`` returns
uninitialised memory, and ``_reconstruct`` with an object dtype turns forged bytes into object
pointers (a segfault later). ``find_class`` can only admit or refuse a callable, and the callables
numpy needs are exactly the ones that can be abused; checking their arguments means re-implementing
them. So `safe_load` does not use `pickle.Unpickler` at all: it walks the opcodes with
`pickletools.genops` (which only parses bytes) and runs a small stack machine that knows the opcodes
numpy's arrays use under protocols 0-5 and refuses every other one:

* values, decoded by genops: ``NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4
  FLOAT BINFLOAT STRING BINSTRING SHORT_BINSTRING UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
  BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8``;
* containers: ``MARK POP POP_MARK EMPTY_DICT DICT SETITEM SETITEMS EMPTY_LIST LIST APPEND APPENDS
  EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3``; memo: ``PUT BINPUT LONG_BINPUT MEMOIZE GET BINGET
  LONG_BINGET``; framing: ``PROTO FRAME STOP``;
* ``GLOBAL``/``STACK_GLOBAL`` may only *name* an entry of a fixed table (numpy's ``_reconstruct``,
  ``ndarray``, ``dtype``, ``scalar`` and ``_frombuffer`` under ``numpy.core`` or ``numpy._core``;
  ``_codecs.encode`` and ``bytes``, which protocols 0-2 use for raw bytes). The name becomes a label,
  nothing is imported; ``REDUCE`` and ``BUILD`` on a label run fnn's own builder for it
  (`fnn.data._pickle_builders`).

A builder makes an array from (shape, dtype descr, raw bytes) with ``np.frombuffer(...).copy()``,
after checking that the descr is a plain number type (``b1 i* u* f* c*``; never object, void,
structured, string or datetime), that the bytes are in the file (an out-of-band ``NEXT_BUFFER`` is
refused) and number exactly prod(shape) x itemsize. ``numpy.ndarray(...)`` called directly is refused.

Bounds, so that no file can exhaust memory or the interpreter: ``max_bytes`` (default 1 GiB, a keyword
raises it) caps the file and the arrays' total, checked before anything is allocated; `MAX_OPCODES`
caps the opcodes (each creates at most one small object, so the stack and memo stay small; the memo is
a dict, so a large ``PUT`` index allocates nothing); `MAX_DEPTH` caps nesting and `MAX_NDIM` an
array's dimensions; shared containers are resolved once, a container holding itself is refused.
Every failure (garbage, truncation at any byte, a refused global or dtype, a bomb) raises one error
type, `WeightsFormatError`, naming the file and what was wrong.
"""

from __future__ import annotations

import io
import os
import pickletools

import numpy as np

from fnn.data._pickle_builders import CAP_HINT, GLOBALS, MAX_NDIM, NumpyBuilders, _Array, _Dtype, _Name, _show
from fnn.data.download import DataFormatError, DataNotFoundError, open_regular

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NDIM", "MAX_OPCODES", "WeightsFormatError", "safe_load"]

MAX_BYTES = 1 << 30  # default cap on the file's size and on the arrays' total bytes
MAX_OPCODES = 1_000_000  # the books' files have a few hundred
MAX_DEPTH = 64  # nesting of dicts, lists and tuples


class WeightsFormatError(DataFormatError):
    """A weights file is not a pickle of plain numeric numpy arrays in dicts, lists and tuples (or
    is not the book's file it is named after); the message names the file and what was wrong."""


_VALUE_OPS = frozenset({  # opcodes whose argument, decoded by genops, is the value to push
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
})
_CONSTANTS = {"NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False,
              "EMPTY_TUPLE": tuple, "EMPTY_LIST": list, "EMPTY_DICT": dict}
_TUPLE_N = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_PUT_OPS, _GET_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"}), frozenset({"GET", "BINGET", "LONG_BINGET"})
_KEY_TYPES = (str, int, float, bool, type(None))


class _Source:
    """What genops reads: a file or bytes, never asked for more than is left. (A buffered read
    allocates what it is asked for, and a pickle's length field can ask for 2**63 bytes.)"""

    def __init__(self, f, size: int):
        self.f, self.size, self.position = f, size, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(self.size - self.position if n < 0 else min(n, self.size - self.position))
        self.position += len(data)
        return data

    def readline(self) -> bytes:
        line = self.f.readline(self.size - self.position)
        self.position += len(line)
        return line

    def tell(self) -> int:
        return self.position


class _Reader(NumpyBuilders):
    """The stack machine over `pickletools.genops` (see the module docstring)."""

    def __init__(self, where: str, max_bytes: int):
        self.where, self.max_bytes = where, max_bytes
        self.allocated = 0  # bytes of arrays (and of bytes made by _codecs.encode) built so far
        self.stack: list = []
        self.metastack: list[list] = []  # the stacks below each open MARK
        self.memo: dict[int, object] = {}
        self.pos, self.opname = 0, "?"

    def fail(self, what: str):
        raise WeightsFormatError(f"{self.where}: {what} (byte {self.pos}, opcode {self.opname})")

    def load(self, f: _Source):
        ops = pickletools.genops(f)
        for count in range(MAX_OPCODES + 1):
            try:
                opcode, arg, self.pos = next(ops)
            except Exception as e:  # genops only parses bytes: any error means a broken file
                raise WeightsFormatError(
                    f"{self.where}: not a complete pickle at byte {f.tell()} of {f.size}: {str(e)[:200]} "
                    "(the file is truncated, damaged or not a pickle)") from None
            self.opname = opcode.name
            if count == MAX_OPCODES:
                self.fail(f"more than {MAX_OPCODES} opcodes, expected a few per array")
            if opcode.name == "STOP":
                return self.stop(f.tell(), f.size)
            self.step(opcode.name, arg)
        raise AssertionError("unreachable")

    def step(self, name: str, arg) -> None:
        if name in _VALUE_OPS:
            self.stack.append(arg)
        elif name in _CONSTANTS:
            self.stack.append(_CONSTANTS[name]())
        elif name in _TUPLE_N:
            items = tuple(self.pop() for _ in range(_TUPLE_N[name]))
            self.stack.append(items[::-1])
        elif name in _PUT_OPS or name == "MEMOIZE":
            index = len(self.memo) if name == "MEMOIZE" else arg
            if not self.stack or index < 0:
                self.fail(f"memo index {index} on a stack of {len(self.stack)}, expected >= 0 and a value")
            self.memo[index] = self.stack[-1]
        elif name in _GET_OPS:
            if arg not in self.memo:
                self.fail(f"memo index {arg} was never stored")
            self.stack.append(self.memo[arg])
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            self.fail("an out-of-band buffer: the array's bytes are not in the file")
        elif hasattr(self, "op_" + name):
            getattr(self, "op_" + name)(arg)
        else:
            self.fail(f"opcode {name} is not one a pickle of numpy arrays uses; only plain numeric "
                      "arrays in dicts, lists and tuples are read, so the file was refused")

    def stop(self, end: int, size: int):
        if self.metastack or len(self.stack) != 1:
            self.fail(f"STOP with {len(self.stack)} values on the stack and {len(self.metastack)} open "
                      "MARKs, expected exactly one value")
        if end != size:
            self.fail(f"{size - end} bytes follow STOP, expected the file to end there")
        return _Resolver(self.where).resolve(self.stack[0])

    # --- stack helpers ---------------------------------------------------------------------------
    def pop(self):
        if not self.stack:
            self.fail("the stack is empty, expected a value")
        return self.stack.pop()

    def pop_mark(self) -> list:
        if not self.metastack:
            self.fail("no MARK to pop to")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def top(self, kind: type):
        if not self.stack or type(self.stack[-1]) is not kind:
            self.fail(f"{self.opname} needs a {kind.__name__}, found {_show(self.stack[-1] if self.stack else ())}")
        return self.stack[-1]

    def key(self, k):
        if type(k) not in _KEY_TYPES:
            self.fail(f"a dict key is {_show(k)}, expected a str, int, float, bool or None")
        return k

    def charge(self, nbytes: int, what: str) -> None:
        if self.allocated + nbytes > self.max_bytes:
            self.fail(f"{what} would bring the arrays to {self.allocated + nbytes} bytes, more than "
                      f"max_bytes={self.max_bytes}; {CAP_HINT}")
        self.allocated += nbytes

    # --- opcodes that are not a plain push -------------------------------------------------------
    def op_PROTO(self, arg):
        if not 0 <= arg <= 5:
            self.fail(f"protocol {arg}, expected 0..5")

    def op_FRAME(self, _):
        pass

    def op_MARK(self, _):
        self.metastack.append(self.stack)
        self.stack = []

    def op_POP(self, _):
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def op_POP_MARK(self, _):
        self.pop_mark()

    def op_TUPLE(self, _):
        items = tuple(self.pop_mark())  # before naming self.stack: pop_mark replaces it
        self.stack.append(items)

    def op_LIST(self, _):
        items = self.pop_mark()
        self.stack.append(items)

    def op_APPEND(self, _):
        value = self.pop()
        self.top(list).append(value)

    def op_APPENDS(self, _):
        items = self.pop_mark()
        self.top(list).extend(items)

    def op_DICT(self, _):
        items = self.pop_mark()
        self.stack.append(self.fill({}, items))

    def op_SETITEM(self, _):
        value, k = self.pop(), self.pop()
        self.top(dict)[self.key(k)] = value

    def op_SETITEMS(self, _):
        items = self.pop_mark()
        self.fill(self.top(dict), items)

    def fill(self, target: dict, items: list) -> dict:
        if len(items) % 2:
            self.fail(f"{self.opname} over {len(items)} values, expected key/value pairs")
        for k, v in zip(items[::2], items[1::2], strict=True):
            target[self.key(k)] = v
        return target

    def op_GLOBAL(self, arg: str):
        module, _, name = arg.partition(" ")
        self.name(module, name)

    def op_STACK_GLOBAL(self, _):
        name, module = self.pop(), self.pop()
        if type(module) is not str or type(name) is not str:
            self.fail(f"STACK_GLOBAL of {_show(module)}, {_show(name)}, expected two strings")
        self.name(module, name)

    def name(self, module: str, name: str):
        role = GLOBALS.get((module, name))
        if role is None:
            self.fail(f"the pickle asks for {_show(module + '.' + name)}; only numpy arrays of plain numbers "
                      "(in dicts, lists and tuples) are read, so nothing was imported or run")
        self.stack.append(_Name(f"{module}.{name}", role))

    def op_REDUCE(self, _):
        args, func = self.pop(), self.pop()
        if type(func) is not _Name:
            self.fail(f"REDUCE calls {_show(func)}, expected one of numpy's array reconstructors")
        if type(args) is not tuple:
            self.fail(f"REDUCE of {func.qualname} with arguments {_show(args)}, expected a tuple")
        self.stack.append(getattr(self, "call_" + func.role)(func.qualname, args))

    def op_BUILD(self, _):
        state = self.pop()
        obj = self.stack[-1] if self.stack else None
        if type(obj) is _Dtype and not obj.built:
            self.build_dtype(obj, state)
        elif type(obj) is _Array and obj.array is None:
            self.build_array(obj, state)
        else:
            self.fail(f"BUILD on {_show(obj)}, expected a numpy array or dtype being reconstructed")


class _Resolver:
    """Replaces the builders' placeholders by their arrays, checking that the result is a tree of
    dicts, lists and tuples over numeric arrays, numbers and strings (shared parts resolved once)."""

    def __init__(self, where: str):
        self.where = where
        self.done: dict[int, object] = {}
        self.open: set[int] = set()

    def fail(self, path: str, what: str):
        raise WeightsFormatError(f"{self.where}: {what} at {path or 'the top level'}; only numeric numpy "
                                 "arrays, numbers and strings in dicts, lists and tuples are read")

    def resolve(self, obj, path: str = "", depth: int = 0):
        if type(obj) in _KEY_TYPES or type(obj) is np.ndarray or isinstance(obj, (np.number, np.bool_)):
            return obj  # arrays and numpy scalars here were made by the builders
        if type(obj) is _Array:
            if obj.array is None:
                self.fail(path, "an array that was never filled (no BUILD)")
            return obj.array
        if type(obj) not in (dict, list, tuple):
            self.fail(path, _show(obj))
        if id(obj) in self.done:
            return self.done[id(obj)]
        if id(obj) in self.open:
            self.fail(path, f"a {type(obj).__name__} that contains itself")
        if depth >= MAX_DEPTH:
            self.fail(path, f"nesting deeper than {MAX_DEPTH} levels")
        self.open.add(id(obj))
        if type(obj) is dict:
            out = {k: self.resolve(v, f"{path}[{_show(k)}]", depth + 1) for k, v in obj.items()}
        else:
            out = type(obj)(self.resolve(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj))
        self.open.discard(id(obj))
        self.done[id(obj)] = out
        return out


def safe_load(source: str | os.PathLike | bytes, *, max_bytes: int = MAX_BYTES):
    """Read a pickle that may hold only plain numeric numpy arrays in dicts, lists and tuples.

    Nothing in the file is imported or called (see the module docstring for the opcodes read). No
    sha256 is checked: this is the way to read a weights file of one's own. Peak memory is about
    twice the arrays' bytes (the bytes read from the file, and the arrays copied from them).

    Args:
      source: a file, or the pickle's bytes.
      max_bytes: cap on the file's size and on the arrays' total bytes (default 1 GiB).

    Returns:
      The file's dicts, lists and tuples, holding new, writable numpy arrays (bool, int, uint,
      float or complex), numpy scalars, Python numbers and strings.

    Raises:
      WeightsFormatError: anything else: a global other than numpy's array reconstruction, an object
        or structured dtype, bytes that do not fill the shape, a size over ``max_bytes``, truncation,
        garbage, nesting deeper than `MAX_DEPTH`, a path that is missing or not a regular file; the
        message names the file and what was wrong.
    """
    if isinstance(source, (bytes, bytearray)):
        where = "safe_load: <bytes>"
        _check_size(where, len(source), max_bytes)
        return _Reader(where, max_bytes).load(_Source(io.BytesIO(source), len(source)))
    where = f"safe_load: {source}"
    try:
        with open_regular(source, where="safe_load", error=WeightsFormatError) as f:
            size = os.fstat(f.fileno()).st_size
            _check_size(where, size, max_bytes)
            return _Reader(where, max_bytes).load(_Source(f, size))
    except OSError as e:  # missing (DataNotFoundError) or unreadable
        raise WeightsFormatError(str(e) if isinstance(e, DataNotFoundError) else f"{where}: {e}") from e


def _check_size(where: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise WeightsFormatError(f"{where}: empty, expected a pickle of numpy arrays")
    if size > max_bytes:
        raise WeightsFormatError(f"{where}: {size} bytes, more than max_bytes={max_bytes}; {CAP_HINT}")

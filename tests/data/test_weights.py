"""safe_load / load_book_weights: every protocol numpy writes loads; nothing hostile is imported, run or
allocated; every failure is one `WeightsFormatError` naming the file and what was expected.

Hostile pickles are assembled opcode by opcode below (`_array`, `_dtype`, ...), so each test shows the
exact bytes an attacker would write. The books' own files are checked when $FNN_DATA_DIR is set.
"""

import hashlib
import importlib
import os
import pickle
import re
import struct
import sys
import time
import tracemalloc

import numpy as np
import pytest

from fnn.data import (
    ChecksumError,
    WeightsChecksumError,
    WeightsFormatError,
    load_book_weights,
    safe_load,
    safe_pickle,
    weights,
)

download_module = importlib.import_module("fnn.data.download")  # fnn.data.download is also a function

PARAMS = {
    "W1": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "b1": np.linspace(-1, 1, 4, dtype=np.float32),
    "list": [np.arange(-3, 3, dtype=np.int64), np.array([0.5, -2.0, 65504.0], np.float16)],
    "tuple": (np.array([True, False, True]),),
}


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


# --- a tiny pickle assembler (protocol 2/3 opcodes) ------------------------------------------------
P3 = b"\x80\x03"


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s):
    return b"X" + struct.pack("<I", len(s.encode())) + s.encode()


def _bytes(b):
    return b"B" + struct.pack("<I", len(b)) + b


def _int(n):
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)  # BININT
    raw = n.to_bytes(n.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _tuple(*parts):
    return b"(" + b"".join(parts) + b"t"


def _dtype(descr, order="<", state=None):
    state = state if state is not None else _tuple(_int(3), _str(order), b"NNN", _int(-1), _int(-1), _int(0))
    return _global("numpy", "dtype") + _str(descr) + b"\x89\x88\x87R" + state + b"b"


def _array(shape, descr, raw, order="<"):
    empty = _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + _int(0) + b"\x85"
    empty += b"C\x01b\x87R"  # _reconstruct(ndarray, (0,), b'b')
    state = _tuple(_int(1), _tuple(*(_int(d) for d in shape)), _dtype(descr, order), b"\x89", _bytes(raw))
    return empty + state + b"b"


def _refused(tmp_path, data, *fragments, name="w.pkl", **kwargs):
    """Write ``data``, `safe_load` it: one WeightsFormatError naming the file and each fragment."""
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(WeightsFormatError) as info:
        safe_load(path, **kwargs)
    message = str(info.value)
    missing = [f for f in (str(path), *fragments) if f not in message]
    assert not missing, f"the message lacks {missing}:\n{message}"
    return message


def test_assembler_matches_pickle():
    data = P3 + _array((2, 3), "f8", np.arange(6.0).tobytes()) + b"."
    np.testing.assert_array_equal(pickle.loads(data), np.arange(6.0).reshape(2, 3))
    _assert_same(safe_load(data), np.arange(6.0).reshape(2, 3))


# --- every protocol numpy writes loads ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
def test_every_protocol_round_trips(protocol, tmp_path):
    data = pickle.dumps(PARAMS, protocol=protocol)
    _assert_same(safe_load(data), PARAMS)
    (tmp_path / "p.pkl").write_bytes(data)
    back = safe_load(tmp_path / "p.pkl")
    _assert_same(back, PARAMS)
    back["W1"][0, 0] = 1.0  # new, writable arrays


@pytest.mark.parametrize("protocol", range(6))
def test_layouts_byte_orders_scalars_and_empty_arrays(protocol):
    obj = [np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(4, dtype=">i4"), np.zeros((0, 3)),
           np.arange(10.0)[::3], np.array([1 + 2j], np.complex64), np.arange(3, dtype=np.uint16),
           np.float64(2.5), np.int8(-3), {"nested": ({"x": np.ones((2, 2, 2), np.float16)},)}, 7, "text", None]
    back = safe_load(pickle.dumps(obj, protocol=protocol))
    assert back[0].flags.f_contiguous and back[1].dtype == np.dtype(">i4")
    for a, b in zip(obj[:8], back[:8], strict=True):
        assert type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b)
    _assert_same(back[8], obj[8])
    assert back[9:] == [7, "text", None]


def test_python2_style_pickle_with_latin1_strings():
    # Python 2 wrote the raw bytes as a str (SHORT_BINSTRING); Python 3 reads it as latin-1 text.
    raw = np.array([1.0, -2.0]).tobytes()
    state = _tuple(_int(1), _tuple(_int(2)), _dtype("f8"), b"\x89", b"U" + bytes([len(raw)]) + raw)
    data = (b"\x80\x02" + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + _int(0) + b"\x85" + b"U\x01b" + b"\x87R" + state + b"b.")
    np.testing.assert_array_equal(safe_load(data), [1.0, -2.0])


# --- nothing hostile is imported, called or read -----------------------------------------------------


@pytest.fixture
def no_pickle_machinery(monkeypatch):
    """Make any use of pickle's own unpickler, or any array built from bytes, fail loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError("safe_load used pickle's machinery or built an array")

    for name in ("Unpickler", "_Unpickler", "load", "loads"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "frombuffer", forbidden)


def test_forged_object_dtype_refused_before_its_bytes(tmp_path, no_pickle_machinery):
    forged = struct.pack("<QQ", 0xDEADBEEF, 0x41414141)  # would become two object pointers
    data = P3 + _array((2,), "O8", forged, order="|") + b"."
    message = _refused(tmp_path, data, "'O8'", "not a plain number type", "bool, int, uint, float or complex")
    byte = int(message.rsplit("(byte ", 1)[1].split(",")[0])
    assert byte < data.index(forged), "the refusal came after the forged bytes were reached"


def test_uninitialised_array_pickle_refused(tmp_path, no_pickle_machinery):
    # numpy.ndarray((100000,), dtype('f8')): what the old allow-list let through as "weights".
    data = P3 + _global("numpy", "ndarray") + _int(100000) + b"\x85" + _dtype("f8") + b"\x86R."
    _refused(tmp_path, data, "numpy.ndarray((100000,), dtype '<f8')", "uninitialised memory", "refused")


def test_a_global_is_never_imported_or_called(tmp_path):
    calls = []
    sentinel = type(sys)("fnn_test_sentinel")
    sentinel.record = lambda: calls.append(1) or {"W": np.ones(1)}
    data = P3 + _global("fnn_test_sentinel", "record") + b")R."
    sys.modules["fnn_test_sentinel"] = sentinel
    try:
        pickle.loads(data)  # plain pickle runs it
        assert calls == [1]
        _refused(tmp_path, data, "asks for 'fnn_test_sentinel.record'", "nothing was imported or run")
        assert calls == [1]
    finally:
        del sys.modules["fnn_test_sentinel"]
    never = P3 + _global("fnn_module_that_must_not_be_imported", "x") + b")R."
    _refused(tmp_path, never, "fnn_module_that_must_not_be_imported.x")
    assert "fnn_module_that_must_not_be_imported" not in sys.modules


@pytest.mark.parametrize("make, fragments, protocols", [
    (lambda: np.zeros(2, dtype=[("a", "f4"), ("b", "i2")]), ["'V6'", "structured"], (2, 4)),
    (lambda: np.array(["ab", "c"]), ["'U2'", "string"], (2, 4)),
    (lambda: np.array(["2020-01-01"], "M8[D]"), ["'M8'", "datetime"], (2, 4)),
    (lambda: np.array([1, None], dtype=object), ["'O8'", "object"], (2, 4)),
    (lambda: np.zeros(2, "V8"), ["'V8'", "void"], (2, 4)),
    (lambda: np.ma.masked_array([1.0, 2.0], mask=[0, 1]), ["numpy.ma.core._mareconstruct"], (2, 4)),
    (lambda: np.asmatrix(np.ones((1, 1))), ["asks for 'numpy.matrix'"], (2, 4)),
    (lambda: {1, 2}, ["opcode EMPTY_SET", "only plain numeric arrays"], (4,)),
    (lambda: {1, 2}, ["asks for '__builtin__.set'"], (2,)),
    (lambda: np.dtype("f4"), ["dtype '<f4' at the top level"], (2, 4)),
    (lambda: {"a": b"xyz"}, ["<3 bytes> at ['a']", "only numeric numpy arrays, numbers and strings"], (2, 4)),
], ids=["structured", "unicode", "datetime", "object", "void", "masked", "matrix", "set", "set protocol 2",
        "bare dtype", "bytes value"])
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_what_is_not_a_plain_numeric_array_is_refused(make, fragments, protocols, tmp_path):
    for protocol in protocols:
        _refused(tmp_path, pickle.dumps(make(), protocol=protocol), *fragments)


def test_out_of_band_buffer_refused(tmp_path):
    data = pickle.dumps(np.ones(4), protocol=5, buffer_callback=lambda buf: False)
    _refused(tmp_path, data, "out-of-band buffer", "bytes are not in the file")


@pytest.mark.parametrize("shape, raw, fragments", [
    ((4,), bytes(16), ["shape (4,) of float64 needs 32 bytes, the file holds 16"]),
    ((2,), bytes(24), ["shape (2,) of float64 needs 16 bytes, the file holds 24"]),
    ((-1,), bytes(8), ["shape (-1,)", "integers >= 0"]),
    ((1,) * 40, bytes(8), ["at most 32 integers"]),
], ids=["too few bytes", "too many bytes", "negative dim", "too many dims"])
def test_bytes_must_fill_the_shape_exactly(shape, raw, fragments, tmp_path):
    _refused(tmp_path, P3 + _array(shape, "f8", raw) + b".", *fragments)


def test_allocation_bomb_refused_before_allocating(tmp_path):
    data = P3 + _array((2**31, 2**31), "f8", bytes(8)) + b"."
    tracemalloc.start()
    try:
        _refused(tmp_path, data, "needs 36893488147419103232 bytes", "more than max_bytes=1073741824",
                 "pass max_bytes=")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


def test_protocol5_allocation_bomb_refused(tmp_path):
    data = bytearray(pickle.dumps(np.zeros(1), protocol=5))
    at = data.index(b"K\x01\x85")  # shape (1,) as BININT1 1, TUPLE1
    data[at:at + 3] = b"\x8a\x06" + (10**12).to_bytes(6, "little") + b"\x85"  # LONG1 10**12, TUPLE1
    _refused(tmp_path, bytes(data), "shape (1000000000000,) of float64 needs 8000000000000 bytes")


def test_memo_reuse_cannot_multiply_the_bytes(tmp_path):
    raw = bytes(1 << 20)
    first = _array((1 << 17,), "f8", raw)
    memo_put = b"q\x00"  # BINPUT 0 right after the bytes
    first = first.replace(_bytes(raw), _bytes(raw) + memo_put)
    again = first.replace(_bytes(raw) + memo_put, b"h\x00")  # BINGET 0: the same 1 MiB again
    data = P3 + b"(" + first + again * 19 + b"l."
    _refused(tmp_path, data, "more than max_bytes=8388608", name="bomb.pkl", max_bytes=8 << 20)
    assert len(safe_load(data, max_bytes=64 << 20)) == 20  # the keyword raises the cap


def test_file_larger_than_the_cap(tmp_path):
    _refused(tmp_path, pickle.dumps(PARAMS), "more than max_bytes=100", max_bytes=100)


def test_deep_nesting_refused_quickly(tmp_path):
    depth = 100_000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."  # 100000 lists, each in the one before
    start = time.process_time()  # CPU time: a loaded machine does not make it fail
    _refused(tmp_path, data, "nesting deeper than 64 levels")
    assert time.process_time() - start < 5


def test_unclosed_marks_and_cycles_refused(tmp_path):
    _refused(tmp_path, b"\x80\x02" + b"(" * 100_000 + b"N.", "100000 open MARKs", "expected exactly one value")
    cycle = b"\x80\x02]q\x00h\x00a."  # a list appended to itself
    _refused(tmp_path, cycle, "a list that contains itself at [0]")


def test_truncation_at_every_byte_is_one_error(tmp_path):
    small = {"W": np.ones((2, 2), np.float32), "list": [np.arange(2)], "tuple": (np.array([True]),)}
    for protocol in (0, 2, 5):
        data = pickle.dumps(small, protocol=protocol)
        for end in range(len(data)):
            with pytest.raises(WeightsFormatError, match="<bytes>: (empty|not a complete pickle at byte)"):
                safe_load(data[:end])
        for end in range(1, len(data), 97):  # a file cut short is named
            _refused(tmp_path, data[:end], f"not a complete pickle at byte {end} of {end}", "truncated")


@pytest.mark.parametrize("data, fragments", [
    (b"PK\x03\x04\x14\x00", ["not a complete pickle", "truncated, damaged or not a pickle"]),
    (b"hello world", ["memo index 101 was never stored"]),
    (b"\x80\x02\xff", ["opcode b'\\xff' unknown"]),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), ["not a complete pickle"]),
    (pickle.dumps(PARAMS, protocol=4) + b"abc", ["3 bytes follow STOP"]),
    (b"\x80\x02}]Ns.", ["a dict key is a list of 0 items", "expected a str, int"]),
    (b"\x80\x02]q\x00h\x05.", ["memo index 5 was never stored"]),
    (b"(Np-1\n.", ["memo index -1"]),
    (b"\x80\x02]]R.", ["REDUCE calls a list of 0 items"]),
    (b"\x80\x02N)b.", ["BUILD on None"]),
    (b"\x80\x02" + _global("_codecs", "encode") + _str("abc") + _str("utf-8") + b"\x86R.",
     ["expected (text, 'latin1')"]),
    (b"\x80\x02" + _global("_codecs", "encode") + _str("\u20ac") + _str("latin1") + b"\x86R.",
     ["above U+00FF"]),
    (P3 + b"\x8b\x00\x10\x00\x00" + bytes(4095) + b"\x01" + b"\x85" + _dtype("f8") + b"\x89" + b".",
     ["stack"]),
], ids=["zip", "text", "invalid load key", "random bytes", "trailing bytes", "unhashable key", "unknown memo",
        "negative memo", "reduce a list", "build None", "encode utf-8", "encode non-latin1", "huge int"])
def test_garbage_is_one_error(data, fragments, tmp_path):
    _refused(tmp_path, data, *fragments)


def test_huge_int_in_a_shape_is_described_not_printed(tmp_path):
    huge = b"\x8b" + struct.pack("<i", 4096) + bytes(4095) + b"\x01"  # LONG4: a 32768-bit int
    data = P3 + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + _int(0)
    data += b"\x85C\x01b\x87R" + _tuple(_int(1), huge + b"\x85", _dtype("f8"), b"\x89", _bytes(b"")) + b"b."
    _refused(tmp_path, data, "shape (<int of 32761 bits>,)", "needs <int of 32764 bits> bytes")


@pytest.mark.parametrize("state, fragments", [
    (_tuple(_int(3), _str("|"), b"NNN", _int(-1), _int(-1), _int(0)), ["byte order '|' for float64"]),
    (_tuple(_int(3), _str("<"), b"NNN", _int(-1), _int(-1), _int(63)), ["expected (3, byteorder"]),
    (_tuple(_int(4), _str("<")), ["dtype state (4, '<')"]),
], ids=["byte order", "object flags", "version"])
def test_dtype_state_must_be_a_plain_number_type(state, fragments, tmp_path):
    data = P3 + _dtype("f8", state=state) + b"."
    _refused(tmp_path, data, *fragments)


def test_an_array_where_a_flag_belongs_is_refused_not_compared(tmp_path):
    # a real ndarray (protocol 5's _frombuffer): its == is elementwise, and the truth of that would raise
    two = _global("numpy.core.numeric", "_frombuffer") + _tuple(_bytes(bytes(16)), _dtype("f8"), _tuple(_int(2)),
                                                                 _str("C")) + b"R"
    empty = _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + two
    _refused(tmp_path, P3 + empty + b"C\x01b\x87R.", "expected numpy's own (numpy.ndarray, (0,), b'b')")
    flags = _global("numpy", "dtype") + _str("f8") + two + b"\x88\x87R."
    _refused(tmp_path, P3 + flags, "is not a plain number type")
    state = _tuple(_int(3), two, b"NNN", _int(-1), _int(-1), _int(0))
    _refused(tmp_path, P3 + _dtype("f8", state=state) + b".", "byte order an array for float64")


def test_numpy1_module_names_load():
    data = bytearray(pickle.dumps([np.arange(3.0), np.float32(2)], protocol=5))
    assert data[2:3] == b"\x95"  # FRAME: dropped, since the renames change its length
    del data[2:11]
    for new in (b"numeric", b"multiarray"):
        old = b"\x8c" + bytes([len(b"numpy._core." + new)]) + b"numpy._core." + new
        data = data.replace(old, b"\x8c" + bytes([len(b"numpy.core." + new)]) + b"numpy.core." + new)
    assert b"numpy._core" not in data
    back = safe_load(bytes(data))
    np.testing.assert_array_equal(back[0], np.arange(3.0))
    assert back[1] == np.float32(2) and type(back[1]) is np.float32


def test_builds_out_of_order_refused(tmp_path):
    one = _array((1,), "f8", bytes(8))
    state = _tuple(_int(1), _tuple(_int(1)), _dtype("f8"), b"\x89", _bytes(bytes(8)))
    _refused(tmp_path, P3 + one + state + b"b.", "BUILD on an array")  # a second BUILD
    unfilled = _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + _int(0)
    _refused(tmp_path, P3 + unfilled + b"\x85C\x01b\x87R.", "an array that was never filled")


def test_too_many_opcodes(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_pickle, "MAX_OPCODES", 100)
    _refused(tmp_path, b"\x80\x02(" + b"N" * 200 + b"l.", "more than 100 opcodes")


def test_paths_that_are_not_regular_files(tmp_path):
    (tmp_path / "dir.pkl").mkdir()
    os.mkfifo(tmp_path / "fifo.pkl")
    os.symlink("loop.pkl", tmp_path / "loop.pkl")
    os.symlink("nowhere.pkl", tmp_path / "dangling.pkl")
    for name, fragment in [("dir.pkl", "is a directory, expected a regular file"),
                           ("fifo.pkl", "is a FIFO (named pipe), expected a regular file"),
                           ("loop.pkl", "is a symbolic link loop"),
                           ("dangling.pkl", "is a broken symbolic link to nowhere.pkl"),
                           ("missing.pkl", "does not exist")]:
        with pytest.raises(WeightsFormatError, match=re.escape(f"{tmp_path / name} {fragment}")):
            safe_load(tmp_path / name)
    _refused(tmp_path, b"", "empty, expected a pickle")


# --- the books' files: verified wherever they are found ------------------------------------------------


@pytest.fixture
def book_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "book").mkdir()
    return tmp_path / "book"


def test_a_changed_book_file_is_refused_and_can_be_loaded_on_purpose(book_dir):
    path = book_dir / "sample_weight.pkl"
    path.write_bytes(pickle.dumps(PARAMS))
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    for call in (lambda: load_book_weights("sample_weight.pkl", download=False), lambda: load_book_weights(path)):
        with pytest.raises(WeightsChecksumError) as info:
            call()
        message = str(info.value)
        for fragment in (str(path), f"sha256 {got}", weights.BOOK_FILES["sample_weight.pkl"][1],
                         "verify=False", "safe_load"):
            assert fragment in message, message
        assert isinstance(info.value, ChecksumError) and isinstance(info.value, WeightsFormatError)
    assert path.exists()  # left in place
    _assert_same(load_book_weights(path, verify=False), PARAMS)
    _assert_same(load_book_weights("sample_weight.pkl", download=False, verify=False), PARAMS)
    _assert_same(safe_load(path), PARAMS)


def test_own_file_under_another_name_needs_verify_false(tmp_path):
    path = tmp_path / "my_params.pkl"
    path.write_bytes(pickle.dumps(PARAMS))
    with pytest.raises(WeightsFormatError, match="my_params.pkl is not one of the book's files.*verify=False"):
        load_book_weights(path)
    _assert_same(load_book_weights(path, verify=False), PARAMS)


def test_book_path_that_is_a_directory(book_dir):
    (book_dir / "Rnnlm.pkl").mkdir()
    with pytest.raises(WeightsFormatError, match=r"Rnnlm.pkl is a directory, expected a regular file"):
        load_book_weights("Rnnlm.pkl", download=False)


def test_verification_is_cached_by_size_and_mtime(book_dir, monkeypatch):
    path = book_dir / "mine.pkl"
    path.write_bytes(pickle.dumps(PARAMS))
    monkeypatch.setitem(weights.BOOK_FILES, "mine.pkl", ("file:///none", hashlib.sha256(path.read_bytes()).hexdigest()))
    hashed = []
    real = hashlib.sha256
    monkeypatch.setattr(download_module.hashlib, "sha256", lambda *a: hashed.append(1) or real(*a))
    for _ in range(3):
        _assert_same(load_book_weights("mine.pkl", download=False), PARAMS)
    assert len(hashed) == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: hashed again, still good
    load_book_weights("mine.pkl", download=False)
    assert len(hashed) == 2
    path.write_bytes(pickle.dumps({"W1": np.zeros(3)}))  # changed: hashed again, refused
    with pytest.raises(WeightsChecksumError, match="mine.pkl has sha256"):
        load_book_weights("mine.pkl", download=False)
    assert len(hashed) == 3


BOOK_SHAPES = {
    "sample_weight.pkl": {"W1": (784, 50), "b1": (50,), "W3": (100, 10)},
    "simple_convnet_params.pkl": {"W1": (30, 1, 5, 5), "W2": (4320, 100), "W3": (100, 10)},
    "deep_convnet_params.pkl": {"W1": (16, 1, 3, 3), "W7": (1024, 50), "W8": (50, 10)},
    "Rnnlm.pkl": {0: (10000, 100), 1: (100, 400), 5: (10000,)},
    "AttentionSeq2seq.pkl": {0: (59, 16), 2: (256, 1024), 9: (59,)},
}


@pytest.mark.data
@pytest.mark.parametrize("name", list(BOOK_SHAPES))
def test_book_files_load_as_plain_pickle_does(name, data_dir, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(data_dir))
    path = data_dir / "book" / name
    if not path.is_file():
        pytest.skip(f"needs {path}")
    got = load_book_weights(name, download=False)
    with open(path, "rb") as f:
        _assert_same(got, pickle.load(f))  # the file is the published one (sha256-verified)
    for key, shape in BOOK_SHAPES[name].items():
        assert got[key].shape == shape
    if name.endswith("seq2seq.pkl") or name == "Rnnlm.pkl":
        assert isinstance(got, list) and all(a.dtype == np.float16 for a in got)

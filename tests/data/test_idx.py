"""read_idx / write_idx: round trips for every IDX dtype, and clear errors for broken files."""

import gzip
import re
import struct

import numpy as np
import pytest

from fnn.data import IdxFormatError, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    x = rng.uniform(info.min / 2, info.max / 2, size=(3, 4, 5)).astype(dtype)
    path = write_idx(tmp_path / ("x.idx.gz" if compress else "x.idx"), x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    y = read_idx(path)
    assert y.dtype == np.dtype(dtype) and y.dtype.isnative
    assert y.shape == x.shape
    np.testing.assert_array_equal(y, x)
    y[0, 0, 0] = 0  # writable


def test_gzip_detected_by_magic_not_extension(tmp_path):
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_raw = write_idx(tmp_path / "a.gz", x, compress=False)
    raw_named_gz = write_idx(tmp_path / "a.idx", x, compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), x)
    np.testing.assert_array_equal(read_idx(raw_named_gz), x)


def test_header_layout_matches_mnist(tmp_path):
    labels = np.array([5, 0, 4], dtype=np.uint8)
    raw = write_idx(tmp_path / "labels.idx", labels).read_bytes()
    assert raw[:8] == bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3)
    images = np.zeros((2, 28, 28), np.uint8)
    raw = write_idx(tmp_path / "images.idx", images).read_bytes()
    assert raw[:4] == bytes.fromhex("00000803") and len(raw) == 16 + 2 * 784


def test_gzip_is_reproducible(tmp_path):
    x = np.arange(100, dtype=np.int32)
    a = write_idx(tmp_path / "a.gz", x).read_bytes()
    b = write_idx(tmp_path / "b.gz", x).read_bytes()
    assert a == b


def _write(tmp_path, name, data, compress=False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _match(path, text):
    return re.escape(str(path)) + ".*" + text


def test_nonzero_magic(tmp_path):
    path = _write(tmp_path, "bad-magic", b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(IdxFormatError, match=_match(path, "expected 0000")):
        read_idx(path)


def test_unknown_dtype_code(tmp_path):
    path = _write(tmp_path, "bad-code.gz", b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00", 1)
    with pytest.raises(IdxFormatError, match=_match(path, "dtype code is 0x0A, expected one of")):
        read_idx(path)


def test_zero_ndim(tmp_path):
    path = _write(tmp_path, "ndim0", b"\x00\x00\x08\x00")
    with pytest.raises(IdxFormatError, match=_match(path, "ndim is 0")):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = _write(tmp_path, "short-header", b"\x00\x00\x08\x03" + struct.pack(">I", 60000))
    with pytest.raises(IdxFormatError, match=_match(path, "header is 8 bytes, expected 16")):
        read_idx(path)
    path = _write(tmp_path, "tiny", b"\x00\x00")
    with pytest.raises(IdxFormatError, match=_match(path, "2 bytes, expected at least")):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_truncated_payload(tmp_path, compress):
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 28, 28)
    path = _write(tmp_path, "train-images-idx3-ubyte.gz", header + bytes(1000), compress)
    expected = "payload has 1000 bytes, expected 47040000 \\(60000x28x28 uint8\\)"
    with pytest.raises(IdxFormatError, match=_match(path, expected)):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((2, 3), np.int16))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(IdxFormatError, match=_match(path, "payload has 13 bytes, expected 12")):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "x.idx.gz", np.arange(1000, dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(IdxFormatError, match=_match(path, "gzip stream is corrupt or truncated")):
        read_idx(path)


def test_corrupt_gzip_stream(tmp_path):
    data = bytearray(write_idx(tmp_path / "x.idx.gz", np.arange(1000, dtype=np.int32)).read_bytes())
    data[20:40] = bytes(20)
    path = _write(tmp_path, "corrupt.gz", bytes(data))
    with pytest.raises(IdxFormatError, match=_match(path, "gzip stream is corrupt")):
        read_idx(path)


def test_idx_format_error_is_value_error():
    assert issubclass(IdxFormatError, ValueError)


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="write_idx: array.dtype is float16"):
        write_idx(tmp_path / "x.idx", np.zeros(3, np.float16))
    with pytest.raises(ValueError, match="write_idx: array.ndim is 0"):
        write_idx(tmp_path / "x.idx", np.uint8(3))

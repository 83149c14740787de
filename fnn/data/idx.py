"""The IDX file format: LeCun's container for MNIST (and Fashion-MNIST), raw or gzip-compressed.

An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension, then the
array's elements in C order, big-endian::

    magic = 0x00 0x00 <dtype code> <ndim>
    dims  = ndim x uint32 (big-endian)
    data  = prod(dims) x itemsize bytes

dtype codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
MNIST's images are ``(N, 28, 28)`` uint8 and its labels ``(N,)`` uint8 (DLFS1 §3.6.1).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fnn.data.download import DataFormatError, open_regular

__all__ = ["MAX_BYTES", "IdxFormatError", "read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"

# dtype code -> big-endian numpy dtype as stored in the file.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# native dtype (byte order ignored) -> dtype code.
_KIND_SIZE_TO_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}


MAX_BYTES = 1 << 30  # default cap on the payload a header may declare
_CHUNK = 1 << 20  # bytes inflated per step


class IdxFormatError(DataFormatError):
    """A file is not a valid IDX file (bad header, wrong payload size, broken gzip stream, not a
    regular file)."""


def _describe(dims: tuple[int, ...], dtype: np.dtype) -> str:
    """`(60000, 28, 28), uint8` -> ``'60000x28x28 uint8'``."""
    return "x".join(str(d) for d in dims) + " " + dtype.newbyteorder("=").name


def read_idx(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip, told apart by the gzip magic bytes, not the extension).

    The header is read and checked first; a gzip stream is then inflated in 1 MiB steps and only
    up to the size the header declares, so a gzip bomb fails after at most that many bytes (a
    mismatch with the header is an error), never by exhausting memory.

    Args:
      path: the file, e.g. ``train-images-idx3-ubyte.gz``.
      max_bytes: the largest payload a header may declare (default 1 GiB; MNIST's train images
        are 47 MB).

    Returns:
      A new, writable array of shape ``dims`` from the header, in native byte order:
      MNIST images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8 (DLFS1 §3.6.1).

    Raises:
      IdxFormatError: the path is not a regular file, the gzip stream is broken or truncated, the
        header is invalid or declares more than ``max_bytes``, or the payload size is not
        ``prod(dims) * itemsize``; the message names the file, the expected and the found value.
      DataNotFoundError: nothing is at ``path``.
    """
    path = Path(path)
    where = f"read_idx: {path}"
    with open_regular(path, where="read_idx", error=IdxFormatError) as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(2) != _GZIP_MAGIC:
            f.seek(0)
            return _read_payload(f, where, size, max_bytes)
        f.seek(0)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                return _read_payload(stream, where, None, max_bytes)
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise IdxFormatError(
                f"{where}: gzip stream is corrupt or truncated ({e}); "
                f"expected a complete gzip file, found {size} compressed bytes"
            ) from e


def _read_exact(stream: BinaryIO, n: int) -> bytearray:
    """Up to ``n`` bytes (fewer only at the end of the stream), read in steps of `_CHUNK`."""
    out = bytearray()
    while len(out) < n and (chunk := stream.read(min(_CHUNK, n - len(out)))):
        out += chunk
    return out


def _read_payload(stream: BinaryIO, where: str, size: int | None, max_bytes: int) -> np.ndarray:
    """Check the header, then read exactly the payload it declares; ``size`` is the file's size
    for a raw file, ``None`` for a gzip stream (whose inflated size is unknown until read)."""
    head = _read_exact(stream, 4)
    if len(head) < 4:
        raise IdxFormatError(
            f"{where}: file has {len(head)} bytes, expected at least a 4-byte header"
        )
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0:
        raise IdxFormatError(
            f"{where}: magic number starts with bytes {head[:2].hex()}, expected 0000 "
            "(not an IDX file)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise IdxFormatError(f"{where}: dtype code is 0x{code:02X}, expected one of {known}")
    if ndim < 1:
        raise IdxFormatError(f"{where}: ndim is 0, expected at least 1")
    header = 4 + 4 * ndim
    raw_dims = _read_exact(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IdxFormatError(
            f"{where}: header is {4 + len(raw_dims)} bytes, expected {header} (4 + 4 x ndim={ndim})"
        )
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = _CODE_TO_DTYPE[code]
    expected = math.prod(dims) * dtype.itemsize
    if expected > max_bytes:
        raise IdxFormatError(
            f"{where}: header declares {_describe(dims, dtype)} = {expected} bytes, expected at most "
            f"max_bytes={max_bytes} (pass max_bytes= to read_idx to raise the cap)"
        )
    if size is not None and size - header != expected:  # a raw file: its size tells, before reading
        found = size - header
        raise IdxFormatError(
            f"{where}: payload has {found} bytes, expected {expected} ({_describe(dims, dtype)})"
        )
    payload = _read_exact(stream, expected)
    extra = len(_read_exact(stream, _CHUNK)) if len(payload) == expected else 0
    if len(payload) != expected or extra:
        found = f"{len(payload) + extra}" if extra < _CHUNK else f"at least {expected + extra}"
        raise IdxFormatError(
            f"{where}: payload has {found} bytes, expected {expected} ({_describe(dims, dtype)})"
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)  # writable: payload is a bytearray
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, the inverse of `read_idx`.

    Args:
      path: destination file.
      array: any shape with ``1 <= ndim <= 255``, dtype uint8, int8, int16, int32, float32 or
        float64 (stored big-endian as IDX requires).
      compress: gzip the file; ``None`` (default) means gzip when ``path`` ends in ``.gz``.
        The gzip header's mtime is 0, so equal arrays give byte-identical files.

    Returns:
      ``path`` as a `Path`.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_SIZE_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"write_idx: array.dtype is {array.dtype}, expected one of "
            "uint8, int8, int16, int32, float32, float64"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array.ndim is {array.ndim}, expected 1..255")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: array.shape is {array.shape}, each dim must be < 2**32")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    data = header + payload
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path

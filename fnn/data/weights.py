"""The books' pretrained weights, read with `safe_load`, which imports and calls nothing from a file.

The books ship trained parameters as pickles (DLFS1 ``ch03/sample_weight.pkl``, ``ch07/params.pkl``,
``ch08/deep_convnet_params.pkl``; DLFS2 ``ch06/Rnnlm.pkl``, ``ch08/AttentionSeq2seq.pkl``; MIT
licence, Koki Saitoh). They are read by the opcode-level reader of `fnn.data.safe_pickle` (its
docstring gives the design and the opcodes it reads), which yields only plain numeric numpy arrays.

Files are looked for in ``$FNN_DATA_DIR/book``, then the user cache ``~/.cache/fnn/book``; when
missing they are downloaded. A book file is checked against its sha256 (`BOOK_FILES`) wherever it
is found, not only after a download (the hash is remembered per path, size and mtime, so each file
is hashed once per process); a changed copy is refused with a `WeightsChecksumError` that says how to
load one's own file on purpose: ``load_book_weights(path, verify=False)`` or ``safe_load(path)``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from fnn.data.download import ChecksumError, DataFormatError, find_file, verify_file
from fnn.data.safe_pickle import MAX_BYTES, WeightsFormatError, safe_load
from fnn.files import data_dirs

__all__ = ["BOOK_FILES", "MAX_BYTES", "WeightsChecksumError", "WeightsFormatError", "book_file",
           "load_book_weights", "safe_load"]

_DLFS1 = "https://raw.githubusercontent.com/oreilly-japan/deep-learning-from-scratch/master/"
_DLFS2 = "https://raw.githubusercontent.com/oreilly-japan/deep-learning-from-scratch-2/master/"

BOOK_FILES = {  # local name -> (url, sha256)
    "sample_weight.pkl": (
        _DLFS1 + "ch03/sample_weight.pkl",
        "b7f55a27988ba34c3777b0f1bbd464817c8a4db855723e6ff26f703501917a13"),
    "simple_convnet_params.pkl": (
        _DLFS1 + "ch07/params.pkl",
        "a5da99cffddafcfe5e686e79dc0ec3a7cc993b58e64f483b50960511e5e85344"),
    "deep_convnet_params.pkl": (
        _DLFS1 + "ch08/deep_convnet_params.pkl",
        "4b7a27baee2037605afa94d3f514ca9fa9cc96623739328609765073cfd5f802"),
    "Rnnlm.pkl": (
        _DLFS2 + "ch06/Rnnlm.pkl",
        "d872e609e328834f86a0de9fea7b2968bd95a22ea748880ccaee96923e9a5903"),
    "AttentionSeq2seq.pkl": (
        _DLFS2 + "ch08/AttentionSeq2seq.pkl",
        "e648820a02cdaccc599ffb2aef65e785f49fb0cfc99d4c461a847fe231fedd54"),
}


class WeightsChecksumError(WeightsFormatError, ChecksumError):
    """A book file's sha256 is not the published one (both a `WeightsFormatError` and a
    `ChecksumError`)."""


def book_dirs() -> list[Path]:
    """Where the books' files are looked for, in order."""
    return data_dirs("book")


def book_file(name: str, *, download: bool = True, verify: bool = True) -> Path:
    """The path of the book's file `name` (a key of `BOOK_FILES`), downloading it when missing.

    Args:
      name: e.g. ``"sample_weight.pkl"``.
      download: fetch the file (sha256-checked) when no searched folder holds it.
      verify: check a file found on disk against its sha256 (once per process while it is unchanged).

    Raises:
      ValueError: ``name`` is not a key of `BOOK_FILES`.
      DataNotFoundError: no searched folder holds the file and it could not be downloaded.
      WeightsChecksumError: the file found is not the book's (changed, cut short or another file).
      WeightsFormatError: the path found is a directory, FIFO, symlink loop or other non-file.
    """
    if name not in BOOK_FILES:
        raise ValueError(f"book_file: name is {name!r}, expected one of {sorted(BOOK_FILES)}")
    url, sha256 = BOOK_FILES[name]
    with _as_weights_errors():
        return find_file(name, book_dirs(), url=url, sha256=sha256, where="book_file", download=download,
                         verify=verify, what=f"the book's {name} from {url}", opt_out=_opt_out(name))


@contextlib.contextmanager
def _as_weights_errors():
    """A checksum or format error of a weights file as its `WeightsFormatError` subclass."""
    try:
        yield
    except ChecksumError as e:
        raise WeightsChecksumError(str(e)) from None
    except DataFormatError as e:
        raise WeightsFormatError(str(e)) from None


def _opt_out(path) -> str:
    return f"load_book_weights('{path}', verify=False) or fnn.data.safe_load('{path}')"


def _verify(path: Path, name: str, where: str) -> None:
    url, sha256 = BOOK_FILES[name]
    with _as_weights_errors():
        verify_file(path, {"sha256": (sha256,)}, where=where, what=f"the book's {name} from {url}",
                    opt_out=_opt_out(path))


def load_book_weights(name: str | os.PathLike, *, download: bool = True, verify: bool = True,
                      max_bytes: int = MAX_BYTES):
    """The book's pretrained parameters as numpy arrays, read with `safe_load`.

    Args:
      name: a key of `BOOK_FILES` (looked for in ``$FNN_DATA_DIR/book``, then the user cache, then
        downloaded), or the path of a file (``os.PathLike``, or a string with a ``/``).
      download: fetch a missing book file.
      verify: check the file against the book's sha256. A path whose name is not one of
        `BOOK_FILES` cannot be checked: pass ``verify=False`` (or call `safe_load`) to read a weights
        file of your own.
      max_bytes: cap on the file's size and on the arrays' total (default 1 GiB).

    Returns:
      The file's dict (DLFS1) or list (DLFS2) of numpy arrays.

    Raises:
      WeightsFormatError: the file is not the book's (`WeightsChecksumError`) or not a pickle of
        plain numeric arrays; the message names the file and what was wrong.
      DataNotFoundError: a book file is neither on disk nor downloadable.
    """
    if isinstance(name, os.PathLike) or os.sep in name or "/" in name:
        path = Path(name)
        if verify:
            if path.name not in BOOK_FILES:
                raise WeightsFormatError(
                    f"load_book_weights: {path} is not one of the book's files {sorted(BOOK_FILES)}, so its "
                    f"sha256 cannot be checked; to load your own weights on purpose use "
                    f"load_book_weights('{path}', verify=False) or fnn.data.safe_load('{path}')")
            _verify(path, path.name, "load_book_weights")
    else:
        path = book_file(name, download=download, verify=verify)
    return safe_load(path, max_bytes=max_bytes)

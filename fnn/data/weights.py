"""The books' pretrained weights, loaded without ever running code from a pickle.

The books ship trained parameters as pickles (DLFS1 ``ch03/sample_weight.pkl``,
``ch07/params.pkl``, ``ch08/deep_convnet_params.pkl``; DLFS2 ``ch06/Rnnlm.pkl``; MIT licence,
Koki Saitoh). A pickle can run arbitrary code when loaded, so `safe_load` uses an unpickler that
admits numpy arrays (and the dicts/lists holding them) and nothing else.

Files are looked for in ``$FNN_DATA_DIR/book``, then the user cache ``~/.cache/fnn/book``; when
missing and `download` is true they are fetched from the books' repositories into the cache,
checked against their sha256 and moved into place atomically.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

from fnn.data.download import DataNotFoundError
from fnn.data.download import download as _download
from fnn.files import data_dirs

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
}

# The only globals a numpy array's pickle needs (numpy 1.x and 2.x module names).
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than numpy arrays."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"safe_load: {self.source}: the pickle asks for {module}.{name}; only numpy "
                f"arrays (and dicts/lists of them) are allowed, so it was not loaded")
        module = module.replace("numpy.core.", "numpy._core.")  # numpy 2 renamed numpy.core
        return super().find_class(module, name)


def safe_load(source: str | os.PathLike | bytes):
    """Unpickle a file (or bytes) that may hold only numpy arrays in dicts, lists and tuples."""
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    unpickler = _ArraysOnly(io.BytesIO(data), encoding="latin1")
    unpickler.source = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    return unpickler.load()


def book_dirs() -> list[Path]:
    """Where the books' files are looked for, in order."""
    return data_dirs("book")


def book_file(name: str, *, download: bool = True) -> Path:
    """The path of the book's file `name` (a key of `BOOK_FILES`), downloading it when missing."""
    if name not in BOOK_FILES:
        raise ValueError(f"book_file: name is {name!r}, expected one of {sorted(BOOK_FILES)}")
    dirs = book_dirs()
    for d in dirs:
        if (d / name).is_file():
            return d / name
    url, sha256 = BOOK_FILES[name]
    if download:
        try:
            return _download(url, dirs[-1] / name, sha256=sha256)
        except OSError as e:
            reason = f" (download failed: {e})"
    else:
        reason = " (download=False)"
    searched = ", ".join(str(d) for d in dirs)
    raise DataNotFoundError(
        f"book_file: {name} not found in {searched}{reason}. Put the file (from {url}) in one "
        f"of these folders, or set FNN_DATA_DIR to a folder whose book/ holds it.")


def load_book_weights(name: str, *, download: bool = True):
    """The book's pretrained parameters `name` (see `BOOK_FILES`) as numpy arrays, loaded safely."""
    return safe_load(book_file(name, download=download))

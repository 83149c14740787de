"""MNIST and Fashion-MNIST from their original IDX files: the book's `load_mnist` (DLFS1 §3.6.1).

Where the files are looked for, in order (the first directory holding all four wins):

1. ``data_dir``, when given;
2. ``$FNN_DATA_DIR/<kind>``;
3. the user cache ``${XDG_CACHE_HOME:-~/.cache}/fnn/<kind>``;
4. for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

When none has them and ``download=True``, the missing files are downloaded into ``data_dir``
(or the user cache), checksum-verified, from the mirrors in order. Offline with nothing found,
one `DataNotFoundError` says which files to put where. A searched path that holds something other
than a regular file (a directory, a FIFO, a symlink loop) is an error naming it.

Files found on disk are checked against the published hashes too (``verify=True``): LeCun's sha256
for MNIST; Zalando's MD5 or Debian's recompressed files' sha256 for Fashion-MNIST. The hashes are
remembered per path, size and mtime, so each file is hashed once per process. Files of one's own in
the same format load with ``verify=False`` (or ``checksums=`` giving their sha256).

Shapes: ``N`` images (60000 train, 10000 test), each ``28 x 28``; ``D = 784 = 28 * 28``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fnn.data.download import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    DownloadError,
    path_kind,
    verify_file,
)
from fnn.data.download import download as _fetch
from fnn.data.idx import read_idx
from fnn.files import cache_dir, data_dirs

__all__ = ["FILES", "KINDS", "as_book_arrays", "load_mnist", "one_hot", "search_dirs"]

# The four standard file names, in the order train images, train labels, test images, test labels.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
KINDS = ("mnist", "fashion-mnist")
CANONICAL_COUNTS = (60000, 10000)  # (train, test) images in both data sets

_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}
# file name -> (hash name, hex digest) of the original gzip files.
_CHECKSUMS: dict[str, dict[str, tuple[str, str]]] = {
    "mnist": {  # sha256 of LeCun's files (their md5s match the well-known list)
        FILES[0]: ("sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        FILES[1]: ("sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        FILES[2]: ("sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        FILES[3]: ("sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    # Zalando publishes only MD5 sums (zalandoresearch/fashion-mnist README, "Get the Data"),
    # so these downloads are verified with MD5. Debian's recompressed copies differ, but those
    # are read from disk, never downloaded.
    "fashion-mnist": {
        FILES[0]: ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        FILES[1]: ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
        FILES[2]: ("md5", "bef4ecab320f06d8554ea6380940ec79"),
        FILES[3]: ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
}
# sha256 of Debian's recompressed Fashion-MNIST (package dataset-fashion-mnist 0.0~git20200523.55506a9-1).
_DEBIAN_SHA256 = {
    FILES[0]: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    FILES[1]: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    FILES[2]: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    FILES[3]: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
_DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    kind: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    expected_counts: tuple[int, int] | None = CANONICAL_COUNTS,
    verify: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST (or Fashion-MNIST) as the book's ``load_mnist`` does (DLFS1 §3.6.1).

    Args:
      normalize: pixels as float32 in [0, 1] (``x / 255``); else uint8 0..255.
      flatten: images as ``(N, 784)``; else ``(N, 1, 28, 28)`` (NCHW, one channel).
      one_hot_label: labels as float32 one-hot ``(N, 10)``; else int32 ``(N,)`` in 0..9.
      kind: ``"mnist"`` or ``"fashion-mnist"``.
      data_dir: a directory searched first and, when given, the one downloads go to.
      download: fetch missing files from ``mirrors`` (else raise `DataNotFoundError`).
      mirrors: base URLs tried in order; default: the canonical mirrors of ``kind``.
      checksums: file name -> sha256 (hex) overriding the canonical hashes, for mirrors
        serving other files (tests serve small generated ones); files on disk are checked
        against them too.
      expected_counts: ``(train, test)`` image counts to insist on; ``None`` accepts any.
      verify: check files found on disk against the published hashes (or ``checksums``);
        ``False`` loads files of one's own in the same format.

    Returns:
      ``((x_train, t_train), (x_test, t_test))``, new arrays the caller owns; the files are
      parsed once per process and directory.

    Raises:
      ValueError: unknown ``kind``, or files whose contents are not MNIST-shaped.
      DataNotFoundError: the files are neither on disk nor downloadable.
      ChecksumError: a downloaded file's hash is wrong (the file is deleted), or a file on disk
        is not the published one (left in place; the message says how to load it anyway).
      DataFormatError: a searched path is a directory, FIFO, symlink loop or other non-file;
        `IdxFormatError` for a file that is not valid IDX.
    """
    if kind not in KINDS:
        raise ValueError(f"load_mnist: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    directory = _find_or_download(
        kind, data_dir=data_dir, download=download, mirrors=mirrors, checksums=checksums
    )
    if verify:
        for name in FILES:
            _verify(directory / name, kind, checksums)
    counts = None if expected_counts is None else tuple(expected_counts)
    x_train, t_train, x_test, t_test = _read_dir(directory, counts)
    train = _finish(x_train, t_train, normalize, flatten, one_hot_label)
    test = _finish(x_test, t_test, normalize, flatten, one_hot_label)
    return train, test


def _finish(
    x: np.ndarray, t: np.ndarray, normalize: bool, flatten: bool, one_hot_label: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Cached ``(N, 28, 28)`` uint8 images and labels -> new arrays in the book's format."""
    # x / 255 in float32 into one new array (a temporary would double 188 MB of writes)
    x = (np.divide(x, np.float32(255.0), out=np.empty(x.shape, np.float32), dtype=np.float32) if normalize
         else x.copy())
    return as_book_arrays(x, t, flatten=flatten, one_hot_label=one_hot_label)


def as_book_arrays(
    x: np.ndarray, t: np.ndarray, *, flatten: bool, one_hot_label: bool, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Shape images and labels the way the book's loaders return them (DLFS1 §3.6.1).

    Args:
      x: images ``(N, H, W)``, already in their final dtype.
      t: integer labels ``(N,)``.
      flatten: ``x`` as ``(N, H * W)``; else ``(N, 1, H, W)``.
      one_hot_label: ``t`` as float32 ``(N, num_classes)``; else int32 ``(N,)``.

    Returns:
      ``(x, t)``, reshaped as asked.
    """
    n, h, w = x.shape
    x = x.reshape(n, h * w) if flatten else x.reshape(n, 1, h, w)
    t = one_hot(t, num_classes) if one_hot_label else t.astype(np.int32)
    return x, t


def one_hot(t: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot encode integer labels, the book's ``_change_one_hot_label`` (DLFS1 §3.6.1).

    Args:
      t: integer labels ``(N,)`` in ``0 .. num_classes - 1``.
      num_classes: the number of classes ``C``.

    Returns:
      float32 ``(N, C)`` with a single 1 in each row, at column ``t[i]``.
    """
    t = np.asarray(t)
    if t.ndim != 1 or t.dtype.kind not in "iu":
        raise ValueError(f"one_hot: t must be integer labels (N,); got {t.dtype} {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must be in 0..{num_classes - 1}; got min {t.min()}, max {t.max()}"
        )
    out = np.zeros((t.shape[0], num_classes), dtype=np.float32)
    out[np.arange(t.shape[0]), t] = 1.0
    return out


def search_dirs(kind: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories `load_mnist` searches for ``kind``, in order (see the module docstring)."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    dirs += data_dirs(kind)
    if kind in _DEBIAN_DIRS:
        dirs.append(_DEBIAN_DIRS[kind])
    return dirs


def _find_or_download(
    kind: str,
    *,
    data_dir: str | os.PathLike | None,
    download: bool,
    mirrors: Sequence[str] | None,
    checksums: Mapping[str, str] | None,
) -> Path:
    """The first searched directory holding all of `FILES`, else where they were downloaded."""
    dirs = search_dirs(kind, data_dir)
    for d in dirs:
        if _holds_all(d, kind):
            return d
    failures: list[str] = []
    if download:
        target = dirs[0] if data_dir is not None else cache_dir(kind)
        try:
            _download_missing(target, kind, mirrors, checksums)
            return target
        except DataNotFoundError as e:
            failures.append(str(e))
    searched = "\n".join(f"  {d}" + ("" if d.is_dir() else " (does not exist)") for d in dirs)
    why = "\n".join(failures) if failures else "Downloading was off (download=False)."
    raise DataNotFoundError(
        f"load_mnist: {kind} data not found. Need all four of {', '.join(FILES)} "
        f"in one directory; searched:\n{searched}\n{why}\n"
        f"Set FNN_DATA_DIR so that $FNN_DATA_DIR/{kind} holds the files, or put them in "
        f"{cache_dir(kind)}."
    )


def _holds_all(directory: Path, kind: str) -> bool:
    """Whether ``directory`` holds all of `FILES` as regular files; an error names any searched
    path that is something else (the folder itself, or one of the files)."""
    what = path_kind(directory)
    if what == "missing":
        return False
    if what is None:
        what = "a regular file"
    if what != "a directory":
        raise DataFormatError(f"load_mnist: {directory} is {what}, expected a directory holding the {kind} files")
    found = {name: path_kind(directory / name) for name in FILES}
    for name, what in found.items():
        if what not in (None, "missing"):
            raise DataFormatError(
                f"load_mnist: {directory / name} is {what}, expected a regular file (the {kind} {name})"
            )
    return all(what is None for what in found.values())


def _verify(path: Path, kind: str, checksums: Mapping[str, str] | None) -> None:
    """Check a file found on disk against ``checksums`` or the published hashes of ``kind``."""
    if checksums is not None:
        if path.name not in checksums:
            raise ValueError(f"load_mnist: checksums has no entry for {path.name}")
        known, what = {"sha256": (checksums[path.name],)}, f"checksums[{path.name!r}]"
    elif kind == "mnist":
        known, what = {"sha256": (_CHECKSUMS[kind][path.name][1],)}, f"LeCun's {path.name}"
    else:
        known = {"md5": (_CHECKSUMS[kind][path.name][1],), "sha256": (_DEBIAN_SHA256[path.name],)}
        what = f"Zalando's {path.name} or Debian's recompressed copy"
    verify_file(path, known, where="load_mnist", what=what,
                opt_out="load_mnist(..., verify=False)")


def _download_missing(
    target: Path, kind: str, mirrors: Sequence[str] | None, checksums: Mapping[str, str] | None
) -> None:
    """Fetch each of `FILES` missing from ``target``, trying ``mirrors`` in order."""
    mirrors = _MIRRORS[kind] if mirrors is None else tuple(mirrors)
    for name in FILES:
        if (target / name).is_file():
            continue
        if checksums is not None:
            if name not in checksums:
                raise ValueError(f"load_mnist: checksums has no entry for {name}")
            hashes = {"sha256": checksums[name]}
        else:
            algo, digest = _CHECKSUMS[kind][name]
            hashes = {"sha256": None, algo: digest}
        errors: list[DownloadError] = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                _fetch(url, target / name, **hashes)
                break
            except DownloadError as e:
                errors.append(e)
        else:
            tried = "\n".join(f"  {e}" for e in errors) or "  (no mirrors given)"
            if any(isinstance(e, ChecksumError) for e in errors):
                raise ChecksumError(f"load_mnist: no mirror served a valid {name}:\n{tried}")
            raise DataNotFoundError(f"Downloading {name} failed:\n{tried}")


@functools.lru_cache(maxsize=4)
def _read_dir_cached(
    directory: Path, stamp: tuple, expected_counts: tuple[int, int] | None
) -> tuple[np.ndarray, ...]:
    arrays = tuple(read_idx(directory / name) for name in FILES)
    _validate(directory, *arrays, expected_counts=expected_counts)
    for a in arrays:
        a.setflags(write=False)  # the cache hands out copies, never these
    return arrays


def _read_dir(directory: Path, expected_counts: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
    """The four arrays of ``directory``, parsed once while the files stay unchanged."""
    directory = directory.resolve()
    stats = [(directory / name).stat() for name in FILES]
    stamp = tuple((s.st_size, s.st_mtime_ns) for s in stats)
    return _read_dir_cached(directory, stamp, expected_counts)


def _validate(
    directory: Path,
    x_train: np.ndarray,
    t_train: np.ndarray,
    x_test: np.ndarray,
    t_test: np.ndarray,
    *,
    expected_counts: tuple[int, int] | None,
) -> None:
    """Check the arrays are MNIST-shaped: images (N, 28, 28) uint8, labels (N,) in 0..9."""
    splits = (("train", x_train, t_train, FILES[:2]), ("test", x_test, t_test, FILES[2:]))
    for i, (split, x, t, (x_name, t_name)) in enumerate(splits):
        where = f"load_mnist: {directory}"
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(
                f"{where}/{x_name}: images are {x.dtype} {x.shape}, expected uint8 (N, 28, 28)"
            )
        if t.dtype != np.uint8 or t.ndim != 1:
            raise ValueError(
                f"{where}/{t_name}: labels are {t.dtype} {t.shape}, expected uint8 (N,)"
            )
        if t.shape[0] != x.shape[0]:
            raise ValueError(
                f"{where}: {split} has {t.shape[0]} labels ({t_name}) but {x.shape[0]} images "
                f"({x_name}), expected equal counts"
            )
        if t.size and t.max() > 9:
            raise ValueError(f"{where}/{t_name}: labels must be in 0..9; found {t.max()}")
        if expected_counts is not None and x.shape[0] != expected_counts[i]:
            raise ValueError(
                f"{where}/{x_name}: {split} has {x.shape[0]} images, expected {expected_counts[i]}"
            )

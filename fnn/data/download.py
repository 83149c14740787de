"""Checksum-verified, atomic file downloads, files checked on disk, and the errors of the data package.

`download` streams a URL into a temporary file beside the destination, hashes it on the way,
checks the hash, fsyncs and only then renames it into place (`os.replace` is atomic), so a
destination file is either absent or complete and verified: an interrupted or corrupted
download never leaves a half-written data file behind for the next run to trip over.

`find_file` is the one lookup of a published data file (the books' weights and sequence files, PTB):
the first folder of a search list that holds it, checked, else a verified download, else an error
that lists the folders searched. Files found on disk are checked too: `verify_file` compares a file
with its published hashes wherever it was found (a changed copy is refused, with the keyword that
loads a user's own file on purpose), and `open_regular` refuses a directory, a FIFO, a symlink loop
or a device before anything reads from it (a FIFO would block forever). A verified file's hashes
are remembered in memory by (path, device, inode, size, mtime), so each file is hashed once per
process while it stays unchanged. MNIST, whose four files must share a folder, searches with
`path_kind` and checks with `verify_file` the same way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import stat
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from fnn.files import fsync_dir

__all__ = ["ChecksumError", "DataFormatError", "DataNotFoundError", "DownloadError", "download", "find_file",
           "open_regular", "path_kind", "verify_file"]

_CHUNK = 1 << 20  # bytes read per step


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not on this machine and could not be downloaded."""


class DownloadError(OSError):
    """A download failed (network error, HTTP error, truncated transfer); names the URL."""


class DataFormatError(ValueError):
    """A data file is unusable: not a regular file, not the published file, or not in its format.

    The message names the file, what was expected and what was found."""


class ChecksumError(DownloadError, DataFormatError):
    """A file's hash is not the published one: a download (the file was deleted) or a file found on
    disk (left in place; the message says how to load a file of one's own on purpose)."""


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None,
    md5: str | None = None,
    timeout: float = 30,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, verify its hash, and move it into place atomically.

    Args:
      url: what to fetch (``http://``, ``https://`` or ``file://``).
      dest: the destination file; its directory is created if missing. The data is streamed
        to a temporary file in that directory, fsynced, then renamed with `os.replace`.
      sha256: expected SHA-256 (hex). May be ``None`` only where ``md5`` is given, for data
        sets whose publishers list nothing stronger (Fashion-MNIST).
      md5: expected MD5 (hex), checked too when given.
      timeout: seconds to wait on the connection and on each read.
      progress: show a tqdm bar on stderr (only when the server sends the size).

    Returns:
      ``dest`` as a `Path`.

    Raises:
      ChecksumError: a hash differs; the temporary file is deleted and ``dest`` is untouched.
      DownloadError: the URL could not be fetched or the transfer ended early.
    """
    if sha256 is None and md5 is None:
        raise ValueError(f"download: {url}: give sha256= (or md5=), got neither")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    expected = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            _stream(url, f, hashes, timeout=timeout, progress=progress)
            f.flush()
            os.fsync(f.fileno())
        for name, want in expected.items():
            got = hashes[name].hexdigest()
            if got != want:
                raise ChecksumError(
                    f"download: {url}: {name} is {got}, expected {want}; the downloaded file "
                    "was deleted"
                )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    _remember_digests(dest, {name: h.hexdigest() for name, h in hashes.items()})
    return dest


_fetch = download  # for find_file, whose `download` argument is a flag


def _stream(url: str, f: BinaryIO, hashes: dict, *, timeout: float, progress: bool) -> None:
    """Copy ``url`` into the open file ``f``, updating every hash in ``hashes``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                disable=not progress or total is None,
                leave=False,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts
        raise DownloadError(f"download: {url}: {_reason(e)}") from e
    if total is not None and received != total:
        raise DownloadError(f"download: {url}: received {received} bytes, expected {total}")


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{e.reason}"
    return f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------------------------------------
# Files on disk: regular files only, and verified against their published hashes.
# ------------------------------------------------------------------------------------------------

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind_of(mode: int) -> str:
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def path_kind(path: str | os.PathLike) -> str | None:
    """``None`` for a regular file (after following symlinks), ``"missing"`` when nothing is there,
    else what is there instead: ``"a directory"``, ``"a FIFO (named pipe)"``, ``"a symbolic link
    loop"``, ``"a broken symbolic link to X"``, ``"not accessible (Permission denied)"``, ..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a broken symbolic link to {os.readlink(path)}"
        return "missing"
    except OSError as e:
        return "a symbolic link loop" if e.errno == errno.ELOOP else f"not accessible ({e.strerror})"
    return None if stat.S_ISREG(mode) else _kind_of(mode)


def open_regular(path: str | os.PathLike, *, where: str, error: type[DataFormatError] = DataFormatError):
    """Open ``path`` for binary reading, refusing anything but a regular file before reading it.

    The file is opened non-blocking (so a FIFO cannot hang the caller) and checked with `os.fstat`
    on the open descriptor (so it cannot be swapped after the check).

    Raises:
      DataNotFoundError: nothing is at ``path``.
      DataFormatError: (or the subclass ``error``) ``path`` is a directory, FIFO, socket, device,
        symlink loop, broken symlink, or cannot be opened; the message starts with ``where`` and
        names ``path``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        kind = path_kind(path)
        if kind == "missing":
            raise DataNotFoundError(f"{where}: {path} does not exist") from e
        kind = kind or f"not readable ({e.strerror})"
        raise error(f"{where}: {path} is {kind}, expected a regular file") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{where}: {path} is {_kind_of(mode)}, expected a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# (real path, device, inode, size, mtime_ns) -> {"sha256": hex, "md5": hex}
_DIGESTS: dict[tuple, dict[str, str]] = {}


def _stamp(path: str | os.PathLike, st: os.stat_result) -> tuple:
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _remember_digests(path: Path, digests: dict[str, str]) -> None:
    with contextlib.suppress(OSError):
        _DIGESTS[_stamp(path, os.stat(path))] = digests


def file_digests(path: str | os.PathLike, *, where: str) -> dict[str, str]:
    """``{"sha256": ..., "md5": ...}`` of a regular file, hashed once per process while its
    path, inode, size and mtime stay the same."""
    with open_regular(path, where=where) as f:
        key = _stamp(path, os.fstat(f.fileno()))
        if key not in _DIGESTS:
            hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
            while chunk := f.read(_CHUNK):
                for h in hashes.values():
                    h.update(chunk)
            _DIGESTS[key] = {name: h.hexdigest() for name, h in hashes.items()}
    return _DIGESTS[key]


def verify_file(
    path: str | os.PathLike,
    known: dict[str, tuple[str, ...]],
    *,
    where: str,
    what: str,
    opt_out: str,
) -> None:
    """Check a file found on disk against its published hashes (any one listed hash must match).

    Args:
      path: the file.
      known: hash name (``"sha256"`` or ``"md5"``) -> the accepted hex digests.
      where: the caller's name, which starts the message (``"load_mnist"``).
      what: what the file should be (``"LeCun's MNIST train-images-idx3-ubyte.gz"``).
      opt_out: how to load a file of one's own on purpose (``"load_mnist(..., verify=False)"``).

    Raises:
      ChecksumError: no listed hash matches; the file is left in place.
      DataFormatError / DataNotFoundError: as `open_regular`.
    """
    got = file_digests(path, where=where)
    if any(got[name] == digest.lower() for name, digests in known.items() for digest in digests):
        return
    found = ", ".join(f"{name} {got[name]}" for name in known)
    expected = " or ".join(f"{name} {digest}" for name, digests in known.items() for digest in digests)
    raise ChecksumError(
        f"{where}: {path} has {found}, expected {expected} ({what}); the file was changed, "
        f"cut short or replaced, and was not loaded. Delete it to have the original downloaded, or, to "
        f"load a file of your own on purpose, use {opt_out}."
    )


def find_file(
    name: str,
    dirs: list[Path],
    *,
    url: str,
    sha256: str,
    where: str,
    what: str,
    opt_out: str,
    download: bool = True,
    verify: bool = True,
    put: str | None = None,
) -> Path:
    """The path of the published file `name`: the first of `dirs` that holds it, else downloaded.

    A path found in a folder must be a regular file (after symlinks); with `verify` it must also
    have the published sha256 (`verify_file`, hashed once per process while unchanged). When no
    folder holds it and `download` is set, it is fetched from `url` into the last folder (the user
    cache), verified on the way.

    Args:
      name: the file's name in each folder (``"ptb.train.txt"``).
      dirs: the folders to search, in order (`fnn.files.data_dirs`).
      url, sha256: where the file is published, and its hash.
      where, what, opt_out: for messages: the caller's name, what the file is, and how to load a
        file of one's own on purpose (see `verify_file`).
      put: what the "not found" message asks the user to put in a folder (default: `name`).

    Raises:
      DataNotFoundError: no folder holds the file and it was not downloaded; the message lists
        the folders searched and why the download did not happen.
      ChecksumError: the file found is not the published one (left in place).
      DataFormatError: the path found is a directory, FIFO, symlink loop, broken link or device.
    """
    for d in dirs:
        path = d / name
        if os.path.lexists(path):
            kind = path_kind(path)
            if kind is not None:
                raise DataFormatError(f"{where}: {path} is {kind}, expected a regular file ({what})")
            if verify:
                verify_file(path, {"sha256": (sha256,)}, where=where, what=what, opt_out=opt_out)
            return path
    if download:
        try:
            return _fetch(url, dirs[-1] / name, sha256=sha256)
        except OSError as e:
            reason = f" (download failed: {e})"
    else:
        reason = " (download=False)"
    source = url if put is None else url.rsplit("/", 1)[0] + "/"
    raise DataNotFoundError(
        f"{where}: {name} not found in {', '.join(str(d) for d in dirs)}{reason}. Put {put or 'the file'} "
        f"(from {source}) in one of these folders, or set FNN_DATA_DIR to a folder whose "
        f"{dirs[-1].name}/ holds {'them' if put else 'it'}.")

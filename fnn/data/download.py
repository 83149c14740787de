"""Checksum-verified, atomic file downloads, and the errors of the data package.

`download` streams a URL into a temporary file beside the destination, hashes it on the way,
checks the hash, fsyncs and only then renames it into place (`os.replace` is atomic), so a
destination file is either absent or complete and verified: an interrupted or corrupted
download never leaves a half-written data file behind for the next run to trip over.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from fnn.files import fsync_dir

__all__ = ["ChecksumError", "DataNotFoundError", "DownloadError", "download"]

_CHUNK = 1 << 20  # bytes read per step


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not on this machine and could not be downloaded."""


class DownloadError(OSError):
    """A download failed (network error, HTTP error, truncated transfer); names the URL."""


class ChecksumError(DownloadError):
    """A downloaded file's hash is not the published one; the file was deleted."""


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
    return dest


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

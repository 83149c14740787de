"""Where fnn keeps files, and how it writes them so that a crash never leaves half a file behind.

* `cache_dir` — ``${XDG_CACHE_HOME:-~/.cache}/fnn/<name>``: downloaded data sets, compiled programs.
* `data_dirs` — where a data set's files are looked for: ``$FNN_DATA_DIR/<name>``, then `cache_dir`.
* `write_atomic` — a file is either its old self or complete: temporary file, fsync, `os.replace`.
* `fsync_dir` — make a rename in a folder durable.

Used by the data loaders (`fnn.data`), the checkpoints (`fnn.checkpoint`) and the compiled-program
cache (`fnn.compile_cache`); nothing here knows about arrays or networks.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "data_dirs", "fsync_dir", "write_atomic"]


def cache_dir(name: str) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/fnn/<name>``: where downloads of data set `name` go."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "fnn" / name


def data_dirs(name: str) -> list[Path]:
    """Where the files of data set `name` are looked for, in order: ``$FNN_DATA_DIR/<name>``
    (when set), then `cache_dir`."""
    dirs = [Path(os.environ["FNN_DATA_DIR"]).expanduser() / name] if os.environ.get("FNN_DATA_DIR") else []
    return [*dirs, cache_dir(name)]


def fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either its old self or complete: temp, fsync, rename.

    The temporary file (``.<name>.<random>.part``) sits in the same folder, so the rename cannot
    cross file systems; it is deleted when the write fails.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

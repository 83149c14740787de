"""Where fnn keeps files, and how it writes them so that a crash never leaves half a file behind.

* `cache_dir` — ``${XDG_CACHE_HOME:-~/.cache}/fnn/<name>``: downloaded data sets, compiled programs.
* `data_dirs` — where a data set's files are looked for: ``$FNN_DATA_DIR/<name>``, then `cache_dir`.
* `write_atomic` — a file is either its old self or complete: temporary file, fsync, `os.replace`.
* `fsync_dir` — make a rename in a folder durable.
* `FolderLock` — one writer at a time in a folder (the checkpoints of `fnn.checkpoint`).

Used by the data loaders (`fnn.data`), the checkpoints (`fnn.checkpoint`) and the compiled-program
cache (`fnn.compile_cache`); nothing here knows about arrays or networks.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the lock falls back to the holder's pid
    fcntl = None

__all__ = ["FolderLock", "FolderLockedError", "cache_dir", "data_dirs", "fsync_dir", "write_atomic"]


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


class FolderLockedError(RuntimeError):
    """Another live process holds a folder's writer lock (`FolderLock`); the message names it."""


class FolderLock:
    """One writer at a time in `folder`: ``with FolderLock(folder, "fit"): ...``.

    The lock file ``<folder>/.writer.lock`` holds the writer's pid, host, start time and purpose,
    and is held with ``flock`` while the writer lives: the kernel releases it when the process dies
    (even by SIGKILL), so a lock left by a dead writer is taken over, with a `UserWarning` naming
    it. A second live writer gets `FolderLockedError` naming the holder. Re-entrant within a
    process (a `fnn.checkpoint.save` inside `fit`'s lock). The file stays, empty, when released.
    Without ``fcntl`` (Windows) a lock whose pid is not running on this host counts as dead.
    """

    _held: dict[str, list] = {}  # real path of a held lock file -> [open file, depth]

    def __init__(self, folder: str | os.PathLike, purpose: str = "write"):
        self.path = Path(folder) / ".writer.lock"
        self.purpose = purpose

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.path)
        if key in self._held:
            self._held[key][1] += 1
            return self
        f = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            f.seek(0)
            previous = f.read().strip()
            if not self._take(f, previous):
                raise FolderLockedError(
                    f"{self.path.parent}: another process is writing here ({_holder(previous)}); "
                    f"expected one writer at a time. Wait for it to finish, or use another folder "
                    f"(if it is gone, delete {self.path})")
            if previous:
                warnings.warn(f"{self.path.parent}: took over the writer lock left by a process that is "
                              f"no longer running ({_holder(previous)})", stacklevel=2)
            f.seek(0)
            f.truncate()
            f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                "purpose": self.purpose}))
            f.flush()
        except BaseException:
            f.close()
            raise
        self._held[key] = [f, 1]
        return self

    @staticmethod
    def _take(f, previous: str) -> bool:
        """Lock `f` if its holder is gone; False while a live process holds it."""
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
        try:
            info = json.loads(previous) if previous else {}
            if info.get("host") != socket.gethostname():
                return not previous
            os.kill(int(info["pid"]), 0)
        except (ValueError, KeyError, TypeError, ProcessLookupError):
            return True
        except OSError:  # alive, another user's
            return False
        return False

    def __exit__(self, *exc) -> None:
        key = os.path.realpath(self.path)
        entry = self._held[key]
        entry[1] -= 1
        if entry[1] == 0:
            f = self._held.pop(key)[0]
            with contextlib.suppress(OSError):
                f.seek(0)
                f.truncate()
            f.close()  # releases the flock

    @classmethod
    def holds(cls, folder: str | os.PathLike) -> bool:
        """Does this process hold `folder`'s lock?"""
        return os.path.realpath(Path(folder) / ".writer.lock") in cls._held


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {info['pid']} on host {info['host']}, {info.get('purpose', 'writing')} since {since}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"

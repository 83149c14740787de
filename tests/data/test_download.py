"""download(): against a local HTTP server on 127.0.0.1; no network needed."""

import contextlib
import functools
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fnn.data import ChecksumError, DataNotFoundError, DownloadError, download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on an ephemeral 127.0.0.1 port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def refused_url() -> str:
    """A URL on a port nothing listens on (bound, then closed), so connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    payload = bytes(range(256)) * 1000
    (root / "blob.bin").write_bytes(payload)
    with serve_directory(root) as url:
        yield url, payload


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_download_verifies_and_moves_into_place(tmp_path, served):
    url, payload = served
    dest = tmp_path / "out" / "blob.bin"
    got = download(url + "blob.bin", dest, sha256=_sha256(payload), progress=False)
    assert got == dest and dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]  # no temp left


def test_download_with_progress_bar(tmp_path, served, capsys):
    url, payload = served
    download(url + "blob.bin", tmp_path / "b", sha256=_sha256(payload), progress=True)
    assert (tmp_path / "b").read_bytes() == payload


def test_md5_only(tmp_path, served):
    url, payload = served
    md5 = hashlib.md5(payload).hexdigest()
    download(url + "blob.bin", tmp_path / "b", sha256=None, md5=md5, progress=False)
    assert (tmp_path / "b").read_bytes() == payload
    with pytest.raises(ChecksumError, match="md5 is"):
        download(url + "blob.bin", tmp_path / "c", sha256=None, md5="0" * 32, progress=False)


def test_checksum_mismatch_leaves_nothing(tmp_path, served):
    url, payload = served
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(ChecksumError, match=f"{url}blob.bin: sha256 is {_sha256(payload)}"):
        download(url + "blob.bin", dest, sha256="0" * 64, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_checksum_mismatch_keeps_existing_file(tmp_path, served):
    url, _ = served
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        download(url + "blob.bin", dest, sha256="0" * 64, progress=False)
    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]


def test_http_404_names_url(tmp_path, served):
    url, _ = served
    with pytest.raises(DownloadError, match=f"{url}missing.bin: HTTP 404"):
        download(url + "missing.bin", tmp_path / "m", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_names_url(tmp_path):
    url = refused_url() + "x.gz"
    with pytest.raises(DownloadError, match=url):
        download(url, tmp_path / "x.gz", sha256="0" * 64, timeout=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_needs_a_checksum(tmp_path):
    with pytest.raises(ValueError, match="give sha256"):
        download("http://127.0.0.1/x", tmp_path / "x", sha256=None)


def test_error_hierarchy():
    assert issubclass(ChecksumError, DownloadError)
    assert issubclass(DownloadError, OSError)
    assert issubclass(DataNotFoundError, FileNotFoundError)

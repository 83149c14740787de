"""Data files on disk (IDX, MNIST, Fashion-MNIST, PTB) are checked before they are used: published
hashes wherever a file is found, IDX headers before inflating, text decoding, and paths that are not
regular files. Every error names the file and what was expected."""

import gzip
import hashlib
import importlib
import os
import re
import struct
import time
import tracemalloc

import pytest

from fnn.data import ChecksumError, DataFormatError, DataNotFoundError, IdxFormatError, load_mnist, ptb, read_idx
from fnn.data.mnist import FILES
from tests.data.test_mnist import COUNTS, _generate

download_module = importlib.import_module("fnn.data.download")  # fnn.data.download is also a function


def _raises(error, call, *fragments):
    """``call()`` raises ``error`` whose message holds every fragment; returns the message."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"the message lacks {missing}:\n{message}"
    return message


@pytest.fixture(autouse=True)
def isolated_env(request, tmp_path, monkeypatch):
    """$FNN_DATA_DIR and the user cache inside tmp_path (except for tests marked `data`)."""
    if request.node.get_closest_marker("data"):
        return
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _odd_paths(directory):
    """A directory, a FIFO, a symlink loop and a dangling symlink: name -> what the error says."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "a-directory").mkdir()
    os.mkfifo(directory / "a-fifo")
    os.symlink("a-loop", directory / "a-loop")
    os.symlink("nowhere", directory / "a-dangling-link")
    return {"a-directory": "is a directory", "a-fifo": "is a FIFO (named pipe)",
            "a-loop": "is a symbolic link loop", "a-dangling-link": "is a broken symbolic link to nowhere"}


# --- IDX: the header first, inflation bounded by it ------------------------------------------------


def _bomb(tmp_path, header: bytes, gigabytes: int = 1) -> tuple:
    """A gzip file of ~1 MB that inflates to ``gigabytes`` GiB: ``header`` then zeros, as gzip members."""
    member = gzip.compress(bytes(16 << 20), compresslevel=9, mtime=0)  # 16 MiB of zeros in ~16 KB
    first = gzip.compress(header + bytes((16 << 20) - len(header)), compresslevel=9, mtime=0)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(first + member * (64 * gigabytes - 1))
    return path, path.stat().st_size


def _bounded(call, seconds=5, megabytes=64):
    """Run ``call`` and assert it took under ``seconds`` and peaked under ``megabytes`` of Python memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    finally:
        elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds and peak < megabytes << 20, (elapsed, peak)


def test_gzip_bomb_fails_after_the_declared_size(tmp_path):
    header = struct.pack(">HBB3I", 0, 0x08, 3, 100, 28, 28)  # declares 78400 bytes; holds 1 GiB
    path, size = _bomb(tmp_path, header)
    assert size < 2 << 20
    _bounded(lambda: _raises(IdxFormatError, lambda: read_idx(path), str(path),
                             "payload has at least 1126976 bytes, expected 78400 (100x28x28 uint8)"))


def test_gzip_bomb_declaring_too_much_fails_before_inflating(tmp_path):
    header = struct.pack(">HBB3I", 0, 0x08, 3, 2_000_000, 28, 28)  # 1.5 GiB
    path, _ = _bomb(tmp_path, header)
    _bounded(lambda: _raises(IdxFormatError, lambda: read_idx(path), str(path),
                             "header declares 2000000x28x28 uint8 = 1568000000 bytes",
                             "at most max_bytes=1073741824"), seconds=1, megabytes=2)
    _raises(IdxFormatError, lambda: read_idx(path, max_bytes=10_000), "max_bytes=10000")


def test_gzip_of_zeros_is_not_an_idx_file(tmp_path):
    path, _ = _bomb(tmp_path, b"")
    _bounded(lambda: _raises(IdxFormatError, lambda: read_idx(path), str(path), "dtype code is 0x00",
                             "expected one of 0x08"), seconds=1, megabytes=2)


def test_raw_idx_size_checked_before_reading(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">HBBI", 0, 0x08, 1, 10_000) + bytes(10))
    _raises(IdxFormatError, lambda: read_idx(path), str(path), "payload has 10 bytes, expected 10000")


def test_corrupt_gzip_crc_is_caught(tmp_path):
    data = bytearray(gzip.compress(struct.pack(">HBBI", 0, 0x08, 1, 3) + b"\1\2\3", mtime=0))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(data))
    _raises(IdxFormatError, lambda: read_idx(path), str(path), "gzip stream is corrupt or truncated", "CRC")


@pytest.mark.parametrize("name", ["a-directory", "a-fifo", "a-loop", "a-dangling-link"])
def test_read_idx_names_a_path_that_is_not_a_regular_file(name, tmp_path):
    what = _odd_paths(tmp_path / "odd")[name]
    _raises(IdxFormatError, lambda: read_idx(tmp_path / "odd" / name), f"{tmp_path / 'odd' / name} {what}",
            "expected a regular file")


def test_read_idx_missing_file(tmp_path):
    _raises(DataNotFoundError, lambda: read_idx(tmp_path / "none.gz"), f"{tmp_path / 'none.gz'} does not exist")


# --- MNIST: found files are the published ones, and regular files ------------------------------------


@pytest.mark.parametrize("name", ["a-directory", "a-fifo", "a-loop", "a-dangling-link"])
def test_mnist_names_a_file_that_is_not_a_regular_file(name, tmp_path):
    d = tmp_path / "data" / "mnist"
    _generate(d)
    what = _odd_paths(tmp_path / "odd")[name]
    (d / FILES[0]).unlink()
    os.rename(tmp_path / "odd" / name, d / FILES[0])
    if name in ("a-loop", "a-dangling-link"):  # the links point at names relative to their folder
        (d / FILES[0]).unlink()
        os.symlink(FILES[0] if name == "a-loop" else "nowhere", d / FILES[0])
    message = _raises(DataFormatError, lambda: load_mnist(download=False), f"{d / FILES[0]} {what}",
                      "expected a regular file")
    assert "not found" not in message


def test_mnist_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "mine").write_bytes(b"x")
    _raises(DataFormatError, lambda: load_mnist(data_dir=tmp_path / "mine", download=False),
            f"{tmp_path / 'mine'} is a regular file, expected a directory")


def test_changed_mnist_file_is_refused_and_left_in_place(tmp_path):
    d = tmp_path / "data" / "mnist"
    _generate(d)
    got = hashlib.sha256((d / FILES[0]).read_bytes()).hexdigest()
    _raises(ChecksumError, lambda: load_mnist(download=False), str(d / FILES[0]), f"sha256 {got}",
            "expected sha256 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "LeCun's train-images-idx3-ubyte.gz", "verify=False")
    assert (d / FILES[0]).is_file()
    (x, _), _ = load_mnist(download=False, verify=False, expected_counts=COUNTS)
    assert x.shape == (20, 784)


def test_changed_file_against_given_checksums(tmp_path):
    d = tmp_path / "mine"
    _, sums = _generate(d)
    write = d / FILES[3]
    write.write_bytes(gzip.compress(struct.pack(">HBBI", 0, 0x08, 1, 10) + bytes(10), mtime=0))
    _raises(ChecksumError, lambda: load_mnist(data_dir=d, checksums=sums, expected_counts=COUNTS),
            str(write), f"expected sha256 {sums[FILES[3]]}", f"checksums['{FILES[3]}']")


def test_changed_fashion_mnist_lists_every_accepted_hash(tmp_path, monkeypatch):
    monkeypatch.setitem(importlib.import_module("fnn.data.mnist")._DEBIAN_DIRS, "fashion-mnist", tmp_path / "deb")
    d = tmp_path / "data" / "fashion-mnist"
    _generate(d)
    _raises(ChecksumError, lambda: load_mnist(kind="fashion-mnist", download=False), str(d / FILES[0]),
            "md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "sha256 b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", "Debian")


def test_files_are_hashed_once_while_unchanged(tmp_path, monkeypatch):
    d = tmp_path / "mine"
    _, sums = _generate(d)
    hashed = []
    real = hashlib.sha256
    monkeypatch.setattr(download_module.hashlib, "sha256", lambda *a: hashed.append(1) or real(*a))
    for _ in range(3):
        load_mnist(data_dir=d, checksums=sums, expected_counts=COUNTS)
    assert len(hashed) == len(FILES)
    st = (d / FILES[1]).stat()
    os.utime(d / FILES[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_mnist(data_dir=d, checksums=sums, expected_counts=COUNTS)
    assert len(hashed) == len(FILES) + 1


# --- PTB: verified, decoded with a clear error, never empty --------------------------------------------


def _ptb(tmp_path, train: bytes, test: bytes = b" a b \n"):
    d = tmp_path / "data" / "ptb"
    d.mkdir(parents=True, exist_ok=True)
    (d / "ptb.train.txt").write_bytes(train)
    (d / "ptb.valid.txt").write_bytes(b" a \n")
    (d / "ptb.test.txt").write_bytes(test)
    return d


@pytest.mark.parametrize("train, fragments", [
    (b"", ["0 bytes, 0 words", "at least 2 words", "empty"]),
    (b"\n\n\n", ["1 words", "at least 2 words"]),
    (b"  \n", ["1 words"]),
    (b"word", ["1 words"]),
    (b" caf\xe9 au lait \n", ["byte 0xe9 at offset 4 is not UTF-8", "expected UTF-8 text", "Latin-1"]),
    (b" a b \x00 c \n", ["NUL byte at offset 5", "expected UTF-8 text", "binary"]),
    (gzip.compress(b" a b c \n" * 100, mtime=0), ["NUL byte at offset", "binary"]),
    (b"\xff\xfe a b \n", ["byte 0xff at offset 0 is not UTF-8"]),
], ids=["empty", "newlines", "blank", "one word", "latin-1", "nul", "gzip", "utf-16 bom"])
def test_ptb_text_that_is_not_a_corpus(train, fragments, tmp_path):
    d = _ptb(tmp_path, train)
    message = _raises(DataFormatError, lambda: ptb.load_ptb("train", download=False, verify=False),
                      str(d / "ptb.train.txt"), *fragments)
    assert "UnicodeDecodeError" not in message


def test_ptb_test_words_outside_the_vocabulary(tmp_path):
    d = _ptb(tmp_path, b" a b c \n", test=b" a zebra \n")
    _raises(DataFormatError, lambda: ptb.load_ptb("test", download=False, verify=False),
            str(d / "ptb.test.txt"), "1 words not in the training vocabulary", "['zebra']")


def test_changed_ptb_file_is_refused(tmp_path):
    d = _ptb(tmp_path, b" a b c \n")
    _raises(ChecksumError, lambda: ptb.load_ptb("train", download=False), str(d / "ptb.train.txt"),
            "expected sha256 fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            "verify=False")


def test_ptb_path_that_is_a_directory(tmp_path):
    d = tmp_path / "data" / "ptb"
    (d / "ptb.train.txt").mkdir(parents=True)
    _raises(DataFormatError, lambda: ptb.load_ptb("train", download=False, verify=False),
            f"{d / 'ptb.train.txt'} is a directory, expected a regular file")
    _raises(DataFormatError, lambda: ptb.load_ptb("train", download=False),
            f"{d / 'ptb.train.txt'} is a directory")


def test_ptb_reread_when_the_file_changes(tmp_path):
    d = _ptb(tmp_path, b" a b c \n")
    assert len(ptb.load_ptb("train", download=False, verify=False)[0]) == 4
    (d / "ptb.train.txt").write_bytes(b" a b c d e \n")
    assert len(ptb.load_ptb("train", download=False, verify=False)[0]) == 6


@pytest.mark.data
def test_real_files_pass_their_checks(data_dir, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(data_dir))
    for name in FILES:
        download_module.verify_file(
            data_dir / "mnist" / name,
            {"sha256": (importlib.import_module("fnn.data.mnist")._CHECKSUMS["mnist"][name][1],)},
            where="test", what=name, opt_out="-")
    for split in ("train", "valid", "test"):
        assert re.search(r"ptb\.\w+\.txt$", str(ptb.ptb_file(split, download=False)))

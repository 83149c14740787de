"""load_mnist: search order, download from local mirrors, validation, the book's conventions.

Small generated IDX files (20 train / 10 test images) stand in for MNIST; they are served by a
local HTTP server, so nothing here needs the network or the real data (except the last test,
which uses $FNN_DATA_DIR through the `data_dir` fixture).
"""

import hashlib
import re

import numpy as np
import pytest

from fnn.data import ChecksumError, DataNotFoundError, load, load_mnist, one_hot, write_idx
from fnn.data.mnist import FILES, search_dirs
from tests.data.test_download import refused_url, serve_directory

COUNTS = (20, 10)


def _generate(directory, counts=COUNTS, seed=0):
    """Write the four MNIST files with random contents; returns (arrays, sha256 per file)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    n_train, n_test = counts
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    )
    sums = {}
    for name, a in zip(FILES, arrays, strict=True):
        path = write_idx(directory / name, a)
        sums[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return arrays, sums


@pytest.fixture(autouse=True)
def isolated_env(request, tmp_path, monkeypatch):
    """No $FNN_DATA_DIR, and a user cache inside tmp_path (except for tests marked `data`)."""
    if request.node.get_closest_marker("data"):
        return
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def mirror(tmp_path_factory):
    """A local mirror serving small generated MNIST files: (url, arrays, checksums)."""
    root = tmp_path_factory.mktemp("mirror")
    arrays, sums = _generate(root)
    with serve_directory(root) as url:
        yield url, arrays, sums


def _small(**kwargs):
    kwargs.setdefault("expected_counts", COUNTS)
    return load_mnist(**kwargs)


def test_downloads_verifies_and_loads(tmp_path, mirror):
    url, arrays, sums = mirror
    data_dir = tmp_path / "cache"
    (x, t), (x_test, t_test) = _small(data_dir=data_dir, mirrors=[url], checksums=sums)
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(FILES)
    assert x.shape == (20, 784) and x.dtype == np.float32
    assert x_test.shape == (10, 784) and t_test.shape == (10,) and t.dtype == np.int32
    np.testing.assert_array_equal(x, arrays[0].reshape(20, 784) / np.float32(255))
    np.testing.assert_array_equal(t, arrays[1])
    np.testing.assert_array_equal(t_test, arrays[3])


def test_downloads_into_user_cache_then_finds_it_offline(tmp_path, mirror):
    url, _, sums = mirror
    _small(mirrors=[url], checksums=sums)
    cache = tmp_path / "xdg" / "fnn" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)
    (x, _), _ = _small(download=False, checksums=sums)  # files on disk are checked against them too
    assert x.shape == (20, 784)


def test_wrong_checksum_raises_and_leaves_nothing(tmp_path, mirror):
    url, _, sums = mirror
    bad = dict(sums, **{FILES[2]: "0" * 64})
    data_dir = tmp_path / "cache"
    with pytest.raises(ChecksumError, match=re.escape(FILES[2])):
        _small(data_dir=data_dir, mirrors=[url], checksums=bad)
    assert FILES[2] not in {p.name for p in data_dir.iterdir()}
    assert not [p for p in data_dir.iterdir() if p.name.endswith(".part")]


def test_falls_back_to_second_mirror(tmp_path, mirror):
    url, arrays, sums = mirror
    (x, _), _ = _small(data_dir=tmp_path / "c", mirrors=[url + "no-such-dir/", url], checksums=sums)
    np.testing.assert_array_equal(x, arrays[0].reshape(20, -1) / np.float32(255))


def test_falls_back_past_refused_and_bad_mirrors(tmp_path, mirror):
    url, arrays, sums = mirror
    (x, _), _ = _small(data_dir=tmp_path / "c", mirrors=[refused_url(), url], checksums=sums)
    assert x.shape == (20, 784)


def _assert_lists_files_and_dirs(message, dirs):
    for name in FILES:
        assert name in message
    for d in dirs:
        assert str(d) in message
    assert "FNN_DATA_DIR" in message


def test_offline_raises_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "shared"))
    data_dir = tmp_path / "explicit"
    with pytest.raises(DataNotFoundError) as info:
        _small(data_dir=data_dir, mirrors=[refused_url()], checksums={n: "0" * 64 for n in FILES})
    message = str(info.value)
    dirs = [data_dir, tmp_path / "shared" / "mnist", tmp_path / "xdg" / "fnn" / "mnist"]
    _assert_lists_files_and_dirs(message, dirs)
    assert "127.0.0.1" in message  # says what the download tried


def test_download_false_raises(tmp_path):
    with pytest.raises(DataNotFoundError, match="download=False") as info:
        load_mnist(download=False)
    _assert_lists_files_and_dirs(str(info.value), [tmp_path / "xdg" / "fnn" / "mnist"])


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "shared"))
    assert search_dirs("mnist", tmp_path / "mine") == [
        tmp_path / "mine",
        tmp_path / "shared" / "mnist",
        tmp_path / "xdg" / "fnn" / "mnist",
    ]
    assert search_dirs("fashion-mnist")[-1].as_posix() == "/usr/share/datasets/fashion-mnist"


def test_finds_fnn_data_dir_and_needs_all_four(tmp_path, monkeypatch):
    import fnn.data.mnist as mnist

    monkeypatch.setitem(mnist._DEBIAN_DIRS, "fashion-mnist", tmp_path / "debian")
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "shared"))
    _, sums = _generate(tmp_path / "shared" / "fashion-mnist", seed=1)
    (x, _), _ = _small(kind="fashion-mnist", download=False, checksums=sums)
    assert x.shape == (20, 784)
    (tmp_path / "shared" / "fashion-mnist" / FILES[3]).unlink()
    with pytest.raises(DataNotFoundError):
        _small(kind="fashion-mnist", data_dir=tmp_path / "none", download=False)


def test_book_conventions(tmp_path):
    arrays, _ = _generate(tmp_path / "d")
    (x, t), (x_test, t_test) = _small(
        data_dir=tmp_path / "d", normalize=False, flatten=False, one_hot_label=True, verify=False
    )
    assert x.dtype == np.uint8 and x.shape == (20, 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0], arrays[0])
    assert t.dtype == np.float32 and t.shape == (20, 10) and t_test.shape == (10, 10)
    np.testing.assert_array_equal(t.sum(axis=1), 1.0)
    np.testing.assert_array_equal(t.argmax(axis=1), arrays[1])
    (x, _), _ = _small(data_dir=tmp_path / "d", verify=False)
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_parsed_once_and_callers_cannot_corrupt_the_cache(tmp_path, monkeypatch):
    import fnn.data.mnist as mnist

    _generate(tmp_path / "d")
    (x, t), _ = _small(data_dir=tmp_path / "d", normalize=False, verify=False)
    x[:] = 0
    t[:] = 0

    def fail(path):
        raise AssertionError(f"re-read {path}")

    monkeypatch.setattr(mnist, "read_idx", fail)
    (x2, t2), _ = _small(data_dir=tmp_path / "d", normalize=False, verify=False)
    assert x2.any() and t2.any()


def test_wrong_counts_rejected(tmp_path):
    _generate(tmp_path / "d")
    with pytest.raises(ValueError, match="train has 20 images, expected 60000"):
        load_mnist(data_dir=tmp_path / "d", download=False, verify=False)
    (x, _), (x_test, _) = load_mnist(data_dir=tmp_path / "d", expected_counts=None, verify=False)
    assert (x.shape[0], x_test.shape[0]) == COUNTS


def test_label_and_shape_validation(tmp_path):
    d = tmp_path / "d"
    _generate(d)
    write_idx(d / FILES[3], np.full(10, 10, np.uint8))
    with pytest.raises(ValueError, match=re.escape(FILES[3]) + ": labels must be in 0..9; found"):
        _small(data_dir=d, verify=False)
    write_idx(d / FILES[3], np.zeros(9, np.uint8))
    with pytest.raises(ValueError, match="test has 9 labels .* but 10 images"):
        _small(data_dir=d, verify=False)
    write_idx(d / FILES[2], np.zeros((10, 27, 28), np.uint8))
    with pytest.raises(ValueError, match=r"images are uint8 \(10, 27, 28\), expected uint8"):
        _small(data_dir=d, verify=False)


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of mnist, fashion-mnist; got 'kmnist'"):
        load_mnist(kind="kmnist")


def test_load_by_name(tmp_path):
    _generate(tmp_path / "d")
    (x, _), _ = load("mnist", data_dir=tmp_path / "d", expected_counts=None, flatten=False, verify=False)
    assert x.shape == (20, 1, 28, 28)
    with pytest.raises(ValueError, match="digits, digits28, mnist, fashion-mnist; got 'cifar'"):
        load("cifar")


def test_one_hot():
    t = np.array([3, 0, 9])
    y = one_hot(t, 10)
    assert y.dtype == np.float32 and y.shape == (3, 10)
    np.testing.assert_array_equal(y.argmax(axis=1), t)
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="labels must be in 0..9; got min 0, max 10"):
        one_hot(np.array([0, 10]), 10)
    with pytest.raises(ValueError, match=r"integer labels \(N,\); got float64"):
        one_hot(np.zeros(3), 10)


@pytest.mark.data
def test_full_mnist(data_dir):
    (x, t), (x_test, t_test) = load_mnist(data_dir=data_dir / "mnist", download=False)
    assert x.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() == 1.0
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(t).tolist() == train_counts
    assert np.bincount(t_test).tolist() == test_counts

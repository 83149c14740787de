"""fnn.files: the cache and data folders, and atomic writes that leave no partial file behind."""

from pathlib import Path

import pytest

from fnn import files


def test_cache_and_data_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    assert files.cache_dir("mnist") == tmp_path / "cache" / "fnn" / "mnist"
    assert files.data_dirs("ptb") == [tmp_path / "cache" / "fnn" / "ptb"]
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "data"))
    assert files.data_dirs("ptb") == [tmp_path / "data" / "ptb", tmp_path / "cache" / "fnn" / "ptb"]


def test_write_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b"old contents, longer than the new ones")
    files.write_atomic(path, b"new")
    files.fsync_dir(tmp_path)
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"], "no temporary file left"


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):  # not bytes: the write fails after the temporary file exists
        files.write_atomic(path, object())
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_fsync_dir_of_a_missing_folder_is_a_no_op(tmp_path):
    files.fsync_dir(Path(tmp_path / "missing"))

"""fnn.data.ptb: DLFS2's tokenisation and vocabulary, the clear error offline (files skipped without
FNN_DATA_DIR)."""

import numpy as np
import pytest

from fnn.data import DataNotFoundError, ptb


def test_missing_files_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match=r"ptb.test.txt not found in .*download=False.*FNN_DATA_DIR"):
        ptb.load_ptb("test", download=False)
    with pytest.raises(ValueError, match=r"split is 'dev'"):
        ptb.load_ptb("dev")


def test_tokenisation_and_vocabulary_like_the_book(tmp_path, monkeypatch):
    d = tmp_path / "ptb"
    d.mkdir()
    (d / "ptb.train.txt").write_text(" the cat sat \n a cat <unk> \n")
    (d / "ptb.valid.txt").write_text(" a cat \n")
    (d / "ptb.test.txt").write_text(" sat the \n")
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path))
    corpus, w2i, i2w = ptb.load_ptb("train", download=False, verify=False)
    assert [i2w[i] for i in corpus] == ["the", "cat", "sat", "<eos>", "a", "cat", "<unk>", "<eos>"]
    assert w2i == {"the": 0, "cat": 1, "sat": 2, "<eos>": 3, "a": 4, "<unk>": 5}
    test, _, _ = ptb.load_ptb("test", download=False, verify=False)
    assert test.tolist() == [2, 0, 3]
    assert ptb.load_ptb("val", download=False, verify=False)[0].tolist() == [4, 1, 3]


def test_ptb_sizes_like_the_book(data_dir, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(data_dir))
    sizes = {s: len(ptb.load_ptb(s, download=False)[0]) for s in ("train", "valid", "test")}
    assert sizes == {"train": 929_589, "valid": 73_760, "test": 82_430}
    corpus, w2i, i2w = ptb.load_ptb("train", download=False, verify=False)
    assert len(w2i) == 10_000 and corpus.dtype == np.int32
    assert [i2w[i] for i in corpus[:3]] == ["aer", "banknote", "berlitz"]  # book's first ids 0, 1, 2
    assert w2i["<eos>"] == 24 and corpus.max() == 9999

"""fnn.data.sequence: the book's sequence loader (DLFS2 dataset/sequence.py) on generated files, the
generators' formats, errors naming file and line, and (with FNN_DATA_DIR) the book's own arrays.

The book comparison runs DLFS2's ``dataset/sequence.py`` itself when a git repository of the book is
at ``$FNN_DLFS2_REPO`` (default: the development mirror below), and always compares with the
fingerprints in tests/reference/dlfs2_sequence.json, made with the book's code at commit 842ae31.
"""

import datetime
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from fnn.data import ChecksumError, DataNotFoundError
from fnn.data import sequence as S

REF = Path(__file__).resolve().parent.parent / "reference" / "dlfs2_sequence.json"
BOOK_REPO = Path(os.environ.get("FNN_DLFS2_REPO", "/work/.mirror/oreilly-japan+deep-learning-from-scratch-2/repo"))


def _decode(ids, id_to_char):
    return ["".join(id_to_char[i] for i in row) for row in np.asarray(ids).tolist()]


def _lines(path):
    return Path(path).read_text().split("\n")[:-1]


def _rows(data):
    """Every line, decoded back from the train then test arrays."""
    (x, t), (x_test, t_test), _, i2c = data
    return [q + a for q, a in zip(_decode(np.concatenate([x, x_test]), i2c),
                                  _decode(np.concatenate([t, t_test]), i2c), strict=True)]


# --------------------------------------------------------------------------------------------
# generated files
# --------------------------------------------------------------------------------------------


def test_addition_problems_format(tmp_path):
    path = S.addition_problems(tmp_path / "add.txt", 500, seed=3)
    lines = _lines(path)
    assert len(lines) == 500 and all(len(line) == 12 and line[7] == "_" for line in lines)
    pairs = set()
    for line in lines:
        m = re.fullmatch(r"(\d{1,3})\+(\d{1,3}) *_(\d{1,4}) *", line)
        assert m, line
        a, b, s = map(int, m.groups())
        assert a + b == s and line[:7].rstrip() == f"{a}+{b}"
        pairs.add((min(a, b), max(a, b)))
    assert len(pairs) == 500  # no pair twice, in either order
    assert S.addition_problems(tmp_path / "again.txt", 500, seed=3).read_text() == path.read_text()
    one = _lines(S.addition_problems(tmp_path / "one.txt", 55, seed=0, max_digits=1))
    assert len(set(one)) == 55 and all(len(line) == 6 for line in one)  # all 55 pairs of digits
    with pytest.raises(ValueError, match=r"addition_problems: n is 56, expected at most 55"):
        S.addition_problems(tmp_path / "x.txt", 56, max_digits=1)


def test_date_problems_format(tmp_path):
    path = S.date_problems(tmp_path / "date.txt", 600, seed=1)
    lines = _lines(path)
    assert all(len(line) == 40 and line[29] == "_" for line in lines)
    cases = set()
    for line in lines:
        d = datetime.date.fromisoformat(line[30:])
        assert datetime.date(1970, 1, 1) <= d <= datetime.date(2017, 12, 31)
        q = line[:29].rstrip()
        shown = {f(d) for f in S.DATE_FORMATS}
        assert q in shown | {s.lower() for s in shown} | {s.upper() for s in shown}, (q, d)
        if any(c.isalpha() for c in q):
            cases.add("upper" if q.isupper() else "lower" if q.islower() else "capitalised")
    assert cases == {"upper", "lower", "capitalised"}
    assert S.DATE_FORMATS[3](datetime.date(1995, 9, 27)).upper() == "WEDNESDAY, SEPTEMBER 27, 1995"
    assert len("WEDNESDAY, SEPTEMBER 27, 1995") == S.DATE_WIDTH


@pytest.mark.parametrize("kind", ["addition", "date"])
def test_loader_reads_generated_files_back(tmp_path, kind):
    make = S.addition_problems if kind == "addition" else S.date_problems
    path = make(tmp_path / f"{kind}.txt", 230, seed=2)
    data = S.load_sequence(path)
    (x, t), (x_test, t_test), c2i, i2c = data
    assert x.dtype == t.dtype == np.int32
    assert (len(x), len(x_test)) == (207, 23)  # the book's split: the last N // 10 lines for testing
    assert (t[:, 0] == c2i["_"]).all() and (t_test[:, 0] == c2i["_"]).all()
    assert sorted(_rows(data)) == sorted(_lines(path))
    assert {i: c for c, i in c2i.items()} == i2c and sorted(i2c) == list(range(len(i2c)))
    assert S.load_sequence(str(path)).train[0].tolist() == x.tolist()


def test_shuffle_is_the_books_permutation(tmp_path):
    """The book's np.random.seed(seed); np.random.shuffle(indices), replayed on the global state."""
    path = S.addition_problems(tmp_path / "add.txt", 300, seed=5)
    lines = _lines(path)
    state = np.random.get_state()
    try:
        for seed in (1984, 0, 7):
            indices = np.arange(len(lines))
            np.random.seed(seed)
            np.random.shuffle(indices)
            assert _rows(S.load_sequence(path, seed)) == [lines[i] for i in indices]
    finally:
        np.random.set_state(state)
    shuffled = S.load_sequence(path, None)
    assert sorted(_rows(shuffled)) == sorted(lines)


def test_vocabulary_in_order_of_first_appearance_line_by_line(tmp_path):
    """The book updates the vocabulary with each question, then its answer (not all questions first)."""
    path = tmp_path / "tiny.txt"
    path.write_text("ab_c\nbd_e\n", encoding="utf-8")
    data = S.load_sequence(path, seed=0)
    assert list(data.char_to_id) == ["a", "b", "_", "c", "d", "e"]
    path.write_text("ab_c\r\nbd_e\r\n", encoding="utf-8")  # text-mode line ends, as the book's open()
    assert list(S.load_sequence(path, seed=0).char_to_id) == ["a", "b", "_", "c", "d", "e"]
    path.write_text("ab_c\nbd_e", encoding="utf-8")  # no final line end
    assert sorted(_rows(S.load_sequence(path, seed=0))) == ["ab_c", "bd_e"]
    path.write_text("ab_c_\nbd_e_\n", encoding="utf-8")  # split at the first '_'
    assert S.load_sequence(path, seed=0).train[0].shape[1] == 2


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"", r"empty.txt is empty, expected one problem a line"),
    (b"1+2  _3 \n12+3_15 \n", r"bad.txt, line 2: question of 4 and answer of 4 characters in '12\+3_15 ', "
                             r"expected 5 and 3 as on line 1"),
    (b"1+2  _3 \n1+2  _3\n", r"bad.txt, line 2: question of 5 and answer of 2 characters"),
    (b"1+2  _3 \n1+2   3 \n", r"bad.txt, line 2: no '_' between question and answer in '1\+2   3 '"),
    (b"\n", r"bad.txt, line 1: no '_'"),
    (b"_3\n_4\n", r"bad.txt, line 1: question of 0 and answer of 2 characters in '_3', expected a question of"),
    (b"1+2  _3 \n1+2  _3 \n4+\xff  _4 \n", r"bad.txt, line 3: byte 0xff at offset 20 is not UTF-8"),
])
def test_bad_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / ("empty.txt" if not content else "bad.txt")
    path.write_bytes(content)
    with pytest.raises(S.SequenceFormatError, match=r"load_sequence: .*" + message):
        S.load_sequence(path)


def test_argument_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match=r"load_sequence: 'nope' is neither a book data set \(addition, "
                                                r"date\) nor a file"):
        S.load_sequence("nope")
    with pytest.raises(DataNotFoundError, match=r"date.txt not found in .*download=False.*FNN_DATA_DIR"):
        S.load_sequence("date", download=False)
    with pytest.raises(ValueError, match=r"load_sequence: seed is -1, expected an integer in \[0, 2\*\*32\)"):
        S.load_sequence("addition", seed=-1)
    with pytest.raises(ValueError, match=r"date_problems: n is 0, expected a positive integer"):
        S.date_problems(tmp_path / "d.txt", 0)
    with pytest.raises(ValueError, match=r"addition_problems: max_digits is 0"):
        S.addition_problems(tmp_path / "a.txt", 5, max_digits=0)


def test_book_file_is_verified(tmp_path, monkeypatch):
    (tmp_path / "book").mkdir()
    S.addition_problems(tmp_path / "book" / "addition.txt", 20)
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match=r"sequence_file: .*addition.txt has sha256 [0-9a-f]{64}, expected "
                                            r"sha256 34e0746f.*verify=False"):
        S.load_sequence("addition", download=False)
    assert S.load_sequence("addition", download=False, verify=False).train[0].shape == (18, 7)  # on purpose


def test_missing_book_file_is_downloaded_into_the_cache_and_verified(tmp_path, monkeypatch):
    served = S.addition_problems(tmp_path / "served" / "addition.txt", 40)
    sha = hashlib.sha256(served.read_bytes()).hexdigest()
    monkeypatch.setattr(S, "URL_BASE", served.parent.as_uri() + "/")
    monkeypatch.setitem(S.BOOK_FILES, "addition", ("addition.txt", sha))
    monkeypatch.setenv("FNN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = S.load_sequence("addition.txt")
    assert (tmp_path / "cache" / "fnn" / "book" / "addition.txt").read_bytes() == served.read_bytes()
    assert sorted(_rows(data)) == sorted(_lines(served))


# --------------------------------------------------------------------------------------------
# the book's files and the book's own loader
# --------------------------------------------------------------------------------------------


def _fingerprint(a):
    return {"shape": list(a.shape), "sha256": hashlib.sha256(np.ascontiguousarray(a, "<i4").tobytes()).hexdigest()}


def _book_load_data(tmp_path, book_dir, file_name):
    """DLFS2's dataset/sequence.py, from a git archive of the book, run in a fresh module on the file."""
    archive = tmp_path / "book.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(BOOK_REPO), "archive", "HEAD", "dataset/sequence.py"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "dlfs2", filter="data")
    (tmp_path / "dlfs2" / "dataset" / file_name).symlink_to(book_dir / file_name)
    spec = importlib.util.spec_from_file_location(f"dlfs2_sequence_{file_name[:-4]}",
                                                  tmp_path / "dlfs2" / "dataset" / "sequence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (x, t), (x_test, t_test) = module.load_data(file_name)
    return (x, t, x_test, t_test), module.get_vocab()


@pytest.mark.data
@pytest.mark.parametrize("name", ["addition", "date"])
def test_equals_the_books_load_data(data_dir, name, tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA_DIR", str(data_dir))
    if not (data_dir / "book" / f"{name}.txt").is_file():
        pytest.skip(f"needs {data_dir}/book/{name}.txt")
    data = S.load_sequence(name, download=False)
    mine = (*data.train, *data.test)
    ref = json.loads(REF.read_text())
    assert ref["commit"].startswith("842ae31")
    for key, a in zip(("x_train", "t_train", "x_test", "t_test"), mine, strict=True):
        assert a.dtype == np.int32 and _fingerprint(a) == ref[name][key], key
    assert "".join(data.id_to_char[i] for i in range(len(data.id_to_char))) == ref[name]["vocab"]
    assert mine[0].shape[0] == 45_000 and mine[2].shape[0] == 5_000
    if not (BOOK_REPO / "HEAD").is_file():
        return  # no copy of the book's repository here: the fingerprints above are the comparison
    state = np.random.get_state()
    try:
        arrays, (char_to_id, id_to_char) = _book_load_data(tmp_path, data_dir / "book", f"{name}.txt")
    finally:
        np.random.set_state(state)
    for a, b in zip(arrays, mine, strict=True):
        np.testing.assert_array_equal(b, a)
    assert data.char_to_id == char_to_id and data.id_to_char == id_to_char

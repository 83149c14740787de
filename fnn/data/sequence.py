"""DLFS2's sequence data sets: the addition and date-format problems (DLFS2 §7.2.4, §8.3.1).

The book's ``dataset/sequence.py`` reads a text file of one problem a line, every line the same
length: the question, then the answer starting with ``_`` (the decoder's start symbol), padded with
spaces (DLFS2 §7.2.3)::

    16+75  _91                                  addition.txt  50,000 lines (question 7, answer 5)
    september 27, 1994           _1994-09-27    date.txt      50,000 lines (question 29, answer 11)

`load_sequence` does exactly what the book's ``load_data`` does: split each line at its first
``_`` (the answer keeps it), give the characters ids in order of first appearance (line by line,
the question's characters then the answer's), shuffle the lines with ``np.random.seed(seed)`` and
``np.random.shuffle`` (NumPy's legacy `RandomState`, so the permutation is the book's), and keep the
last 10 % for testing: 45,000 / 5,000. Two differences: the arrays are int32 (the book's are int64),
and the vocabulary belongs to the file (the book's lives in module globals, so loading a second file
in the same process would extend the first one's).

The book's files are looked for in ``$FNN_DATA_DIR/book``, then ``${XDG_CACHE_HOME:-~/.cache}/fnn/book``,
and verified against their sha256 wherever they are found (``verify=False`` opts out), by the same
lookup as every data file (`fnn.data.download.find_file`); when missing they are downloaded from the
book's repository (MIT licence, Koki Saitoh). `addition_problems` and `date_problems` write files
of the same format, for quick runs and tests without the book's files.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnn.data.download import DataFormatError, DataNotFoundError, find_file, open_regular, path_kind
from fnn.files import data_dirs

__all__ = [
    "BOOK_FILES", "DATE_FORMATS", "DATE_WIDTH", "START", "URL_BASE", "addition_problems", "date_problems",
    "load_sequence", "sequence_file", "SequenceData", "SequenceFormatError",
]

URL_BASE = ("https://raw.githubusercontent.com/oreilly-japan/deep-learning-from-scratch-2/"
            "842ae31c2bb070f5116275606ed90396626a2c17/dataset/")
BOOK_FILES = {  # name -> (file name, sha256)
    "addition": ("addition.txt", "34e0746f5014c11311c9452ee9050bf14e38eca44ec4aaf4d81eba2b38674009"),
    "date": ("date.txt", "62e66a301ce8537868e725512d2a45663fc366526b7e42028cb703bda2b1c79a"),
}
# The character that ends the question and starts the answer (the decoder's first input).
START = "_"


class SequenceFormatError(DataFormatError):
    """A sequence file is not in the book's format; the message names the file and the line."""


class SequenceData(NamedTuple):
    """What `load_sequence` returns; unpacks as ``(x_train, t_train), (x_test, t_test), char_to_id,
    id_to_char``, the book's ``load_data`` and ``get_vocab`` together."""

    train: tuple[np.ndarray, np.ndarray]  # questions (N, Tq), answers (N, Ta); int32 character ids
    test: tuple[np.ndarray, np.ndarray]
    char_to_id: dict[str, int]
    id_to_char: dict[int, str]


# --------------------------------------------------------------------------------------------
# Finding the book's files
# --------------------------------------------------------------------------------------------


def sequence_file(name: str, *, download: bool = True, verify: bool = True) -> Path:
    """The path of the book's ``addition.txt`` or ``date.txt`` (`name` "addition" or "date"), found
    and checked as every data file is (`fnn.data.download.find_file`): the first of
    ``$FNN_DATA_DIR/book`` and the user cache that holds it, which must be a regular file with the
    book's sha256 (unless ``verify=False``); downloaded into the user cache when missing.

    Raises:
      ValueError: `name` is not a key of `BOOK_FILES`.
      DataNotFoundError: no searched folder holds the file and it could not be downloaded.
      ChecksumError: the file found is not the book's (left in place).
      DataFormatError: the path found is a directory, FIFO, symlink loop or other non-file.
    """
    if name not in BOOK_FILES:
        raise ValueError(f"sequence_file: name is {name!r}, expected one of {sorted(BOOK_FILES)}")
    file_name, sha256 = BOOK_FILES[name]
    return find_file(file_name, data_dirs("book"), url=URL_BASE + file_name, sha256=sha256,
                     where="sequence_file", what=f"the book's {file_name}", download=download,
                     verify=verify, opt_out=f"load_sequence({name!r}, verify=False), or "
                                            f"load_sequence(path) for a file of your own")


def _resolve(name_or_path: str | os.PathLike, download: bool, verify: bool) -> Path:
    name = os.fspath(name_or_path)
    for key, (file_name, _) in BOOK_FILES.items():
        if name in (key, file_name):
            return sequence_file(key, download=download, verify=verify)
    path = Path(name).expanduser()
    kind = path_kind(path)
    if kind == "missing":
        raise DataNotFoundError(f"load_sequence: {name!r} is neither a book data set ({', '.join(BOOK_FILES)}) "
                                f"nor a file")
    if kind is not None:
        raise SequenceFormatError(f"load_sequence: {path} is {kind}, expected a regular file (one problem a line)")
    return path


# --------------------------------------------------------------------------------------------
# Reading a file of problems
# --------------------------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    """The file's lines without their line ends (text-mode newlines: ``\\n``, ``\\r\\n``, ``\\r``)."""
    with open_regular(path, where="load_sequence", error=SequenceFormatError) as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SequenceFormatError(f"load_sequence: {path}, line {line}: byte {data[e.start]:#04x} at offset "
                                  f"{e.start} is not UTF-8 ({e.reason})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the last line's end
    if not lines:
        raise SequenceFormatError(f"load_sequence: {path} is empty, expected one problem a line "
                                  f"(question, then '{START}' and the answer)")
    return lines


def _split_at_start(path: Path, lines: list[str]) -> int:
    """The question length shared by every line; errors name the first line that differs."""
    starts = np.fromiter((line.find(START) for line in lines), np.int64, len(lines))
    lengths = np.fromiter(map(len, lines), np.int64, len(lines))
    q_len, line_len = int(starts[0]), int(lengths[0])
    bad = (starts < 0) | (starts != q_len) | (lengths != line_len)
    if bad.any():
        i = int(np.argmax(bad))
        where, line, start = f"load_sequence: {path}, line {i + 1}", lines[i], int(starts[i])
        if start < 0:
            raise SequenceFormatError(f"{where}: no '{START}' between question and answer in {line!r}")
        raise SequenceFormatError(
            f"{where}: question of {start} and answer of {len(line) - start} characters in {line!r}, "
            f"expected {q_len} and {line_len - q_len} as on line 1 (every line padded to one length)")
    if q_len == 0 or line_len - q_len < 2:
        raise SequenceFormatError(f"load_sequence: {path}, line 1: question of {q_len} and answer of "
                                  f"{line_len - q_len} characters in {lines[0]!r}, expected a question of at "
                                  f"least 1 and an answer of at least 2 ('{START}' and a character)")
    return q_len


def _char_ids(lines: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Ids (N, L) int32 in order of first appearance over the lines read in order (the book's
    ``_update_vocab`` of each question, then its answer: together, the line)."""
    text = "".join(lines)
    chars = sorted(set(text), key=text.find)  # the distinct characters in order of first appearance
    char_to_id = {c: i for i, c in enumerate(chars)}
    codes = np.frombuffer(text.encode("utf-32-le"), "<u4")  # one code point a character
    lookup = np.zeros(int(codes.max()) + 1, np.int32)
    lookup[[ord(c) for c in chars]] = np.arange(len(chars), dtype=np.int32)
    return lookup[codes].reshape(len(lines), -1), char_to_id


def load_sequence(name_or_path: str | os.PathLike = "addition", seed: int | None = 1984, *,
                  reverse: bool = False, download: bool = True, verify: bool = True) -> SequenceData:
    """The book's ``sequence.load_data(file_name, seed)`` and ``get_vocab()`` (DLFS2 §7.2.4, §8.3.1).

    Args:
      name_or_path: ``"addition"`` / ``"addition.txt"``, ``"date"`` / ``"date.txt"`` (the book's
        files, found and verified as the module docstring says), or the path of a file in the same
        format (such as one written by `addition_problems` or `date_problems`).
      seed: the shuffle's seed, the book's default 1984. ``None`` shuffles without a seed (as the book
        does: a different order each time).
      reverse: reverse every question, the book's ``x_train[:, ::-1]`` (the reversed input of
        DLFS2 §7.4.1; its ``eval_seq2seq`` reverses a question back to print it).
      download: fetch a missing book file (else raise `DataNotFoundError`).
      verify: check a book file found on disk against its sha256 (``False`` reads a file of one's
        own saved under the book's name; a path is a file of one's own and is never checked).

    Returns:
      `SequenceData` ``((x_train, t_train), (x_test, t_test), char_to_id, id_to_char)``: questions
      ``x (N, Tq)`` and answers ``t (N, Ta)`` as int32 character ids, ``t[:, 0]`` the id of ``_``;
      the last ``N // 10`` shuffled lines are the test split.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not 0 <= seed < 2**32):
        raise ValueError(f"load_sequence: seed is {seed!r}, expected an integer in [0, 2**32) or None")
    path = _resolve(name_or_path, download, verify)
    lines = _lines(path)
    q_len = _split_at_start(path, lines)
    ids, char_to_id = _char_ids(lines)
    order = np.arange(len(lines))
    np.random.RandomState(seed).shuffle(order)  # the book's np.random.seed(seed); np.random.shuffle(...)
    ids = ids[order]
    split = len(ids) - len(ids) // 10
    x, t = ids[:, :q_len], ids[:, q_len:]
    if reverse:
        x = np.ascontiguousarray(x[:, ::-1])
    return SequenceData((x[:split], t[:split]), (x[split:], t[split:]), char_to_id,
                        {i: c for c, i in char_to_id.items()})


# --------------------------------------------------------------------------------------------
# Generators of the same formats
# --------------------------------------------------------------------------------------------


def _write_lines(path: str | os.PathLike, lines: list[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="")
    return path


def _check_count(fn: str, n, largest: int | None = None) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{fn}: n is {n!r}, expected a positive integer")
    if largest is not None and n > largest:
        raise ValueError(f"{fn}: n is {n}, expected at most {largest} (the number of distinct problems)")


def addition_problems(path: str | os.PathLike, n: int, seed: int = 0, *, max_digits: int = 3) -> Path:
    """Write `n` addition problems in the format of the book's ``addition.txt`` (DLFS2 §7.2.4).

    Each operand has 1 to `max_digits` digits (the count uniform, then each digit uniform, so
    leading zeros make shorter numbers, as in the book's file); no two lines hold the same pair of
    operands in either order. A line is ``a+b`` padded to ``2 * max_digits + 1`` characters, ``_``,
    and the sum padded to ``max_digits + 1``: ``16+75  _91  `` for ``max_digits = 3``.
    Returns `path`.
    """
    if isinstance(max_digits, bool) or not isinstance(max_digits, int) or not 1 <= max_digits <= 9:
        raise ValueError(f"addition_problems: max_digits is {max_digits!r}, expected an integer in [1, 9]")
    values = 10 ** max_digits
    _check_count("addition_problems", n, values * (values + 1) // 2)
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    lines = []
    while len(lines) < n:  # a k-digit string of uniform digits is a uniform integer in [0, 10**k)
        operands = rng.integers(0, 10 ** rng.integers(1, max_digits + 1, (n, 2)))
        for a, b in operands.tolist():
            if (min(a, b), max(a, b)) in seen or len(lines) == n:
                continue
            seen.add((min(a, b), max(a, b)))
            lines.append(f"{a}+{b}".ljust(2 * max_digits + 1) + START + str(a + b).ljust(max_digits + 1))
    return _write_lines(path, lines)


_MONTHS = ["", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
            "November", "December"]  # English whatever the locale (strftime's %B is not)
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# The date generator's formats: the book's four (numeric M/D/YY, abbreviated month, month,
# weekday and month) and two more; each is written lower case, capitalised or upper case.
DATE_FORMATS = (
    lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",                            # 9/27/94
    lambda d: f"{_MONTHS[d.month][:3]} {d.day}, {d.year}",                        # Sep 27, 1994
    lambda d: f"{_MONTHS[d.month]} {d.day}, {d.year}",                            # September 27, 1994
    lambda d: f"{_WEEKDAYS[d.weekday()]}, {_MONTHS[d.month]} {d.day}, {d.year}",  # Tuesday, September 27, 1994
    lambda d: f"{d.day} {_MONTHS[d.month]} {d.year}",                             # 27 September 1994
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                              # 27.09.1994
)
# The question's width: the longest question, ``WEDNESDAY, SEPTEMBER 27, 1994``, as in the book's file.
DATE_WIDTH = 29


def date_problems(path: str | os.PathLike, n: int, seed: int = 0, *,
                  first: datetime.date = datetime.date(1970, 1, 1),
                  last: datetime.date = datetime.date(2017, 12, 31)) -> Path:
    """Write `n` date-format problems in the format of the book's ``date.txt`` (DLFS2 §8.3.1).

    Each line is a date between `first` and `last` (uniform, the book's file spans 1970–2017) in one
    of `DATE_FORMATS` and one of three cases (lower, capitalised, upper), padded to `DATE_WIDTH`,
    then ``_`` and the date as ``YYYY-MM-DD``: ``september 27, 1994           _1994-09-27``.
    Returns `path`.
    """
    _check_count("date_problems", n)
    if not 1000 <= first.year <= last.year <= 9999 or first > last:
        raise ValueError(f"date_problems: first is {first}, last is {last}, expected first <= last, both "
                         f"with four-digit years")
    rng = np.random.default_rng(seed)
    days = rng.integers(0, (last - first).days + 1, n)
    formats = rng.integers(0, len(DATE_FORMATS), n)
    cases = rng.integers(0, 3, n)
    lines = []
    for day, fmt, case in zip(days.tolist(), formats.tolist(), cases.tolist(), strict=True):
        d = first + datetime.timedelta(days=day)
        q = DATE_FORMATS[fmt](d)
        q = (q.lower(), q, q.upper())[case]
        lines.append(q.ljust(DATE_WIDTH) + START + d.isoformat())
    return _write_lines(path, lines)

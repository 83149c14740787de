"""Penn Treebank as DLFS2 reads it (DLFS2 §2.3.2, §5.5.3; the book's ``dataset/ptb.py``).

Mikolov's language-model split of the Penn Treebank: one sentence a line, a 10,000-word vocabulary
(``<unk>`` for rare words, ``N`` for numbers). As in the book, each line end becomes the word
``<eos>``, the text is split on white space, and word ids are given in order of first appearance in
the *training* file (so ids agree with the book's, and with its pretrained ``Rnnlm.pkl``):
train 929,589 words, valid 73,760, test 82,430.

The files are looked for in ``$FNN_DATA_DIR/ptb``, then ``${XDG_CACHE_HOME:-~/.cache}/fnn/ptb``;
when missing they are downloaded (sha256-verified) from the repository the book uses. A file found on
disk is checked against the same sha256 (remembered per path, size and mtime, so hashed once per
process); ``verify=False`` reads a corpus of one's own in the same format, which must be UTF-8 text
(no NUL bytes) of at least `MIN_WORDS` words. The corpus is not part of fnn and is never bundled (LDC
Treebank-3 derivative; for research and teaching).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from fnn.data.download import DataFormatError, find_file, open_regular
from fnn.files import data_dirs

URL_BASE = "https://raw.githubusercontent.com/tomsercu/lstm/master/data/"
FILES = {  # split -> (file name, sha256)
    "train": ("ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    "valid": ("ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    "test": ("ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
}
SPLITS = ("train", "valid", "val", "test")
MIN_WORDS = 2  # a language model needs at least one (input, target) pair


def ptb_dirs() -> list[Path]:
    """Where the PTB files are looked for, in order."""
    return data_dirs("ptb")


def ptb_file(split: str, *, download: bool = True, verify: bool = True) -> Path:
    """The path of the PTB file of `split` ("train", "valid"/"val", "test"), downloading if missing.

    A file found on disk is checked against its sha256 unless ``verify=False``.

    Raises:
      DataNotFoundError: no searched folder holds the file and it could not be downloaded.
      ChecksumError: the file found is not the published one (left in place).
      DataFormatError: the path found is a directory, FIFO, symlink loop or other non-file.
    """
    split = _split(split)
    name, sha256 = FILES[split]
    return find_file(name, ptb_dirs(), url=URL_BASE + name, sha256=sha256, where="load_ptb",
                     what=f"the PTB {name} from {URL_BASE}", download=download, verify=verify,
                     opt_out="load_ptb(split, verify=False) for a corpus of your own",
                     put="ptb.train.txt, ptb.valid.txt and ptb.test.txt")


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"load_ptb: split is {split!r}, expected one of {SPLITS}")
    return "valid" if split == "val" else split


def _words(path: Path) -> list[str]:
    """The book's tokenisation: line ends become ``<eos>``, then split on white space."""
    where = f"load_ptb: {path}"
    with open_regular(path, where="load_ptb") as f:
        data = f.read()
    nul = data.find(b"\0")
    if nul >= 0:
        raise DataFormatError(f"{where}: NUL byte at offset {nul}, expected UTF-8 text "
                              "(the file is binary, not a PTB text file)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(
            f"{where}: byte 0x{data[e.start]:02x} at offset {e.start} is not UTF-8, expected UTF-8 text "
            "(is it Latin-1 or binary? re-encode it with `iconv -f latin1 -t utf-8`)") from None
    words = text.replace("\n", "<eos>").strip().split()
    if len(words) < MIN_WORDS or all(w == "<eos>" for w in words):
        raise DataFormatError(
            f"{where}: {len(data)} bytes, {len(words)} words; expected a corpus of at least {MIN_WORDS} "
            "words (the file is empty or nearly empty)")
    return words


@functools.lru_cache(maxsize=4)
def _load(path_str: str, train_path_str: str, stamps: tuple):
    """The corpus of ``path_str`` with the vocabulary of ``train_path_str``; ``stamps`` (size and
    mtime of both) makes a changed file be read again."""
    word_to_id: dict[str, int] = {}
    for w in _words(Path(train_path_str)):
        if w not in word_to_id:
            word_to_id[w] = len(word_to_id)
    words = _words(Path(path_str))
    missing = sorted({w for w in words if w not in word_to_id})
    if missing:
        raise DataFormatError(f"load_ptb: {path_str} has {len(missing)} words not in the training "
                              f"vocabulary of {train_path_str} (e.g. {missing[:3]}); expected a PTB file")
    corpus = np.fromiter((word_to_id[w] for w in words), np.int32, len(words))
    corpus.setflags(write=False)
    return corpus, word_to_id


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def load_ptb(split: str = "train", *, download: bool = True, verify: bool = True):
    """``(corpus, word_to_id, id_to_word)`` for `split`, the book's ``ptb.load_data(split)``.

    corpus: int32 word ids (L,), read-only; word_to_id: dict str -> id; id_to_word: dict id -> str.
    The vocabulary comes from the training file for every split (DLFS2 ``load_vocab``).
    ``verify=False`` skips the sha256 check of files on disk (a corpus of one's own).

    Raises:
      DataNotFoundError: a file is neither on disk nor downloadable.
      ChecksumError: a file on disk is not the published one.
      DataFormatError: a file is not a regular file, not UTF-8 text, has fewer than `MIN_WORDS`
        words, or (valid/test) holds words missing from the training vocabulary.
    """
    split = _split(split)
    path, train = ptb_file(split, download=download, verify=verify), ptb_file("train", download=download,
                                                                               verify=verify)
    corpus, word_to_id = _load(str(path), str(train), (_stamp(path), _stamp(train)))
    return corpus, dict(word_to_id), {i: w for w, i in word_to_id.items()}

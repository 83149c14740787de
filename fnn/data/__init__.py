"""Data sets with the book's loader convention (DLFS1 §3.6.1): IDX files, MNIST, embedded digits.

Every loader returns ``((x_train, t_train), (x_test, t_test))`` as numpy arrays: images
``(N, D)`` flattened or ``(N, 1, H, W)`` (NCHW), float32 in [0, 1] when normalized; labels
int32 ``(N,)`` or float32 one-hot ``(N, 10)``.

=================  =======================================  =================
name               source                                   train / test
=================  =======================================  =================
``digits``         scikit-learn's 8x8 digits (embedded)     1437 / 360
``digits28``       the same, upsampled into 28x28           1437 / 360
``mnist``          LeCun's MNIST (IDX files)                60000 / 10000
``fashion-mnist``  Zalando's Fashion-MNIST (IDX files)      60000 / 10000
=================  =======================================  =================

Text: `load_ptb` (DLFS2's Penn Treebank) and `generated_corpus`; `load_sequence` (DLFS2's
``addition.txt`` and ``date.txt``: character ids, the book's shuffle and 45,000 / 5,000 split) with
`addition_problems` and `date_problems`, which write files of the same formats.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fnn.data.corpus import bptt_batches, eval_batches, generated_corpus, markov_language
from fnn.data.digits import load_digits
from fnn.data.download import ChecksumError, DataFormatError, DataNotFoundError, DownloadError, download
from fnn.data.idx import IdxFormatError, read_idx, write_idx
from fnn.data.mnist import load_mnist, one_hot
from fnn.data.ptb import load_ptb
from fnn.data.sequence import SequenceFormatError, addition_problems, date_problems, load_sequence
from fnn.data.weights import WeightsChecksumError, WeightsFormatError, load_book_weights, safe_load

__all__ = [
    "ChecksumError",
    "bptt_batches",
    "eval_batches",
    "generated_corpus",
    "load_book_weights",
    "load_ptb",
    "load_sequence",
    "addition_problems",
    "date_problems",
    "SequenceFormatError",
    "markov_language",
    "safe_load",
    "DATASETS",
    "DataFormatError",
    "DataNotFoundError",
    "DownloadError",
    "IdxFormatError",
    "WeightsChecksumError",
    "WeightsFormatError",
    "download",
    "load",
    "load_digits",
    "load_mnist",
    "one_hot",
    "read_idx",
    "write_idx",
]

Split = tuple[np.ndarray, np.ndarray]

DATASETS: dict[str, Callable[..., tuple[Split, Split]]] = {
    "digits": load_digits,
    "digits28": lambda **kwargs: load_digits(size=28, **kwargs),
    "mnist": lambda **kwargs: load_mnist(kind="mnist", **kwargs),
    "fashion-mnist": lambda **kwargs: load_mnist(kind="fashion-mnist", **kwargs),
}


def load(name: str, **kwargs) -> tuple[Split, Split]:
    """Load a data set by name: ``"digits"``, ``"digits28"``, ``"mnist"`` or ``"fashion-mnist"``.

    ``kwargs`` go to `load_digits` or `load_mnist` (``normalize``, ``flatten``,
    ``one_hot_label``, ...). Returns ``((x_train, t_train), (x_test, t_test))`` (DLFS1 §3.6.1).
    """
    if name not in DATASETS:
        raise ValueError(f"load: name must be one of {', '.join(DATASETS)}; got {name!r}")
    return DATASETS[name](**kwargs)

"""The embedded default data set: scikit-learn's 8x8 handwritten digits, no network needed.

scikit-learn's ``load_digits()`` ships inside its wheel: 1797 images of 8 x 8 pixels with
values 0..16 and labels 0..9 (the UCI "Optical Recognition of Handwritten Digits" test set).
`load_digits` returns it with the book's ``load_mnist`` convention (DLFS1 §3.6.1) and a fixed
split: **1437 train / 360 test** images, stratified by class, drawn from a permutation of
``np.random.default_rng(0)``. The split never changes; tests pin it.

``size=28`` gives the MNIST-shaped variant so the book's 784-input networks run unchanged:
each digit is upsampled bilinearly to 20 x 20 and centred in a 28 x 28 frame with a 4-pixel
zero margin, as MNIST centres its digits in a 20 x 20 box.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from fnn.data.mnist import as_book_arrays

__all__ = ["N_TEST", "N_TRAIN", "load_digits"]

N_TRAIN, N_TEST = 1437, 360
SIZES = (8, 28)
_BOX, _MARGIN = 20, 4  # 28 = 4 + 20 + 4, MNIST's digit box and margin


def load_digits(
    normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *, size: int = 8
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load scikit-learn's digits with the book's ``load_mnist`` convention (DLFS1 §3.6.1).

    Args:
      normalize: pixels as float32 in [0, 1] (the raw 0..16 divided by 16); else uint8
        scaled to 0..255 like MNIST.
      flatten: images as ``(N, size * size)``; else ``(N, 1, size, size)`` (NCHW).
      one_hot_label: labels as float32 one-hot ``(N, 10)``; else int32 ``(N,)`` in 0..9.
      size: 8 (the original images) or 28 (upsampled to 20 x 20, centred in 28 x 28).

    Returns:
      ``((x_train, t_train), (x_test, t_test))`` with ``N = 1437`` train and ``360`` test
      images; new arrays the caller owns.
    """
    if size not in SIZES:
        raise ValueError(f"load_digits: size must be one of {SIZES}; got {size!r}")
    x, t = _images(size)
    train_idx, test_idx = _split()
    out = []
    for idx in (train_idx, test_idx):
        xs = x[idx]  # (N, size, size) float64 in [0, 1]
        xs = xs.astype(np.float32) if normalize else np.round(xs * 255.0).astype(np.uint8)
        out.append(as_book_arrays(xs, t[idx], flatten=flatten, one_hot_label=one_hot_label))
    return out[0], out[1]


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images ``(1797, 8, 8)`` float64 in [0, 1], labels ``(1797,)``.

    Reads ``sklearn/datasets/data/digits.csv.gz`` (64 pixels and the label per row) directly,
    as ``sklearn.datasets.load_digits`` does, which saves importing scikit-learn (about 1 s);
    falls back to that function if the file ever moves.
    """
    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if csv is not None and csv.is_file():
        data = np.loadtxt(csv, delimiter=",")  # (1797, 65)
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1]
    else:
        from sklearn.datasets import load_digits as sklearn_load_digits

        bunch = sklearn_load_digits()
        images, target = bunch.images, bunch.target
    x = images / 16.0
    t = target.astype(np.int32)
    x.setflags(write=False)
    t.setflags(write=False)
    return x, t


@functools.lru_cache(maxsize=len(SIZES))
def _images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """All images at ``size`` (``(1797, size, size)`` float64 in [0, 1]) and their labels."""
    x, t = _raw()
    if size == 28:
        R = _bilinear_matrix(8, _BOX)  # (20, 8)
        box = np.einsum("ij,njk,lk->nil", R, x, R)  # (N, 20, 20) = R @ x @ R.T per image
        x = np.zeros((x.shape[0], 28, 28))
        x[:, _MARGIN : _MARGIN + _BOX, _MARGIN : _MARGIN + _BOX] = np.clip(box, 0.0, 1.0)
        x.setflags(write=False)
    return x, t


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation weights, pixel centres aligned (as in PIL/OpenCV).

    Output pixel ``i`` samples the input at ``(i + 0.5) * n_in / n_out - 0.5``, clamped to the
    edge pixels; each row is a convex combination, so values stay within the input's range.
    """
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    R = np.zeros((n_out, n_in))
    np.add.at(R, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(R, (np.arange(n_out), hi), frac)
    return R


@functools.lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified split: (train indices ``(1437,)``, test indices ``(360,)``).

    A permutation from ``default_rng(0)`` orders the images; each class sends its first
    ``k_c`` images (in that order) to the test set, with ``k_c`` its share of 360 rounded by
    largest remainder (ties to the lower class). Both index arrays keep the permuted order,
    so classes are mixed within each split.
    """
    _, t = _raw()
    n = t.shape[0]
    perm = np.random.default_rng(0).permutation(n)
    counts = np.bincount(t, minlength=10)
    share = counts * N_TEST / n
    k = np.floor(share).astype(int)
    extra = np.argsort(-(share - k), kind="stable")[: N_TEST - k.sum()]
    k[extra] += 1
    is_test = np.zeros(n, dtype=bool)
    for c in range(10):
        members = perm[t[perm] == c]
        is_test[members[: k[c]]] = True
    train_idx, test_idx = perm[~is_test[perm]], perm[is_test[perm]]
    train_idx.setflags(write=False)
    test_idx.setflags(write=False)
    return train_idx, test_idx

"""load_digits: the embedded 8x8 digits and their 28x28 MNIST-shaped variant, fixed split."""

import numpy as np
import pytest

from fnn.data import load, load_digits
from fnn.data.digits import _bilinear_matrix

N_TRAIN, N_TEST = 1437, 360


@pytest.mark.parametrize("size", [8, 28])
def test_shapes_dtypes_ranges(size):
    D = size * size
    (x, t), (x_test, t_test) = load_digits(size=size)
    assert x.shape == (N_TRAIN, D) and x_test.shape == (N_TEST, D)
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() == 1.0
    assert t.shape == (N_TRAIN,) and t_test.shape == (N_TEST,) and t.dtype == np.int32
    (x, _), (x_test, _) = load_digits(normalize=False, flatten=False, size=size)
    assert x.shape == (N_TRAIN, 1, size, size) and x_test.shape == (N_TEST, 1, size, size)
    assert x.dtype == np.uint8 and x.max() == 255


def test_unnormalized_is_normalized_times_255():
    (x, _), _ = load_digits(size=8)
    (x8, _), _ = load_digits(normalize=False, size=8)
    np.testing.assert_array_equal(x8, np.round(x.astype(np.float64) * 255).astype(np.uint8))
    np.testing.assert_array_equal(x * 16, np.round(x * 16))  # exactly the raw 0..16 / 16


def test_split_is_fixed_and_stratified():
    (x, t), (x_test, t_test) = load_digits(normalize=False)
    # The split is part of the API: pinned here so it can never change silently.
    assert t_test[:10].tolist() == [6, 6, 6, 2, 5, 6, 6, 2, 2, 1]
    assert t[:10].tolist() == [8, 7, 8, 7, 7, 8, 1, 7, 8, 3]
    assert x_test.astype(np.int64).sum() == 1802336 and x.astype(np.int64).sum() == 7151465
    assert np.bincount(t_test).tolist() == [36, 37, 35, 37, 36, 36, 36, 36, 35, 36]
    assert np.bincount(t).tolist() == [142, 145, 142, 146, 145, 146, 145, 143, 139, 144]


def test_split_deterministic_and_disjoint():
    (x1, t1), (x1_test, _) = load_digits()
    x1[:] = -1  # callers own their arrays: this must not reach the next call
    (x2, t2), (x2_test, _) = load_digits()
    assert x2.min() >= 0.0
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(x1_test, x2_test)
    train = {r.tobytes() for r in x2}
    # sklearn's digits hold a few exact duplicates, so compare counts, not sets alone
    assert sum(r.tobytes() in train for r in x2_test) < 10


def test_labels_cover_all_classes_and_one_hot():
    (_, t), (_, t_test) = load_digits(one_hot_label=True, size=28)
    for labels, n in ((t, N_TRAIN), (t_test, N_TEST)):
        assert labels.shape == (n, 10) and labels.dtype == np.float32
        np.testing.assert_array_equal(labels.sum(axis=1), 1.0)
        assert set(labels.argmax(axis=1).tolist()) == set(range(10))


def test_28_has_zero_margins_and_matches_8():
    (x8, t8), _ = load_digits(flatten=False)
    (x28, t28), _ = load_digits(flatten=False, size=28)
    np.testing.assert_array_equal(t8, t28)
    img = x28[:, 0]  # (N, 28, 28)
    assert not img[:, :4].any() and not img[:, 24:].any()
    assert not img[:, :, :4].any() and not img[:, :, 24:].any()
    # the 20x20 box keeps each digit's mean intensity (bilinear, centres aligned) to a few %
    box_mean = img[:, 4:24, 4:24].mean(axis=(1, 2))
    np.testing.assert_allclose(box_mean, x8[:, 0].mean(axis=(1, 2)), atol=0.03)


def test_bilinear_matrix():
    R = _bilinear_matrix(8, 20)
    assert R.shape == (20, 8)
    np.testing.assert_allclose(R.sum(axis=1), 1.0)
    assert (R >= 0).all()
    np.testing.assert_allclose(R @ np.arange(8.0), R[::-1] @ np.arange(8.0)[::-1])  # symmetric


def test_load_by_name():
    (x, _), _ = load("digits28", normalize=False)
    assert x.shape == (N_TRAIN, 784) and x.dtype == np.uint8
    (x, _), _ = load("digits")
    assert x.shape == (N_TRAIN, 64)


def test_bad_size():
    with pytest.raises(ValueError, match=r"size must be one of \(8, 28\); got 16"):
        load_digits(size=16)

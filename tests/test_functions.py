"""fnn.functions: values from the book, stability for large inputs, label handling and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fnn import functions as F


def test_step_sigmoid_relu_values():
    x = jnp.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(F.step_function(x), [0.0, 0.0, 1.0])  # DLFS1 §3.2.3
    np.testing.assert_allclose(F.sigmoid(x), 1 / (1 + np.exp(-np.array([-1.0, 0.0, 2.0]))),
                               rtol=1e-15)
    np.testing.assert_array_equal(F.relu(x), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(F.leaky_relu(x, 0.1), [-0.1, 0.0, 2.0])
    np.testing.assert_array_equal(F.identity(x), x)


def test_sigmoid_is_stable_for_large_inputs():
    x = jnp.array([-1000.0, 1000.0])
    y = F.sigmoid(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, [0.0, 1.0])
    g = jax.grad(lambda v: F.sigmoid(v).sum())(x)
    assert np.all(np.isfinite(g))


def test_softmax_book_example():
    a = jnp.array([0.3, 2.9, 4.0])  # DLFS1 §3.5.1
    np.testing.assert_allclose(F.softmax(a), [0.01821127, 0.24519181, 0.73659691], atol=5e-9)  # 8 printed digits


def test_softmax_large_scores_do_not_overflow():
    a = jnp.array([1010.0, 1000.0, 990.0])  # DLFS1 §3.5.2: the naive form gives nan
    y = F.softmax(a)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, F.softmax(a - 1000.0), rtol=1e-15)
    np.testing.assert_allclose(F.log_softmax(a), np.log(np.asarray(y)), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6),
                  elements=st.floats(-500, 500)))
def test_softmax_rows_sum_to_one(a):
    y = np.asarray(F.softmax(jnp.asarray(a)))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-12)
    assert np.all(y >= 0)


def test_mean_squared_error_book_example():
    t = jnp.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0.0])  # DLFS1 §4.2.1
    y = jnp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(F.mean_squared_error(y, t), 0.0975, rtol=1e-12)
    np.testing.assert_allclose(F.squared_loss(y, t), 0.0975 / 10, rtol=1e-12)


def test_cross_entropy_error_book_example_and_label_forms():
    t = jnp.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0.0])  # DLFS1 §4.2.2
    y = jnp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(F.cross_entropy_error(y, t), 0.510825457099338, rtol=1e-6)
    np.testing.assert_allclose(F.cross_entropy_error(y, jnp.array(2)), 0.510825457099338, rtol=1e-6)
    Y = jnp.stack([y, y[::-1]])
    T = jnp.array([2, 7])
    np.testing.assert_allclose(F.cross_entropy_error(Y, T),
                               F.cross_entropy_error(Y, jax.nn.one_hot(T, 10)), rtol=1e-12)


def test_cross_entropy_matches_book_form_and_is_stable():
    key = jax.random.key(0)
    a = jax.random.normal(key, (5, 7))
    t = jnp.array([0, 3, 6, 2, 2])
    book = F.cross_entropy_error(F.softmax(a), t, delta=0.0)
    np.testing.assert_allclose(F.cross_entropy(a, t), book, rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(a, jax.nn.one_hot(t, 7)), book, rtol=1e-12)
    big = a * 1e4  # softmax underflows to 0 for most classes: the book's form needs delta
    assert np.isfinite(F.cross_entropy(big, t))
    # sequence scores (N, T, C) average over N*T positions
    s = jax.random.normal(key, (2, 3, 4))
    ts = jnp.array([[0, 1, 2], [3, 0, 1]])
    np.testing.assert_allclose(F.cross_entropy(s, ts), F.cross_entropy(s.reshape(6, 4),
                                                                       ts.reshape(6)), rtol=1e-12)


def test_binary_cross_entropy_forms_agree():
    z = jnp.array([-3.0, -0.5, 0.0, 2.0, 8.0])
    t = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(z, t),
                               F.binary_cross_entropy(F.sigmoid(z), t, delta=0.0), rtol=1e-10)
    assert np.isfinite(F.binary_cross_entropy_with_logits(jnp.array([-800.0]), jnp.array([1.0])))


def test_accuracy():
    s = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(F.accuracy(s, jnp.array([1, 0, 0]))) == pytest.approx(2 / 3)
    assert float(F.accuracy(s, jax.nn.one_hot(jnp.array([1, 0, 1]), 2))) == 1.0


def test_labels_out_of_range_are_named():
    with pytest.raises(ValueError, match=r"cross_entropy: t holds the label 10, expected labels in \[0, 9\]"):
        F.cross_entropy(jnp.zeros((2, 10)), jnp.array([1, 10]))
    with pytest.raises(ValueError, match="label -1"):
        F.cross_entropy(jnp.zeros((2, 10)), jnp.array([-1, 1]))


def test_labels_of_wrong_shape_or_dtype_are_named():
    with pytest.raises(ValueError, match=r"t has shape \(3,\), expected \(2,\) \(integer labels\) or \(2, 10\)"):
        F.cross_entropy(jnp.zeros((2, 10)), jnp.array([1, 2, 3]))
    with pytest.raises(TypeError, match="t has dtype float64; integer labels of shape"):
        F.cross_entropy(jnp.zeros((2, 10)), jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"mean_squared_error: t has shape \(3,\), expected the shape of y \(4,\)"):
        F.mean_squared_error(jnp.zeros(4), jnp.zeros(3))


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="activation is 'swish', expected one of"):
        F.get_activation("swish")

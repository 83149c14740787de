"""fnn.layers.dropout: the book's convention, the inverted option, and the three-way check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.layers.dropout import dropout
from tests.helpers import check_layer


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("jit", [False, True])
def test_dropout_three_way(inverted, jit):
    x = jax.random.normal(jax.random.key(0), (6, 5))
    # the mask comes from `key`: the same key gives the same mask, so every evaluation agrees
    check_layer(dropout, {}, x, jit=jit, key=jax.random.key(1), drop_rate=0.4, inverted=inverted)
    check_layer(dropout, {}, x, jit=jit, drop_rate=0.4, inverted=inverted, train=False)


def test_book_convention_scales_at_test_time():
    x = jnp.ones((1000, 100))
    y_train, mask = dropout.forward({}, x, key=jax.random.key(0), drop_rate=0.3)
    kept = float(jnp.mean(y_train != 0))
    assert abs(kept - 0.7) < 0.01  # a unit is dropped with probability drop_rate
    assert set(np.unique(np.asarray(y_train))) <= {0.0, 1.0}  # no rescaling while training
    y_eval, _ = dropout.forward({}, x, drop_rate=0.3, train=False)
    np.testing.assert_allclose(y_eval, 0.7)  # DLFS1 §6.4.3: x * (1 - dropout_ratio)


def test_inverted_dropout_keeps_the_expectation_in_training():
    x = jnp.ones((1000, 100))
    y, _ = dropout.forward({}, x, key=jax.random.key(0), drop_rate=0.3, inverted=True)
    assert abs(float(y.mean()) - 1.0) < 0.01
    np.testing.assert_array_equal(dropout.forward({}, x, drop_rate=0.3, train=False, inverted=True)[0], x)


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"drop_rate is 1.0, expected a probability in \[0, 1\)"):
        dropout.forward({}, jnp.ones(3), key=jax.random.key(0), drop_rate=1.0)
    with pytest.raises(ValueError, match="key is None"):
        dropout.forward({}, jnp.ones(3), drop_rate=0.5)

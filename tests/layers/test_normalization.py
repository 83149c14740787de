"""fnn.layers.normalization: batch norm's three-way check, eval mode, and the running-statistics update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.layers.normalization import EPS, batch_norm, init_params, init_state
from tests.helpers import check_layer


def _setup(shape, seed=0):
    kx, kg, kb, km, kv = jax.random.split(jax.random.key(seed), 5)
    x = 2.0 * jax.random.normal(kx, shape) + 0.5
    D = int(np.prod(shape[1:]))
    params = {"gamma": 1.0 + 0.5 * jax.random.normal(kg, (D,)), "beta": jax.random.normal(kb, (D,))}
    state = {"running_mean": jax.random.normal(km, (D,)),
             "running_var": jax.random.uniform(kv, (D,), minval=0.5, maxval=2.0)}
    return params, x, state


@pytest.mark.parametrize("shape,train,jit", [((6, 4), True, False), ((6, 4), True, True),
                                             ((5, 2, 1, 3), True, True), ((6, 4), False, True)])
def test_three_way_gradient_check(shape, train, jit):
    params, x, state = _setup(shape)
    check_layer(batch_norm, params, x, jit=jit, state=state, train=train)


def test_train_mode_normalises_with_batch_statistics():
    params, x, state = _setup((8, 3))
    y, cache = batch_norm.forward(init_params(3, jnp.float64), x, state=state, train=True)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-14)
    var = np.asarray(x).var(0)
    np.testing.assert_allclose(y.var(0), var / (var + EPS), rtol=1e-12)
    y2, _ = batch_norm.forward(params, x, state=state, train=True)
    np.testing.assert_allclose(y2, params["gamma"][None, :] * y + params["beta"][None, :], rtol=1e-12)


def test_state_update_is_the_books_formula():
    params, x, state = _setup((7, 4), seed=3)
    _, cache = batch_norm.forward(params, x, state=state, train=True, momentum=0.9)
    xn = np.asarray(x)
    mu, var = xn.mean(axis=0), np.mean((xn - xn.mean(axis=0)) ** 2, axis=0)
    np.testing.assert_allclose(cache.state["running_mean"],
                               0.9 * np.asarray(state["running_mean"]) + 0.1 * mu, rtol=1e-14)
    np.testing.assert_allclose(cache.state["running_var"],
                               0.9 * np.asarray(state["running_var"]) + 0.1 * var, rtol=1e-14)
    # the state passed in is not touched (nothing mutates)
    assert not np.allclose(state["running_mean"], cache.state["running_mean"])


def test_eval_mode_uses_running_statistics_and_keeps_them():
    params, x, state = _setup((5, 3), seed=1)
    y, cache = batch_norm.forward(params, x, state=state, train=False)
    expected = (np.asarray(params["gamma"]) * (np.asarray(x) - np.asarray(state["running_mean"]))
                / np.sqrt(np.asarray(state["running_var"]) + 1e-6) + np.asarray(params["beta"]))
    np.testing.assert_allclose(y, expected, rtol=1e-13)
    assert cache.state is state
    # one sample at a time gives the same answer in eval mode (no batch dependence)
    y0, _ = batch_norm.forward(params, x[:1], state=state, train=False)
    np.testing.assert_allclose(y0, y[:1], rtol=1e-14)


def test_running_statistics_converge_to_the_data_statistics():
    """k train steps on one batch from zeros: running stats = (1 - 0.9^k) * batch stats."""
    params, x, _ = _setup((16, 2), seed=2)
    state = init_state(2, jnp.float64)
    np.testing.assert_array_equal(state["running_var"], 0.0)
    forward = jax.jit(lambda s: batch_norm.forward(params, x, state=s, train=True)[1].state)
    for _ in range(20):
        state = forward(state)
    np.testing.assert_allclose(state["running_mean"], (1 - 0.9**20) * np.asarray(x).mean(0), rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], (1 - 0.9**20) * np.asarray(x).var(0), rtol=1e-12)


def test_bad_shapes_are_named():
    params, x, state = _setup((4, 3))
    with pytest.raises(ValueError, match=r"batch_norm.forward: params\['gamma'\] has shape \(3,\), "
                                         r"expected \(5,\)"):
        batch_norm.forward(params, jnp.zeros((4, 5)), state=state)
    with pytest.raises(ValueError, match="needs rank 2 \\(N, D\\) or 4"):
        batch_norm.forward(params, jnp.zeros((4,)), state=state)
    with pytest.raises(ValueError, match="state is None"):
        batch_norm.forward(params, x, state=None)

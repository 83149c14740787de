"""fnn.models.mlp: shapes, and the hand-written backprop = jax.grad = numerical gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import gradient as G
from fnn.models import mlp


def _data(seed, N=5, D=6, C=3):
    kx, kt = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (N, D)), jax.random.randint(kt, (N,), 0, C)


def test_init_shapes_agree_with_apply():
    params = mlp.init(jax.random.key(0), 784, [50, 100], 10, weight_init=0.01)
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    np.testing.assert_array_equal(params["b2"], 0.0)
    assert abs(float(params["W1"].std()) - 0.01) < 0.001
    out = jax.eval_shape(mlp.apply, params, jax.ShapeDtypeStruct((7, 1, 28, 28), jnp.float64))
    assert out.shape == (7, 10)


def test_he_and_xavier_scales():
    for name, gain in [("he", 2.0), ("xavier", 1.0)]:
        params = mlp.init(jax.random.key(0), 400, [300], 10, weight_init=name)
        np.testing.assert_allclose(float(params["W2"].std()), np.sqrt(gain / 300), rtol=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_manual_grad_three_way(activation, seed, weight_decay):
    x, t = _data(seed)
    params = mlp.init(jax.random.key(seed + 10), 6, [4, 5], 3, weight_init=1.0, dtype=jnp.float64)
    kw = {"activation": activation, "weight_decay": weight_decay}
    errors = G.gradient_check(lambda p: mlp.manual_grad(p, x, t, **kw)[1],
                              lambda p: mlp.loss(p, x, t, **kw), params)
    assert G.max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert G.max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    value, _ = mlp.manual_grad(params, x, t, **kw)
    np.testing.assert_allclose(value, mlp.loss(params, x, t, **kw), rtol=1e-14)


def test_manual_grad_one_hot_labels_and_image_input():
    x = jax.random.normal(jax.random.key(0), (4, 1, 3, 3))
    t = jax.nn.one_hot(jnp.array([0, 2, 1, 2]), 3, dtype=x.dtype)
    params = mlp.init(jax.random.key(1), 9, [5], 3, weight_init=0.5, dtype=jnp.float64)
    errors = G.gradient_check(lambda p: mlp.manual_grad(p, x, t)[1], lambda p: mlp.loss(p, x, t), params)
    assert G.max_error(errors["manual_vs_autodiff"]) < 1e-7


def test_model_bundle_matches_functions():
    model = mlp.model(6, [4], 3, weight_init=0.1, dtype=jnp.float64)
    params, state = model.init(jax.random.key(0))
    assert state == {}
    x, t = _data(0)
    scores, _ = model.apply(params, state, x)
    np.testing.assert_allclose(scores, mlp.apply(params, x), rtol=1e-14)
    loss, grads, _ = model.manual_grad(params, state, x, t)
    (loss_auto, _), grads_auto = jax.value_and_grad(model.loss, has_aux=True)(params, state, x, t)
    np.testing.assert_allclose(loss, loss_auto, rtol=1e-14)
    assert G.max_error(G.relative_error(grads, grads_auto)) < 1e-12


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mlp.init: hidden_sizes\\[1\\] is 0, expected a positive integer"):
        mlp.init(jax.random.key(0), 4, [3, 0], 2)
    with pytest.raises(ValueError, match="activation is 'softplus'"):
        mlp.model(4, [3], 2, activation="softplus")
    with pytest.raises(ValueError, match="weight_init is 'kaiming'"):
        mlp.model(4, [3], 2, weight_init="kaiming")
    with pytest.raises(ValueError, match="weight_decay is -1"):
        mlp.model(4, [3], 2, weight_decay=-1)
    params = mlp.init(jax.random.key(0), 4, [3], 2)
    del params["b2"]
    with pytest.raises(ValueError, match="mlp: params has keys"):
        mlp.apply(params, jnp.zeros((1, 4)))

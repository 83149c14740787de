"""fnn.layers.core: the book's values for Mul/Add, and the three-way check of every layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import functions as F
from fnn import layers as L
from fnn.gradient import max_error, numerical_gradient, relative_error
from tests.helpers import check_layer

SEEDS = [0, 1, 2]


def test_apple_shopping_graph():
    """DLFS1 §5.4.1 buy_apple: 2 apples at 100 with 10 % tax cost 220; the gradients 2.2, 110, 200."""
    apple, apple_num, tax = jnp.array(100.0), jnp.array(2.0), jnp.array(1.1)
    apple_price, c1 = L.mul.forward({}, (apple, apple_num))
    price, c2 = L.mul.forward({}, (apple_price, tax))
    np.testing.assert_allclose(price, 220.0, rtol=1e-12)
    _, (dapple_price, dtax) = L.mul.backward({}, c2, jnp.array(1.0))
    _, (dapple, dapple_num) = L.mul.backward({}, c1, dapple_price)
    np.testing.assert_allclose([dapple, dapple_num, dtax], [2.2, 110.0, 200.0], rtol=1e-12)


def test_apple_orange_shopping_graph():
    """DLFS1 §5.4.2 buy_apple_orange: price 715; dapple 2.2, dapple_num 110, dorange 3.3,
    dorange_num 165, dtax 650."""
    apple, apple_num, orange, orange_num, tax = map(jnp.array, (100.0, 2.0, 150.0, 3.0, 1.1))
    apple_price, c1 = L.mul.forward({}, (apple, apple_num))
    orange_price, c2 = L.mul.forward({}, (orange, orange_num))
    all_price, c3 = L.add.forward({}, (apple_price, orange_price))
    price, c4 = L.mul.forward({}, (all_price, tax))
    np.testing.assert_allclose(price, 715.0, rtol=1e-12)
    _, (dall_price, dtax) = L.mul.backward({}, c4, jnp.array(1.0))
    _, (dapple_price, dorange_price) = L.add.backward({}, c3, dall_price)
    _, (dorange, dorange_num) = L.mul.backward({}, c2, dorange_price)
    _, (dapple, dapple_num) = L.mul.backward({}, c1, dapple_price)
    np.testing.assert_allclose([dapple, dapple_num, dorange, dorange_num, dtax],
                               [2.2, 110.0, 3.3, 165.0, 650.0], rtol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "identity"])
def test_activation_layers_three_way(name, seed, jit):
    x = jax.random.normal(jax.random.key(seed), (4, 7)) * 2
    x = jnp.where(jnp.abs(x) < 1e-3, 0.5, x)  # keep ReLU's kink away from the numerical step
    check_layer(L.activation_layer(name), {}, x, jit=jit)


def test_activation_forward_values():
    x = jnp.array([[-1.0, 2.0]])
    np.testing.assert_array_equal(L.relu.forward({}, x)[0], [[0.0, 2.0]])
    np.testing.assert_allclose(L.sigmoid.forward({}, x)[0], F.sigmoid(x), rtol=1e-15)
    np.testing.assert_allclose(L.tanh.forward({}, x)[0], np.tanh(x), rtol=1e-15)


def _affine_params(key, D, M):
    k1, k2 = jax.random.split(key)
    return {"W": jax.random.normal(k1, (D, M)), "b": jax.random.normal(k2, (M,))}


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("x_shape", [(3, 5), (2, 1, 2, 3), (1, 6)])
def test_affine_three_way(x_shape, seed, jit):
    key_p, key_x = jax.random.split(jax.random.key(seed))
    D = int(np.prod(x_shape[1:]))
    params = _affine_params(key_p, D, 4)
    x = jax.random.normal(key_x, x_shape)
    check_layer(L.affine, params, x, jit=jit)


def test_affine_flattens_images_like_the_book():
    params = _affine_params(jax.random.key(0), 12, 3)
    x = jax.random.normal(jax.random.key(1), (2, 3, 2, 2))
    y, _ = L.affine.forward(params, x)
    np.testing.assert_allclose(y, x.reshape(2, 12) @ params["W"] + params["b"][None, :], rtol=1e-14)


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_with_loss_three_way(seed, one_hot):
    key_x, key_t = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(key_x, (5, 4)) * 3
    t = jax.random.randint(key_t, (5,), 0, 4)
    if one_hot:
        t = jax.nn.one_hot(t, 4, dtype=x.dtype)
    loss, cache = L.softmax_with_loss.forward({}, x, t)
    np.testing.assert_allclose(loss, F.cross_entropy(x, t), rtol=1e-14)
    _, dx = L.softmax_with_loss.backward({}, cache, 1.0)

    def f(xx):
        return L.softmax_with_loss.forward({}, xx, t)[0]

    assert max_error(relative_error(dx, jax.grad(f)(x))) < 1e-7
    assert max_error(relative_error(dx, numerical_gradient(f, x, 1e-5))) < 1e-5
    # an upstream gradient scales the result
    _, dx2 = L.softmax_with_loss.backward({}, cache, 2.5)
    np.testing.assert_allclose(dx2, 2.5 * dx, rtol=1e-14)


def test_backward_equals_vjp_under_jit_and_mixed_layers():
    """A small Affine-ReLU-Affine-Sigmoid chain, hand backprop vs jax.grad of the composed function."""
    k = jax.random.split(jax.random.key(3), 3)
    p1, p2 = _affine_params(k[0], 6, 5), _affine_params(k[1], 5, 2)
    x = jax.random.normal(k[2], (4, 6))

    def chain(p1, p2, x):
        h, c1 = L.affine.forward(p1, x)
        h, c2 = L.relu.forward({}, h)
        h, c3 = L.affine.forward(p2, h)
        y, c4 = L.sigmoid.forward({}, h)
        return y, (c1, c2, c3, c4)

    @jax.jit
    def hand(p1, p2, x):
        y, (c1, c2, c3, c4) = chain(p1, p2, x)
        _, d = L.sigmoid.backward({}, c4, jnp.ones_like(y))
        g2, d = L.affine.backward(p2, c3, d)
        _, d = L.relu.backward({}, c2, d)
        g1, dx = L.affine.backward(p1, c1, d)
        return g1, g2, dx

    auto = jax.grad(lambda a, b, c: chain(a, b, c)[0].sum(), argnums=(0, 1, 2))(p1, p2, x)
    assert max_error(relative_error(hand(p1, p2, x), auto)) < 1e-12


def test_affine_errors_name_the_argument():
    params = _affine_params(jax.random.key(0), 784, 10)
    with pytest.raises(ValueError, match=r"affine.forward: x has 785 features per sample \(shape \(2, 785\)\), "
                                         r"expected 784 \(W.shape\[0\]\)"):
        L.affine.forward(params, jnp.zeros((2, 785)))
    with pytest.raises(ValueError, match=r"affine.forward: b has shape \(9,\), expected \(10,\)"):
        L.affine.forward({"W": params["W"], "b": jnp.zeros(9)}, jnp.zeros((2, 784)))
    with pytest.raises(ValueError, match="affine.forward: x needs rank"):
        L.affine.forward(params, jnp.zeros(784))


def test_softmax_with_loss_errors_name_the_argument():
    with pytest.raises(ValueError,
                       match=r"softmax_with_loss.forward: t holds the label 3, expected labels in \[0, 2\]"):
        L.softmax_with_loss.forward({}, jnp.zeros((2, 3)), jnp.array([0, 3]))
    with pytest.raises(ValueError, match="softmax_with_loss.forward: x is an empty batch"):
        L.softmax_with_loss.forward({}, jnp.zeros((0, 3)), jnp.zeros((0,), jnp.int32))
    with pytest.raises(ValueError, match="x needs rank 2"):
        L.softmax_with_loss.forward({}, jnp.zeros(3), jnp.array(0))

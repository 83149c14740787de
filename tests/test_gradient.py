"""fnn.gradient: numerical differentiation against known derivatives, and the gradient check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import gradient as G


def test_numerical_diff_book_example():
    def f(x):  # DLFS1 §4.3.2: y = 0.01 x^2 + 0.1 x, f'(5) = 0.2, f'(10) = 0.3
        return 0.01 * x**2 + 0.1 * x

    np.testing.assert_allclose(G.numerical_diff(f, 5.0), 0.2, rtol=1e-9)
    np.testing.assert_allclose(G.numerical_diff(f, 10.0), 0.3, rtol=1e-9)


def test_numerical_gradient_of_pytree_matches_exact():
    def f(p):
        return jnp.sum(p["a"] ** 3) + jnp.sin(p["b"]).sum() * p["c"]

    params = {"a": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.1, 0.2, 0.3]),
              "c": jnp.array(1.5)}
    num = G.numerical_gradient(f, params, h=1e-5)
    exact = jax.grad(f)(params)
    for k in params:
        np.testing.assert_allclose(num[k], exact[k], rtol=1e-8, atol=1e-10)
    assert jax.tree_util.tree_structure(num) == jax.tree_util.tree_structure(params)


def test_numerical_gradient_book_values():
    def f(x):  # DLFS1 §4.4: f(x0, x1) = x0^2 + x1^2
        return jnp.sum(x**2)

    for point, grad in [([3.0, 4.0], [6.0, 8.0]), ([0.0, 2.0], [0.0, 4.0]), ([3.0, 0.0], [6.0, 0.0])]:
        np.testing.assert_allclose(G.numerical_gradient(f, jnp.array(point)), grad, atol=1e-8)


def test_numerical_gradient_chunks_give_the_same_answer():
    def f(x):
        return jnp.sum(jnp.tanh(x) * jnp.arange(x.size).reshape(x.shape))

    x = jax.random.normal(jax.random.key(1), (7, 5))
    np.testing.assert_allclose(G.numerical_gradient(f, x, chunk=3), G.numerical_gradient(f, x),
                               rtol=1e-14)


def test_gradient_descent_book_example():
    def f(x):
        return jnp.sum(x**2)

    x, path = G.gradient_descent(jax.grad(f), jnp.array([-3.0, 4.0]), lr=0.1, step_num=100)
    np.testing.assert_allclose(x, [-3.0 * 0.8**100, 4.0 * 0.8**100], rtol=1e-10)  # x <- 0.8 x
    assert path.shape == (101, 2)
    np.testing.assert_array_equal(path[0], [-3.0, 4.0])
    # a learning rate too large diverges, too small barely moves (DLFS1 §4.4.1)
    big, _ = G.gradient_descent(jax.grad(f), jnp.array([-3.0, 4.0]), lr=10.0, step_num=100)
    small, _ = G.gradient_descent(jax.grad(f), jnp.array([-3.0, 4.0]), lr=1e-10, step_num=100)
    assert np.all(np.abs(big) > 1e10)
    np.testing.assert_allclose(small, [-3.0, 4.0], rtol=1e-7)


def test_gradient_check_detects_a_wrong_gradient():
    def f(p):
        return jnp.sum(p["w"] ** 2) + p["b"] ** 3

    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    right = G.gradient_check(lambda p: {"w": 2 * p["w"], "b": 3 * p["b"] ** 2}, f, params)
    assert G.max_error(right["manual_vs_autodiff"]) < 1e-15
    assert G.max_error(right["manual_vs_numerical"]) < 1e-8
    wrong = G.gradient_check(lambda p: {"w": 2 * p["w"], "b": 2 * p["b"] ** 2}, f, params)
    assert wrong["manual_vs_autodiff"]["b"] == pytest.approx(1 / 3)
    assert wrong["manual_vs_autodiff"]["w"] == 0.0


def test_gradient_check_names_a_mismatched_tree():
    with pytest.raises(ValueError, match="grad_manual returned a tree of structure"):
        G.gradient_check(lambda p: {"x": p["w"]}, lambda p: jnp.sum(p["w"]), {"w": jnp.ones(2)})


def test_relative_error_is_scaled_by_the_leaf():
    err = G.relative_error({"a": jnp.array([1e-12, 10.0])}, {"a": jnp.array([0.0, 10.0])})
    assert err["a"] == pytest.approx(1e-13)
    assert G.relative_error(jnp.zeros(3), jnp.zeros(3)) == 0.0

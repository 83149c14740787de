"""fnn.perceptron: the book's gates (DLFS1 ch2), XOR as two layers, the perceptron rule."""

import jax.numpy as jnp
import numpy as np
import pytest

from fnn import perceptron as P

BOOK_TABLES = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


@pytest.mark.parametrize("name", sorted(BOOK_TABLES))
def test_truth_tables_match_the_book(name):
    np.testing.assert_array_equal(P.truth_table(name), BOOK_TABLES[name])
    for (x1, x2), y in zip(np.asarray(P.INPUTS), BOOK_TABLES[name], strict=True):
        assert int(P.GATES[name](x1, x2)) == y  # scalar inputs, as the book calls them


def test_book_weights_and_boundary_is_strict():
    w, b = P.gate_params("AND")
    np.testing.assert_allclose(w, [0.5, 0.5])
    assert float(b) == pytest.approx(-0.7)
    # w . x + b == 0 exactly is 0 (the book's "tmp <= 0: return 0")
    params = P.Perceptron(jnp.array([1.0, 1.0]), jnp.array(-1.0))
    np.testing.assert_array_equal(P.perceptron(params, jnp.array([[1.0, 0.0], [1.0, 0.5]])), [0, 1])


def test_errors_name_function_and_expected():
    with pytest.raises(ValueError, match=r"gate_params: name is 'XNOR', expected one of"):
        P.gate_params("XNOR")
    with pytest.raises(ValueError, match=r"perceptron: x has shape \(3,\), expected \(\.\.\., 2\)"):
        P.perceptron(P.gate_params("OR"), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"perceptron_learn: t has shape \(3,\), expected \(4,\)"):
        P.perceptron_learn(jnp.zeros((4, 2)), jnp.zeros(3))
    with pytest.raises(TypeError, match="perceptron_learn: x has dtype int"):
        P.perceptron_learn(jnp.zeros((4, 2), jnp.int32), jnp.zeros(4))
    with pytest.raises(ValueError, match="epochs is 0"):
        P.perceptron_learn(jnp.zeros((4, 2)), jnp.zeros(4), epochs=0)


@pytest.mark.parametrize("name", ["AND", "NAND", "OR"])
def test_rule_learns_the_separable_gates(name):
    x = P.INPUTS.astype(jnp.float64)
    params, errors = P.perceptron_learn(x, P.truth_table(name), lr=0.1, epochs=20)
    assert errors.shape == (20,) and int(errors[-1]) == 0
    np.testing.assert_array_equal(P.perceptron(params, x), BOOK_TABLES[name])


def test_rule_never_learns_xor():
    x = P.INPUTS.astype(jnp.float64)
    params, errors = P.perceptron_learn(x, P.truth_table("XOR"), lr=0.1, epochs=50)
    assert int(jnp.min(errors)) >= 1  # no line separates XOR (DLFS1 §2.4)
    assert int(jnp.sum(P.perceptron(params, x) != P.truth_table("XOR"))) >= 1


def test_rule_matches_a_python_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    t = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 > 0).astype(np.float64)
    w, b, lr = np.zeros(3), 0.0, 0.2
    for _ in range(5):
        for xn, tn in zip(x, t, strict=True):
            err = tn - float(xn @ w + b > 0)
            w, b = w + lr * err * xn, b + lr * err
    params, _ = P.perceptron_learn(jnp.asarray(x), jnp.asarray(t), lr=lr, epochs=5)
    np.testing.assert_allclose(params.w, w, rtol=1e-12)
    np.testing.assert_allclose(params.b, b, rtol=1e-12, atol=1e-15)

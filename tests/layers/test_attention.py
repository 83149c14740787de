"""fnn.layers.attention: the three-way check of AttentionWeight, WeightSum, Attention and TimeAttention
(hand-written backward vs jax.vjp vs numerical, float64), their values against the book's own classes
(tests/reference/dlfs2_attention.npz, made by DLFS2's ch08/attention_layer.py at commit 842ae31), shapes,
and errors."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.gradient import max_error, numerical_gradient, relative_error
from fnn.layers import attention as A

AUTODIFF_TOL = 1e-7
NUMERICAL_TOL = 1e-5
N, T, TD, H = 3, 5, 4, 6
REF = Path(__file__).resolve().parent.parent / "reference" / "dlfs2_attention"
LAYERS = {"attention_weight": A.attention_weight, "weight_sum": A.weight_sum, "attention": A.attention,
          "time_attention": A.time_attention}


def _inputs(name, seed=0):
    k = jax.random.split(jax.random.key(seed), 2)
    hs = jax.random.normal(k[0], (N, T, H))
    if name == "weight_sum":
        return hs, jax.nn.softmax(2 * jax.random.normal(k[1], (N, T)))
    if name == "time_attention":
        return hs, jax.random.normal(k[1], (N, TD, H))
    return hs, jax.random.normal(k[1], (N, H))


def _three_way(layer, inputs, jit):
    fwd, bwd = (jax.jit(layer.forward), jax.jit(layer.backward)) if jit else layer
    y, cache = fwd(A.NO_PARAMS, *inputs)
    dout = jax.random.normal(jax.random.key(42), y.shape, y.dtype)
    grads, dxs = bwd(A.NO_PARAMS, cache, dout)
    assert grads == {}
    assert [d.shape for d in dxs] == [x.shape for x in inputs]
    _, vjp = jax.vjp(lambda *xs: layer.forward(A.NO_PARAMS, *xs)[0], *inputs)
    auto = vjp(dout)
    num = numerical_gradient(lambda xs: jnp.sum(layer.forward(A.NO_PARAMS, *xs)[0] * dout), tuple(inputs), 1e-5)
    errors = {"autodiff": max_error(relative_error(tuple(dxs), tuple(auto))),
              "numerical": max_error(relative_error(tuple(dxs), num)),
              "autodiff_vs_numerical": max_error(relative_error(tuple(auto), num))}
    assert errors["autodiff"] < AUTODIFF_TOL, errors
    assert errors["numerical"] < NUMERICAL_TOL, errors
    assert errors["autodiff_vs_numerical"] < NUMERICAL_TOL, errors
    return y, cache


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", list(LAYERS))
def test_three_way(name, jit):
    _three_way(LAYERS[name], _inputs(name), jit)


def test_shapes_and_weights():
    hs, h = _inputs("attention")
    a, cache = A.attention_weight.forward(A.NO_PARAMS, hs, h)
    assert a.shape == (N, T) and isinstance(cache, A.WeightCache)
    np.testing.assert_allclose(jnp.sum(a, axis=1), 1.0, rtol=1e-13)
    c, cache = A.attention.forward(A.NO_PARAMS, hs, h)
    assert c.shape == (N, H)
    np.testing.assert_allclose(cache.a, a, rtol=1e-13)  # the attention weights are exposed
    np.testing.assert_allclose(c, A.weight_sum.forward(A.NO_PARAMS, hs, a)[0], rtol=1e-13)
    _, hs_dec = _inputs("time_attention")
    out, tcache = A.time_attention.forward(A.NO_PARAMS, hs, hs_dec)
    assert out.shape == (N, TD, H) and tcache.a.shape == (N, TD, T)


def test_time_attention_equals_attention_step_by_step():
    """TimeAttention's vectorised forward and backward equal the book's loop of Attention layers,
    with dhs_enc the sum of the steps' dhs (DLFS2 §8.1.5)."""
    hs, hs_dec = _inputs("time_attention", seed=3)
    dout = jax.random.normal(jax.random.key(4), (N, TD, H))
    out, cache = A.time_attention.forward(A.NO_PARAMS, hs, hs_dec)
    _, (dhs_enc, dhs_dec) = A.time_attention.backward(A.NO_PARAMS, cache, dout)
    dhs_sum = jnp.zeros_like(hs)
    for u in range(TD):
        c, step = A.attention.forward(A.NO_PARAMS, hs, hs_dec[:, u])
        _, (dhs, dh) = A.attention.backward(A.NO_PARAMS, step, dout[:, u])
        np.testing.assert_allclose(out[:, u], c, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(cache.a[:, u], step.a, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dhs_dec[:, u], dh, rtol=1e-12, atol=1e-14)
        dhs_sum = dhs_sum + dhs
    np.testing.assert_allclose(dhs_enc, dhs_sum, rtol=1e-12, atol=1e-14)


def test_softmax_is_stable_for_large_scores():
    hs, h = _inputs("attention")
    a, _ = A.attention_weight.forward(A.NO_PARAMS, 1e3 * hs, 1e3 * h)
    assert bool(jnp.all(jnp.isfinite(a)))
    np.testing.assert_allclose(jnp.sum(a, axis=1), 1.0, rtol=1e-13)


# --------------------------------------------------------------------------------------------
# the book's own classes (values computed by DLFS2's code, stored in tests/reference)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book():
    note = json.loads(REF.with_suffix(".json").read_text())
    assert note["commit"].startswith("842ae31")
    with np.load(REF.with_suffix(".npz")) as f:
        return {k: jnp.asarray(f[k]) for k in f.files}


def _close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)


def test_attention_weight_equals_the_book(book):
    a, cache = A.attention_weight.forward(A.NO_PARAMS, book["hs"], book["h"])
    _, (dhs, dh) = A.attention_weight.backward(A.NO_PARAMS, cache, book["aw_da"])
    for x, k in ((a, "aw_a"), (dhs, "aw_dhs"), (dh, "aw_dh")):
        _close(x, book[k])


def test_weight_sum_equals_the_book(book):
    c, cache = A.weight_sum.forward(A.NO_PARAMS, book["hs"], book["ws_a"])
    _, (dhs, da) = A.weight_sum.backward(A.NO_PARAMS, cache, book["ws_dc"])
    for x, k in ((c, "ws_c"), (dhs, "ws_dhs"), (da, "ws_da")):
        _close(x, book[k])


def test_attention_equals_the_book(book):
    c, cache = A.attention.forward(A.NO_PARAMS, book["hs"], book["h"])
    _, (dhs, dh) = A.attention.backward(A.NO_PARAMS, cache, book["att_dc"])
    for x, k in ((c, "att_c"), (cache.a, "att_a"), (dhs, "att_dhs"), (dh, "att_dh")):
        _close(x, book[k])


def test_time_attention_equals_the_book(book):
    out, cache = jax.jit(A.time_attention.forward)(A.NO_PARAMS, book["hs_enc"], book["hs_dec"])
    _, (dhs_enc, dhs_dec) = jax.jit(A.time_attention.backward)(A.NO_PARAMS, cache, book["ta_dout"])
    for x, k in ((out, "ta_out"), (cache.a, "ta_weights"), (dhs_enc, "ta_dhs_enc"), (dhs_dec, "ta_dhs_dec")):
        _close(x, book[k])


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_errors():
    hs, h = _inputs("attention")
    with pytest.raises(ValueError, match=r"attention_weight.forward: hs needs rank 3 \(N, T, H\), but has "
                                         r"shape \(3, 6\)"):
        A.attention_weight.forward(A.NO_PARAMS, h, h)
    with pytest.raises(ValueError, match=r"attention.forward: h has shape \(3, 5\), expected \(3, 6\) to match hs"):
        A.attention.forward(A.NO_PARAMS, hs, h[:, :5])
    with pytest.raises(ValueError, match=r"attention.forward: h has shape \(2, 6\), expected \(3, 6\)"):
        A.attention.forward(A.NO_PARAMS, hs, h[:2])
    with pytest.raises(ValueError, match=r"weight_sum.forward: a has shape \(3, 4\), expected \(3, 5\)"):
        A.weight_sum.forward(A.NO_PARAMS, hs, jnp.ones((N, 4)) / 4)
    with pytest.raises(ValueError, match=r"time_attention.forward: hs_dec needs rank 3 \(N, T_dec, H\)"):
        A.time_attention.forward(A.NO_PARAMS, hs, h)
    with pytest.raises(ValueError, match=r"time_attention.forward: hs_dec has shape \(3, 4, 5\), expected "
                                         r"\(3, T_dec, 6\)"):
        A.time_attention.forward(A.NO_PARAMS, hs, jnp.zeros((N, TD, 5)))
    with pytest.raises(ValueError, match=r"time_attention.forward: hs_enc has shape \(3, 0, 6\), expected T >= 1"):
        A.time_attention.forward(A.NO_PARAMS, jnp.zeros((N, 0, H)), jnp.zeros((N, TD, H)))
    _, cache = A.time_attention.forward(A.NO_PARAMS, hs, jnp.zeros((N, TD, H)))
    with pytest.raises(ValueError, match=r"time_attention.backward: dout has shape \(3, 6\), expected \(3, 4, 6\)"):
        A.time_attention.backward(A.NO_PARAMS, cache, h)
    _, cache = A.weight_sum.forward(A.NO_PARAMS, hs, jnp.ones((N, T)) / T)
    with pytest.raises(ValueError, match=r"weight_sum.backward: dc has shape \(3, 5\), expected \(3, 6\)"):
        A.weight_sum.backward(A.NO_PARAMS, cache, jnp.zeros((N, T)))
    with pytest.raises(TypeError, match=r"attention.forward: hs has dtype int32, expected a floating dtype"):
        A.attention.forward(A.NO_PARAMS, jnp.zeros((N, T, H), jnp.int32), h)

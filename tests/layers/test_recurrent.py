"""fnn.layers.recurrent and fnn.layers.time: the three-way check of every cell and time layer
(T >= 5, stateful and stateless), the book's conventions pinned against reference formulas, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.gradient import gradient_check, max_error
from fnn.layers import recurrent as R
from fnn.layers import time as TL
from tests.helpers import check_layer

AUTODIFF_TOL = 1e-7
NUMERICAL_TOL = 1e-5
FAMILIES = ["rnn", "lstm", "gru"]
CELLS = {"rnn": R.rnn_cell, "lstm": R.lstm_cell, "gru": R.gru_cell}
N, T, D, H = 3, 6, 4, 5
tree_map, leaves = jax.tree_util.tree_map, jax.tree_util.tree_leaves


def _params(family, seed=0):
    p = R.init(jax.random.key(seed), family, D, H, dtype=jnp.float64)
    return {**p, "b": 0.3 * jax.random.normal(jax.random.key(seed + 7), p["b"].shape)}


def _randn(seed, like):
    return tree_map(lambda a: jax.random.normal(jax.random.key(seed), a.shape, a.dtype), like)


def _dot(a, b):
    return sum(jnp.sum(x * y) for x, y in zip(leaves(a), leaves(b), strict=True))


def _assert_three_way(errors):
    assert max_error(errors["manual_vs_autodiff"]) < AUTODIFF_TOL, errors
    assert max_error(errors["manual_vs_numerical"]) < NUMERICAL_TOL, errors
    assert max_error(errors["autodiff_vs_numerical"]) < NUMERICAL_TOL, errors


# --------------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------------


def _cell_inputs(family, x, state):
    return (x, *state) if family == "lstm" else (x, state)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_cell_three_way(family, jit):
    cell = CELLS[family]
    fwd, bwd = (jax.jit(cell.forward), jax.jit(cell.backward)) if jit else cell
    x = jax.random.normal(jax.random.key(1), (N, D))
    state = _randn(2, R.zero_state(family, N, H, jnp.float64))
    w = _randn(3, state)  # a random upstream gradient for every output

    def f(args):
        p, x, s = args
        return _dot(cell.forward(p, _cell_inputs(family, x, s))[0], w)

    def manual(args):
        p, x, s = args
        _, cache = fwd(p, _cell_inputs(family, x, s))
        grads, (dx, *ds) = bwd(p, cache, w)
        return grads, dx, (tuple(ds) if family == "lstm" else ds[0])

    _assert_three_way(gradient_check(manual, jax.jit(f), (_params(family), x, state)))


def test_lstm_convention_gate_order_f_g_i_o():
    """DLFS2 §6.3: A = x Wx + h Wh + b sliced f, g, i, o; c = f c_prev + g i; h = o tanh(c)."""
    p = _params("lstm")
    x = jax.random.normal(jax.random.key(1), (N, D))
    h0, c0 = _randn(2, (jnp.zeros((N, H)),) * 2)
    (h, c), _ = R.lstm_cell.forward(p, (x, h0, c0))
    A = x @ p["Wx"] + h0 @ p["Wh"] + p["b"][None, :]
    f, g, i, o = (A[:, k * H:(k + 1) * H] for k in range(4))
    sig = jax.nn.sigmoid
    c_ref = sig(f) * c0 + jnp.tanh(g) * sig(i)
    np.testing.assert_allclose(c, c_ref, rtol=1e-12)
    np.testing.assert_allclose(h, sig(o) * jnp.tanh(c_ref), rtol=1e-12)


def test_gru_convention_reset_before_matmul_update_weights_candidate():
    """DLFS2 appendix C: slices z, r, h~; h~ = tanh(x Wxh + (r h_prev) Whh + bh); h = (1-z) h_prev + z h~."""
    p = _params("gru")
    x = jax.random.normal(jax.random.key(1), (N, D))
    h0 = jax.random.normal(jax.random.key(2), (N, H))
    h, _ = R.gru_cell.forward(p, (x, h0))
    Wx, Wh, b = p["Wx"], p["Wh"], p["b"]
    sl = [slice(k * H, (k + 1) * H) for k in range(3)]
    z = jax.nn.sigmoid(x @ Wx[:, sl[0]] + h0 @ Wh[:, sl[0]] + b[None, sl[0]])
    r = jax.nn.sigmoid(x @ Wx[:, sl[1]] + h0 @ Wh[:, sl[1]] + b[None, sl[1]])
    h_hat = jnp.tanh(x @ Wx[:, sl[2]] + (r * h0) @ Wh[:, sl[2]] + b[None, sl[2]])
    np.testing.assert_allclose(h, (1 - z) * h0 + z * h_hat, rtol=1e-12)


def test_rnn_convention():
    """DLFS2 §5.3.1: h = tanh(h_prev Wh + x Wx + b)."""
    p = _params("rnn")
    x = jax.random.normal(jax.random.key(1), (N, D))
    h0 = jax.random.normal(jax.random.key(2), (N, H))
    h, _ = R.rnn_cell.forward(p, (x, h0))
    np.testing.assert_allclose(h, jnp.tanh(h0 @ p["Wh"] + x @ p["Wx"] + p["b"][None, :]), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# time layers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stateful", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_time_layer_three_way(family, stateful):
    """Over T = 6 steps; stateful: a nonzero initial state and a gradient flowing into the last
    state (checks dstate0 too); stateless: zeros in, the book's truncation (dstate=None)."""
    layer = R.time_layer(family)
    xs = jax.random.normal(jax.random.key(1), (N, T, D))
    s0 = _randn(2, R.zero_state(family, N, H, jnp.float64)) if stateful else None
    w_hs = jax.random.normal(jax.random.key(3), (N, T, H))
    w_last = _randn(4, R.zero_state(family, N, H, jnp.float64)) if stateful else None
    fwd, bwd = jax.jit(layer.forward), jax.jit(layer.backward)

    def f(args):
        p, xs, s = args
        (hs, last), _ = layer.forward(p, xs, s)
        return jnp.sum(hs * w_hs) + (_dot(last, w_last) if stateful else 0.0)

    def manual(args):
        p, xs, s = args
        _, cache = fwd(p, xs, s)
        grads, (dxs, ds0) = bwd(p, cache, w_hs, w_last)
        return (grads, dxs, ds0) if stateful else (grads, dxs, None)

    args = (_params(family), xs, s0)
    _assert_three_way(gradient_check(manual, jax.jit(f), args))


@pytest.mark.parametrize("family", FAMILIES)
def test_time_layer_equals_cell_loop_and_carries_state(family):
    """hs equal T cell steps; two halves run stateful (last state passed on) equal the whole."""
    p, layer, cell = _params(family), R.time_layer(family), CELLS[family]
    xs = jax.random.normal(jax.random.key(1), (N, T, D))
    (hs, last), _ = layer.forward(p, xs)
    s = R.zero_state(family, N, H, jnp.float64)
    for t in range(T):
        s, _ = cell.forward(p, _cell_inputs(family, xs[:, t], s))
        h = s[0] if family == "lstm" else s
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)
    (hs1, mid), _ = layer.forward(p, xs[:, :2])
    (hs2, last2), _ = layer.forward(p, xs[:, 2:], mid)
    np.testing.assert_allclose(jnp.concatenate([hs1, hs2], 1), hs, rtol=1e-12, atol=1e-14)
    for a, b in zip(leaves(last), leaves(last2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_time_layer_errors():
    p = _params("lstm")
    with pytest.raises(ValueError, match=r"time_lstm.forward: xs has shape \(3, 0, 4\).*T >= 1"):
        R.time_lstm.forward(p, jnp.zeros((N, 0, D)))
    with pytest.raises(ValueError, match=r"time_lstm.forward: xs needs rank 3"):
        R.time_lstm.forward(p, jnp.zeros((N, D)))
    with pytest.raises(ValueError, match=r"xs has shape \(3, 6, 7\), expected \(N, T, 4\)"):
        R.time_lstm.forward(p, jnp.zeros((N, T, 7)))
    with pytest.raises(ValueError, match=r"Wh has shape \(5, 15\), expected \(H, 4\*H\)"):
        R.time_lstm.forward(_params("gru"), jnp.zeros((N, T, D)))
    with pytest.raises(ValueError, match=r"state h has shape \(2, 5\), expected \(3, 5\)"):
        R.time_lstm.forward(p, jnp.zeros((N, T, D)), (jnp.zeros((2, H)), jnp.zeros((2, H))))
    with pytest.raises(ValueError, match=r"family is 'elman'"):
        R.time_layer("elman")


def test_time_layer_traced_once_under_jit():
    traces = []

    def forward(p, xs):
        traces.append(1)
        return R.time_gru.forward(p, xs)

    fwd = jax.jit(forward)
    p = _params("gru")
    for seed in range(3):
        fwd(p, jax.random.normal(jax.random.key(seed), (N, T, D)))
    assert len(traces) == 1


# --------------------------------------------------------------------------------------------
# TimeEmbedding, TimeAffine, TimeSoftmaxWithLoss, TimeDropout
# --------------------------------------------------------------------------------------------


def test_time_affine_three_way():
    p = {"W": jax.random.normal(jax.random.key(0), (D, 7)), "b": jax.random.normal(jax.random.key(1), (7,))}
    check_layer(TL.time_affine, p, jax.random.normal(jax.random.key(2), (N, T, D)), jit=True)


def test_time_dropout_three_way_and_inverted():
    xs = jax.random.normal(jax.random.key(2), (N, T, D))
    check_layer(TL.time_dropout, {}, xs, key=jax.random.key(0), drop_rate=0.5)
    ys, _ = TL.time_dropout.forward({}, jnp.ones((200, T, D)), key=jax.random.key(1), drop_rate=0.5)
    assert set(np.unique(np.asarray(ys)).tolist()) == {0.0, 2.0}  # kept units scaled by 1/(1-p)
    ys, _ = TL.time_dropout.forward({}, xs, drop_rate=0.5, train=False)
    np.testing.assert_array_equal(ys, xs)


def test_time_embedding_three_way():
    V = 9
    W = jax.random.normal(jax.random.key(0), (V, D))
    xs = jax.random.randint(jax.random.key(1), (N, T), 0, V)
    xs = xs.at[0, :2].set(3)  # repeated ids: the gradient must add up
    w = jax.random.normal(jax.random.key(2), (N, T, D))
    f = lambda p: jnp.sum(TL.time_embedding.forward(p, xs)[0] * w)  # noqa: E731

    def manual(p):
        _, cache = TL.time_embedding.forward(p, xs)
        return TL.time_embedding.backward(p, cache, w)[0]

    _assert_three_way(gradient_check(manual, f, {"W": W}))


@pytest.mark.parametrize("ignore", [False, True])
def test_time_softmax_with_loss_three_way_and_value(ignore):
    V = 7
    xs = jax.random.normal(jax.random.key(0), (N, T, V)) * 2
    ts = jax.random.randint(jax.random.key(1), (N, T), 0, V)
    if ignore:
        ts = ts.at[0, :3].set(-1).at[2, 5].set(-1)
    f = lambda x: TL.time_softmax_with_loss.forward({}, x, ts)[0]  # noqa: E731

    def manual(x):
        _, cache = TL.time_softmax_with_loss.forward({}, x, ts)
        return TL.time_softmax_with_loss.backward({}, cache, 1.0)[1]

    _assert_three_way(gradient_check(manual, f, xs))
    keep = np.asarray(ts) != -1
    logp = np.asarray(jax.nn.log_softmax(xs))
    ref = -np.mean(np.take_along_axis(logp, np.maximum(np.asarray(ts), 0)[..., None], -1)[..., 0][keep])
    np.testing.assert_allclose(f(xs), ref, rtol=1e-12)


@pytest.mark.parametrize("rows, ignore", [(4, True), (None, False)])
def test_time_affine_softmax_with_loss_three_way(rows, ignore):
    """The fused head, N*T = 18 rows: chunks of 4 (two masked padding rows), or all rows at once."""
    V = 7
    p = {"W": jax.random.normal(jax.random.key(0), (H, V)), "b": jax.random.normal(jax.random.key(1), (V,))}
    xs = jax.random.normal(jax.random.key(2), (N, T, H))
    ts = jax.random.randint(jax.random.key(3), (N, T), 0, V)
    if ignore:
        ts = ts.at[0, :3].set(-1).at[2, 5].set(-1)
    check_layer(TL.time_affine_softmax_with_loss, p, xs, ts=ts, rows=rows, jit=True)


@pytest.mark.parametrize("rows, ignore_label", [(1, -1), (4, None), (5, 2), (4, -1), (18, -1), (None, None)])
def test_time_affine_softmax_with_loss_equals_the_two_layers(rows, ignore_label):
    """Loss, dW, db, dxs as TimeAffine then TimeSoftmaxWithLoss (value by value, float64), for chunk
    sizes that do and do not divide N*T = 18, with the ignore label -1, none, and a class (2)."""
    V = 7
    p = {"W": jax.random.normal(jax.random.key(0), (H, V)), "b": jax.random.normal(jax.random.key(1), (V,))}
    xs = 2 * jax.random.normal(jax.random.key(2), (N, T, H))
    ts = jax.random.randint(jax.random.key(3), (N, T), 0, V).at[1, 1:4].set(2)
    if ignore_label == -1:
        ts = ts.at[0, :3].set(-1)
    scores, c_aff = TL.time_affine.forward(p, xs)
    loss, c_loss = TL.time_softmax_with_loss.forward({}, scores, ts, ignore_label=ignore_label)
    grads, dxs = TL.time_affine.backward(p, c_aff, TL.time_softmax_with_loss.backward({}, c_loss, 0.7)[1])
    loss2, cache = TL.time_affine_softmax_with_loss.forward(p, xs, ts, ignore_label=ignore_label, rows=rows)
    grads2, dxs2 = TL.time_affine_softmax_with_loss.backward(p, cache, 0.7)
    np.testing.assert_allclose(loss2, loss, rtol=1e-13)
    for a, b in zip(leaves((grads2, dxs2)), leaves((grads, dxs)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    if ignore_label != -1:  # one-hot labels (N, T, V) become indices as the book does
        one_hot = jax.nn.one_hot(ts, V, dtype=jnp.int32)
        loss3, _ = TL.time_affine_softmax_with_loss.forward(p, xs, one_hot, ignore_label=ignore_label, rows=rows)
        np.testing.assert_allclose(loss3, loss, rtol=1e-13)


def test_time_affine_softmax_with_loss_errors():
    p = {"W": jnp.zeros((H, 7)), "b": jnp.zeros((7,))}
    xs, ts = jnp.zeros((N, T, H)), jnp.zeros((N, T), jnp.int32)
    fwd = TL.time_affine_softmax_with_loss.forward
    with pytest.raises(ValueError, match=r"time_affine_softmax_with_loss.forward: rows is 0, expected a positive"):
        fwd(p, xs, ts, rows=0)
    with pytest.raises(ValueError, match=r"xs has shape \(3, 6, 4\), W \(5, 7\), b \(7,\), expected"):
        fwd(p, xs[..., :4], ts)
    with pytest.raises(ValueError, match=r"ts has shape \(3, 5\), expected \(3, 6\)"):
        fwd(p, xs, ts[:, :5])
    with pytest.raises(ValueError, match=r"ts holds the label 7, expected labels in \[0, 6\] or -1 \(ignored\)"):
        fwd(p, xs, ts.at[0, 0].set(7))


def test_time_softmax_with_loss_errors():
    with pytest.raises(ValueError, match=r"time_softmax_with_loss.forward: ts has shape \(3, 5\), "
                                         r"expected \(3, 6\)"):
        TL.time_softmax_with_loss.forward({}, jnp.zeros((N, T, 4)), jnp.zeros((N, 5), jnp.int32))
    with pytest.raises(ValueError, match=r"xs needs rank 3"):
        TL.time_softmax_with_loss.forward({}, jnp.zeros((N, 4)), jnp.zeros((N,), jnp.int32))

"""The book's time-distributed layers: TimeEmbedding, TimeAffine, TimeSoftmaxWithLoss, TimeDropout.

DLFS2 §5.4 (``common/time_layers.py``): each applies one layer at every time step of a sequence
batch. Shapes: N batch, T time steps, V vocabulary (classes), D/H features. Every layer is a
`fnn.layers.core.Layer` pair; the pieces are core's Affine, SoftmaxWithLoss and Dropout applied to
the (N*T, ...) rows, so their backward passes exist once.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from fnn import functions as F
from fnn._checks import check_ndim, concrete
from fnn.layers import core as L
from fnn.layers.core import Layer, Params
from fnn.layers.dropout import dropout

IGNORE_LABEL = -1


def _check_range(fn: str, name: str, ids: Array, n: int, what: str, allowed: int | None = None) -> None:
    """When `ids` is concrete, every value must lie in [0, n) (or equal `allowed`)."""
    values = concrete(ids)
    if values is None or values.size == 0:
        return
    bad = (values < 0) | (values >= n)
    if allowed is not None:
        bad &= values != allowed
    if bad.any():
        raise ValueError(f"{fn}: {name} holds {int(values[bad].flat[0])}, expected {what} in "
                         f"[0, {n - 1}]")


# --------------------------------------------------------------------------------------------
# TimeEmbedding (DLFS2 §4.1.2 Embedding, §5.4 TimeEmbedding)
# --------------------------------------------------------------------------------------------


def _embedding_forward(params: Params, xs: Array):
    """out[n, t] = W[xs[n, t]]: word ids xs (N, T) -> vectors (N, T, D); W (V, D)."""
    W = params["W"]
    check_ndim("time_embedding.forward", "W", W, 2, "(V, D)")
    if not jnp.issubdtype(xs.dtype, jnp.integer):
        raise TypeError(f"time_embedding.forward: xs has dtype {xs.dtype}, expected integer word ids")
    _check_range("time_embedding.forward", "xs", xs, W.shape[0], f"word ids (W has {W.shape[0]} rows)")
    return W[xs], (xs, W.shape[0])


def _embedding_backward(params: Params, cache, dout: Array):
    """dW = scatter-add of dout into the rows that were read (the book's ``np.add.at``); no dx."""
    xs, V = cache
    dW = jnp.zeros((V, dout.shape[-1]), dout.dtype).at[xs.reshape(-1)].add(
        dout.reshape(-1, dout.shape[-1]))
    return {"W": dW}, None


time_embedding = Layer(_embedding_forward, _embedding_backward)


# --------------------------------------------------------------------------------------------
# TimeAffine (DLFS2 §5.4.1): core's Affine on the N*T rows at once
# --------------------------------------------------------------------------------------------


def _time_affine_forward(params: Params, xs: Array):
    """ys = xs W + b per step: xs (N, T, D) -> (N, T, M); W (D, M), b (M,)."""
    check_ndim("time_affine.forward", "xs", xs, 3, "(N, T, D)")
    N, T, D = xs.shape
    y, cache = L.affine.forward(params, xs.reshape(N * T, D))
    return y.reshape(N, T, -1), cache


def _time_affine_backward(params: Params, cache, dout: Array):
    """Affine's backward over the N*T rows: dW = xs^T dout, db = sum dout, dxs = dout W^T."""
    N, T, M = dout.shape
    grads, dx = L.affine.backward(params, cache, dout.reshape(N * T, M))
    return grads, dx.reshape(N, T, -1)


time_affine = Layer(_time_affine_forward, _time_affine_backward)


# --------------------------------------------------------------------------------------------
# TimeSoftmaxWithLoss (DLFS2 §5.4.2), with the book's ignore label
# --------------------------------------------------------------------------------------------


def _time_softmax_with_loss_forward(params: Params, xs: Array, ts: Array, *,
                                    ignore_label: int | None = IGNORE_LABEL):
    """Mean cross-entropy over the (n, t) whose label is not `ignore_label` (DLFS2 §5.4.2).

    xs scores (N, T, V); ts labels (N, T) (or one-hot (N, T, V), turned into indices as the book
    does). The loss is ``-sum log softmax(xs)[t] / (number of counted labels)``. The labels become
    a one-hot mask by comparison (no scatter); the cache is (softmax * mask, one-hot, count, mask (N, T)).
    """
    fn = "time_softmax_with_loss.forward"
    check_ndim(fn, "xs", xs, 3, "(N, T, V)")
    N, T, V = xs.shape
    if N * T == 0:
        raise ValueError(f"{fn}: xs has shape {tuple(xs.shape)}, expected N >= 1 and T >= 1")
    if ts.ndim == 3:
        ts = jnp.argmax(ts, axis=-1)
    if tuple(ts.shape) != (N, T):
        raise ValueError(f"{fn}: ts has shape {tuple(ts.shape)}, expected ({N}, {T}) labels or "
                         f"({N}, {T}, {V}) one-hot")
    if not jnp.issubdtype(ts.dtype, jnp.integer):
        raise TypeError(f"{fn}: ts has dtype {ts.dtype}, expected integer labels")
    _check_range(fn, "ts", ts, V, f"labels ({V} classes)", allowed=ignore_label)
    x = xs.reshape(N * T, V)
    t = ts.reshape(N * T)
    mask = jnp.ones((N * T, 1), xs.dtype) if ignore_label is None else \
        (t != ignore_label).astype(xs.dtype)[:, None]  # (N*T, 1)
    t1 = (t[:, None] == jnp.arange(V)[None, :]).astype(xs.dtype)  # (N*T, V); the ignore label matches none
    count = jnp.maximum(jnp.sum(mask), 1.0)
    logp = F.log_softmax(x)
    loss = -jnp.sum(t1 * logp) / count
    return loss, (jnp.exp(logp) * mask, t1, count, mask.reshape(N, T))


def _time_softmax_with_loss_backward(params: Params, cache, dout: Array = 1.0):
    """dxs = dout * mask * (y - t) / count: core SoftmaxWithLoss's ``(y - t) / N`` (DLFS1 §5.6.3)
    on the N*T rows, rescaled from N*T to the counted labels (DLFS2 §5.4.2)."""
    y, t1, count, mask = cache
    (N, T), V = mask.shape, y.shape[1]
    _, dx = L.softmax_with_loss.backward(L.NO_PARAMS, (y, t1), dout * (N * T) / count)
    return L.NO_PARAMS, dx.reshape(N, T, V)


time_softmax_with_loss = Layer(_time_softmax_with_loss_forward, _time_softmax_with_loss_backward)
"""forward(params, xs, ts, *, ignore_label=-1) -> (loss, cache); backward(params, cache, dout=1.0)."""


# --------------------------------------------------------------------------------------------
# TimeDropout (DLFS2 §6.5.2): the book's TimeDropout is inverted dropout
# --------------------------------------------------------------------------------------------


def _time_dropout_forward(params: Params, xs: Array, *, key: Array | None = None,
                          drop_rate: float = 0.5, train: bool = True):
    """Inverted dropout on every element of xs (N, T, D) (DLFS2 §6.5.2, ``TimeDropout``).

    Unlike DLFS1's Dropout, the book's TimeDropout divides the kept units by 1 - drop_rate in
    training and is the identity at evaluation; this is `fnn.layers.dropout` with ``inverted=True``.
    """
    return dropout.forward(params, xs, key=key, drop_rate=drop_rate, train=train, inverted=True)


time_dropout = Layer(_time_dropout_forward, dropout.backward)

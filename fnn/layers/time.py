"""The book's time-distributed layers: TimeEmbedding, TimeAffine, TimeSoftmaxWithLoss, TimeDropout.

DLFS2 §5.4 (``common/time_layers.py``): each applies one layer at every time step of a sequence
batch. Shapes: N batch, T time steps, V vocabulary (classes), D/H features. Every layer is a
`fnn.layers.core.Layer` pair; the pieces are core's Affine, SoftmaxWithLoss and Dropout applied to
the (N*T, ...) rows, so their backward passes exist once.

`time_affine_softmax_with_loss` is TimeAffine followed by TimeSoftmaxWithLoss as one layer, the LM's
output head, run over chunks of rows so that the (N*T, V) scores never leave the CPU's cache; the
LMs' hand-written gradient (`fnn.models.rnnlm.manual_grad`) uses it.

Ids and labels are checked (integers, in range) when the layers are called with concrete arrays.
Under `jit` no value check can run, and JAX clamps an out-of-range gather: id 7 (or -1) of a
5-word vocabulary reads row 4, a label 7 of 3 classes scores as class 2; the drivers (`fnn.lm`)
check their corpus once on the host before compiling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from fnn import functions as F
from fnn._checks import check_distribution, check_ids, check_ndim, check_positive_int
from fnn.layers import core as L
from fnn.layers.core import Layer, Params
from fnn.layers.dropout import dropout

IGNORE_LABEL = -1


def _labels(fn: str, ts: Array, xs: Array, V: int, ignore_label: int | None) -> Array:
    """Labels ts (N, T) for xs (N, T, ...), or one-hot (N, T, V) turned into indices as the book
    does, checked."""
    N, T = xs.shape[:2]
    if N * T == 0:
        raise ValueError(f"{fn}: xs has shape {tuple(xs.shape)}, expected N >= 1 and T >= 1")
    if ts.ndim == 3:
        check_distribution(fn, "ts", ts)
        ts = jnp.argmax(ts, axis=-1)
    if tuple(ts.shape) != (N, T):
        raise ValueError(f"{fn}: ts has shape {tuple(ts.shape)}, expected ({N}, {T}) labels or "
                         f"({N}, {T}, {V}) one-hot")
    check_ids(fn, "ts", ts, V, what="labels", unit="classes", allowed=ignore_label, noun="the label")
    return ts


def _mask(t: Array, ignore_label: int | None, dtype) -> Array:
    """1.0 where a label counts, 0.0 where it is `ignore_label` (the book's ``mask``), t's shape."""
    return jnp.ones(t.shape, dtype) if ignore_label is None else (t != ignore_label).astype(dtype)


# --------------------------------------------------------------------------------------------
# TimeEmbedding (DLFS2 §4.1.2 Embedding, §5.4 TimeEmbedding)
# --------------------------------------------------------------------------------------------


def _embedding_forward(params: Params, xs: Array):
    """out[n, t] = W[xs[n, t]]: word ids xs (N, T) -> vectors (N, T, D); W (V, D)."""
    W = params["W"]
    check_ndim("time_embedding.forward", "W", W, 2, "(V, D)")
    check_ids("time_embedding.forward", "xs", xs, W.shape[0], what="word ids", unit="rows of W")
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
    ts = _labels(fn, ts, xs, V, ignore_label)
    x = xs.reshape(N * T, V)
    t = ts.reshape(N * T)
    mask = _mask(t, ignore_label, xs.dtype)[:, None]  # (N*T, 1)
    t1 = (t[:, None] == jnp.arange(V)[None, :]).astype(xs.dtype) * mask  # (N*T, V); 0 where ignored
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


# forward(params, xs, ts, *, ignore_label=-1) -> (loss, cache); backward(params, cache, dout=1.0).
time_softmax_with_loss = Layer(_time_softmax_with_loss_forward, _time_softmax_with_loss_backward)


# --------------------------------------------------------------------------------------------
# TimeAffine + TimeSoftmaxWithLoss fused, in cache-sized chunks of rows (DLFS2 §5.4.1–5.4.2)
# --------------------------------------------------------------------------------------------

# Rows per chunk of `time_affine_softmax_with_loss`: a (100, V = 10000) block of scores, softmax
# and dscores is 4 MB in float32, which stays in cache. On one CPU core the LM head at the book's
# sizes (N*T = 700 rows, H = 100) ran 1.9x faster than unchunked (124 -> 74 ms on an idle core; the
# three matmuls alone take 70 ms). A GPU has no such cache problem: on an H100 the chunked LM step
# was 7% slower than the unchunked one (1.61 vs 1.51 ms), so pass ``rows=None`` there.
HEAD_ROWS = 100


def _head_chunk(params: Params, x: Array, t1: Array, mask: Array):
    """One chunk of C rows, x (C, H), one-hot t1 (C, V) (zero where masked), mask (C,): the summed
    loss and, at dout = 1, its dW, db, dx. Core's Affine and SoftmaxWithLoss (DLFS1 §5.6.2–5.6.3)
    on the chunk; dscores = (softmax * mask - t1) is the book's ``y - t`` without its / C."""
    C = x.shape[0]
    s, x_cache = L.affine.forward(params, x)                                # (C, V)
    loss, (y, _) = L.softmax_with_loss.forward(L.NO_PARAMS, s, t1)         # mean over the C rows
    _, ds = L.softmax_with_loss.backward(L.NO_PARAMS, (y * mask[:, None], t1), C)  # (C, V)
    grads, dx = L.affine.backward(params, x_cache, ds)
    return loss * C, grads, dx


def _affine_softmax_forward(params: Params, xs: Array, ts: Array, *,
                            ignore_label: int | None = IGNORE_LABEL, rows: int | None = HEAD_ROWS):
    """TimeSoftmaxWithLoss(TimeAffine(xs), ts) (DLFS2 §5.4.1–5.4.2), `rows` rows at a time.

    xs (N, T, H); W (H, V), b (V,); ts (N, T) labels (or one-hot (N, T, V)). The same loss as
    `time_affine` then `time_softmax_with_loss`, but the N*T rows run as a `lax.scan` over chunks of
    at most `rows` (None: one chunk), so the (rows, V) scores never go to memory. A chunk's
    gradient costs two more matmuls on data already in cache, so the forward computes it too (at
    dout = 1: the loss is a scalar) and the cache is (dW, db, dxs); the backward only scales it.
    Rows that do not fill the last chunk are padded with masked rows (label -1, mask 0).
    """
    fn = "time_affine_softmax_with_loss.forward"
    W, b = params["W"], params["b"]
    check_ndim(fn, "xs", xs, 3, "(N, T, H)")
    check_ndim(fn, "W", W, 2, "(H, V)")
    (N, T, H), V = xs.shape, W.shape[1]
    if W.shape[0] != H or tuple(b.shape) != (V,):
        raise ValueError(f"{fn}: xs has shape {tuple(xs.shape)}, W {tuple(W.shape)}, b "
                         f"{tuple(b.shape)}, expected (N, T, H), (H, V), (V,)")
    rows = check_positive_int(fn, "rows", rows, or_none=True)
    ts = _labels(fn, ts, xs, V, ignore_label)
    R = N * T
    k = 1 if rows is None else -(-R // rows)  # chunks
    C = -(-R // k)                            # rows per chunk: k*C - R < k padded rows
    pad = k * C - R
    x = jnp.pad(xs.swapaxes(0, 1).reshape(R, H), ((0, pad), (0, 0)))  # time-major rows (kC, H)
    t = jnp.pad(ts.T.reshape(R), (0, pad), constant_values=-1)          # (kC,)
    mask = _mask(t, ignore_label, xs.dtype) * (jnp.arange(k * C) < R)   # (kC,)

    def body(acc, chunk):
        x_c, t_c, m_c = chunk                                            # (C, H), (C,), (C,)
        t1 = (t_c[:, None] == jnp.arange(V)[None, :]).astype(xs.dtype) * m_c[:, None]  # (C, V)
        loss, grads, dx = _head_chunk(params, x_c, t1, m_c)
        return (acc[0] + loss, acc[1] + grads["W"], acc[2] + grads["b"]), dx

    zero = (jnp.zeros((), xs.dtype), jnp.zeros(W.shape, xs.dtype), jnp.zeros((V,), xs.dtype))
    (loss, dW, db), dx = jax.lax.scan(
        body, zero, (x.reshape(k, C, H), t.reshape(k, C), mask.reshape(k, C)))
    count = jnp.maximum(jnp.sum(mask), 1.0)
    dxs = dx.reshape(k * C, H)[:R].reshape(T, N, H).swapaxes(0, 1) / count  # (N, T, H)
    return loss / count, (dW / count, db / count, dxs)


def _affine_softmax_backward(params: Params, cache, dout: Array = 1.0):
    """dW = xs^T dscores, db = sum dscores, dxs = dscores W^T with dscores = mask * (y - t) /
    count (DLFS1 §5.6.2–5.6.3, DLFS2 §5.4.2), computed by the forward at dout = 1; scaled by dout."""
    dW, db, dxs = cache
    return {"W": dout * dW, "b": dout * db}, dout * dxs


# forward(params, xs, ts, *, ignore_label=-1, rows=HEAD_ROWS) -> (loss, cache);
# backward(params, cache, dout=1.0) -> ({"W", "b"}, dxs): the LM's output head in one layer.
time_affine_softmax_with_loss = Layer(_affine_softmax_forward, _affine_softmax_backward)


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

"""Prototypes for the model owners: faster variants of fnn's steps, timed by `scripts/bench.py`.

Not part of the library; each shows, in the same process as the rest of the benchmark, what a
change to fnn would buy. Every prototype computes the same loss and gradients as fnn's manual path.

* ``proto_chunked_head`` (LSTM / GRU LM): fnn's own TimeEmbedding and TimeLSTM/TimeGRU
  forward/backward, but the output head (TimeAffine + TimeSoftmaxWithLoss, forward and the book's
  ``(y - t) / N`` backward) runs as a ``lax.scan`` over chunks of `HEAD_ROWS` rows (5 time steps of
  20 sequences), accumulating dW and db. The (rows, V) scores, softmax and dscores of a chunk
  (100 x 10000 floats, 4 MB) stay in cache instead of three 28 MB passes through memory; measured
  on one core the head went from 124 to 74 ms (the matmuls alone take 70 ms).
"""

from __future__ import annotations

HEAD_ROWS = 100


def _head_chunk(h2, t, W, b):
    """Softmax-with-loss of scores h2 W + b on one chunk of rows: (loss sum, dW, db, dh) with the
    book's backward dscores = softmax - one-hot (DLFS1 §5.6.3), unscaled (the caller divides)."""
    import jax.numpy as jnp

    s = h2 @ W + b[None, :]                                   # (C, V)
    m = jnp.max(s, axis=1, keepdims=True)
    e = jnp.exp(s - m)
    z = jnp.sum(e, axis=1, keepdims=True)
    loss = jnp.sum(jnp.log(z[:, 0]) + m[:, 0] - jnp.take_along_axis(s, t[:, None], axis=1)[:, 0])
    d = e / z - (t[:, None] == jnp.arange(W.shape[1])[None, :])  # (C, V)
    return loss, h2.T @ d, d.sum(axis=0), d @ W.T


def chunked_head(W, b, hs, ts, rows: int = HEAD_ROWS):
    """Mean cross-entropy of hs (N, T, H) W + b at labels ts (N, T), and (dW, db, dhs)."""
    import jax
    import jax.numpy as jnp

    N, T, H = hs.shape
    R = N * T
    rows = rows if R % rows == 0 else R
    h2 = hs.transpose(1, 0, 2).reshape(R // rows, rows, H)    # time-major chunks
    t2 = ts.T.reshape(R // rows, rows)

    def body(acc, xs):
        loss, dW, db, dh = _head_chunk(xs[0], xs[1], W, b)
        return (acc[0] + loss, acc[1] + dW, acc[2] + db), dh

    zero = (jnp.zeros((), hs.dtype), jnp.zeros_like(W), jnp.zeros_like(b))
    (loss, dW, db), dh = jax.lax.scan(body, zero, (h2, t2))
    dhs = dh.reshape(T, N, H).transpose(1, 0, 2) / R
    return loss / R, dW / R, db / R, dhs


def lm_chunked_head(cfg, xs, ts, family="lstm"):
    """A jitted LM step: fnn's embedding and recurrent layers, `chunked_head`, fnn.optim.adam."""
    import jax
    import jax.numpy as jnp
    import optax

    import fnn.optim
    from fnn.layers import recurrent as R
    from fnn.layers import time as TL
    from fnn.models import rnnlm

    V, D, H = cfg["V"], cfg["D"], cfg["H"]
    params = rnnlm.init(jax.random.key(0), V, D, H, rnnlm.Config(family))
    opt = fnn.optim.adam(1e-3)
    layer = R.time_layer(family)
    state = jax.tree_util.tree_map(lambda a: a.copy(), R.zero_state(family, xs.shape[0], H))  # no aliasing

    def step(carry, xs, ts):
        params, opt_state, state = carry
        x, c_emb = TL.time_embedding.forward(params["embed"], xs)
        (hs, last), c_rnn = layer.forward(params[family], x, state)
        loss, dW, db, dhs = chunked_head(params["affine"]["W"], params["affine"]["b"], hs, ts)
        g_rnn, (dx, _) = layer.backward(params[family], c_rnn, dhs)
        g_emb, _ = TL.time_embedding.backward(params["embed"], c_emb, dx)
        grads = {"embed": g_emb, family: g_rnn, "affine": {"W": dW, "b": db}}
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, last), loss

    carry = (params, opt.init(params), state)
    return jax.jit(step, donate_argnums=0), carry, (jnp.asarray(xs), jnp.asarray(ts))

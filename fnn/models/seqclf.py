"""A sequence classifier: an RNN, LSTM or GRU reads an image row by row, its last hidden state is
classified by an Affine layer (DLFS2 ch6's gated RNNs applied as in the seeds' digit experiments).

    x (N, T, D) -> Time{RNN,LSTM,GRU} -> h_T (N, H) -> Affine -> scores (N, C)  (-> SoftmaxWithLoss)

An image batch (N, 1, Hh, Ww) or flattened (N, Hh*Ww) with ``rows=Hh`` is read as T = Hh steps of
D = Ww pixels. Parameters: ``{"rnn"/"lstm"/"gru": {"Wx", "Wh", "b"}, "affine": {"W", "b"}}``.
The model is stateless: every sequence starts from a zero state. `loss` and `manual_grad` share
`_forward`; the hand-written gradient feeds dh only into the last step of the BPTT.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from fnn import init as initializers
from fnn.layers import core as L
from fnn.layers import recurrent as R
from fnn.models._model import Model, Params


def _as_sequence(x: Array, rows: int) -> Array:
    """(N, T, D), from (N, T, D), (N, 1, T, D) or (N, T*D)."""
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        if x.shape[1] % rows:
            raise ValueError(f"seqclf: x has shape {tuple(x.shape)}, expected (N, rows*D) with "
                             f"rows={rows}")
        x = x.reshape(x.shape[0], rows, -1)
    if x.ndim != 3:
        raise ValueError(f"seqclf: x has shape {tuple(x.shape)}, expected (N, T, D), "
                         f"(N, 1, T, D) or (N, T*D)")
    return x


def _forward(params: Params, x: Array, family: str, rows: int):
    xs = _as_sequence(x, rows)
    (hs, _), rnn_cache = R.time_layer(family).forward(params[family], xs)
    scores, aff_cache = L.affine.forward(params["affine"], hs[:, -1])
    return scores, (rnn_cache, aff_cache, hs.shape)


def model(input_size: int, hidden_size: int, num_classes: int, *, family: str = "lstm",
          rows: int | None = None, dtype=jnp.float32) -> Model:
    """Classify sequences of `input_size` features (rows of `input_size` pixels) into
    `num_classes`. `rows` (default `input_size`, a square image) reshapes flattened images."""
    if family not in R.FAMILIES:
        raise ValueError(f"seqclf.model: family is {family!r}, expected one of {sorted(R.FAMILIES)}")
    rows = input_size if rows is None else rows

    def init_(key):
        k1, k2 = jax.random.split(key)
        return {family: R.init(k1, family, input_size, hidden_size, dtype=dtype),
                "affine": {"W": initializers.xavier(k2, (hidden_size, num_classes), dtype),
                           "b": jnp.zeros((num_classes,), dtype)}}, {}

    def apply_(params, state, x, *, train=False, key=None):
        return _forward(params, x, family, rows)[0], state

    def loss_(params, state, x, t, *, key=None):
        scores, _ = _forward(params, x, family, rows)
        return L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)[0], state

    def manual_grad_(params, state, x, t, *, key=None):
        scores, (rnn_cache, aff_cache, (N, T, H)) = _forward(params, x, family, rows)
        value, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
        _, dscores = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
        g_aff, dh = L.affine.backward(params["affine"], aff_cache, dscores)
        dhs = jnp.zeros((N, T, H), dh.dtype).at[:, -1].set(dh)  # only h_T reaches the loss
        g_rnn, _ = R.time_layer(family).backward(params[family], rnn_cache, dhs)
        return value, {family: g_rnn, "affine": g_aff}, state

    return Model(init_, apply_, loss_, manual_grad_, name=f"seqclf[{family},H={hidden_size}]")

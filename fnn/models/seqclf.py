"""A sequence classifier: an RNN, LSTM or GRU reads an image row by row, its last hidden state is
classified by an Affine layer (DLFS2 ch6's gated RNNs applied as in the seeds' digit experiments).

    x (N, T, D) -> Time{RNN,LSTM,GRU} -> h_T (N, H) -> Affine -> scores (N, C)  (-> SoftmaxWithLoss)

An image batch (N, 1, Hh, Ww) or flattened (N, Hh*Ww) with ``rows=Hh`` is read as T = Hh steps of
D = Ww pixels. Parameters: ``{"rnn"/"lstm"/"gru": {"Wx", "Wh", "b"}, "affine": {"W", "b"}}``.
The model is stateless: every sequence starts from a zero state. `network` lists the three layers
and `fnn.models.runner` runs them: `loss` and `manual_grad` share its forward, and the runner's
backward feeds dh only into the last step of the BPTT (`runner.last_step`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from fnn import init as initializers
from fnn.layers import core as L
from fnn.layers import recurrent as R
from fnn.models import runner
from fnn.models._model import Model, check_positive_int
from fnn.models.runner import Node

__all__ = ["model", "network"]


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


def network(family: str) -> tuple[Node, ...]:
    """Time{RNN,LSTM,GRU} from a zero state, its last hidden state, an Affine (DLFS2 §6.3, §7.3.1)."""
    return (Node(f"Time{family.upper()}", R.time_layer(family), family, carry=True),
            Node("last step", runner.last_step),
            Node("Affine", L.affine, "affine"))


def model(input_size: int, hidden_size: int, num_classes: int, *, family: str = "lstm",
          rows: int | None = None, dtype=jnp.float32) -> Model:
    """Classify sequences of `input_size` features (rows of `input_size` pixels) into
    `num_classes`. `rows` (default `input_size`, a square image) reshapes flattened images."""
    if family not in R.FAMILIES:
        raise ValueError(f"seqclf.model: family is {family!r}, expected one of {sorted(R.FAMILIES)}")
    rows = input_size if rows is None else rows
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_classes", num_classes), ("rows", rows)):
        check_positive_int("seqclf.model", name, value)
    net = network(family)

    def forward(params, x):
        return runner.forward(net, params, _as_sequence(x, rows), name="seqclf")[:2]

    def init_(key):
        k1, k2 = jax.random.split(key)
        return {family: R.init(k1, family, input_size, hidden_size, dtype=dtype),
                "affine": {"W": initializers.xavier(k2, (hidden_size, num_classes), dtype),
                           "b": jnp.zeros((num_classes,), dtype)}}, {}

    def apply_(params, state, x, *, train=False, key=None):
        return forward(params, x)[0], state

    def loss_(params, state, x, t, *, key=None):
        scores, _ = forward(params, x)
        return L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)[0], state

    def manual_grad_(params, state, x, t, *, key=None):
        scores, caches = forward(params, x)
        value, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
        _, dscores = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
        grads, _, _ = runner.backward(net, params, caches, dscores)
        return value, grads, state

    return Model(init_, apply_, loss_, manual_grad_, name=f"seqclf[{family},H={hidden_size}]")

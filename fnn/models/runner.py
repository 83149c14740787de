"""The layer runner: a network as a sequence of layers, run forward collecting caches, then backward
in reverse order (DLFS1 §5.7.2; the book's ``OrderedDict`` of layers in ``MultiLayerNet.gradient``,
stax's ``serial``).

A network is a tuple of `Node`s. A node is one layer of `fnn.layers` (a forward/backward pair, see
`fnn.layers.core`), its name, where its parameters (and model state) live in the model's pytrees, and
its static options:

    Node(name, layer, params=None, options=None, state=None, *, rng=False, train=False, carry=False,
         fast=None)

* ``params``: None (no parameters), a key (``"lstm"``: ``params["lstm"]`` is the layer's dict) or a
  mapping from the layer's names to the model's flat keys (``{"W": "W1", "b": "b1"}``).
* ``options``: keyword arguments of ``layer.forward`` (``{"stride": 1, "pad": 0}``).
* ``state``: where its model state lives, as ``params``. Batch norm's style: ``forward(..., state=s)``,
  the new state is ``cache.state`` (`fnn.layers.normalization`). With ``carry=True``, a time layer's
  style (`fnn.layers.recurrent`): ``forward(p, xs, s) -> ((hs, last), cache)``, the new state is
  ``last``, and ``backward(p, cache, dhs) -> (grads, (dxs, dstate))``; ``state=None`` there starts
  from zeros and keeps nothing (a stateless RNN).
* ``rng``: forward takes ``key=``, one of ``jax.random.split(key, number of rng nodes)`` in order.
* ``train``: forward takes ``train=`` (dropout, batch norm).
* ``fast``: ``fast(p, x, **options) -> y``, a forward without a cache that ``forward(fast=True)`` runs
  instead (a model's ``apply``, and the loss ``jax.grad`` differentiates; e.g. `conv2d_nhwc`).

Two functions run a network (the loss layer stays with the model, which knows its labels):

    forward(net, params, x, *, state=None, train=False, key=None, fast=False, name="network")
        -> (y, caches, new_state)             # caches is None when fast=True
    backward(net, params, caches, dout)
        -> (grads, dx, dstate)                # grads in params' order; dstate: {state key: d/d state}

Both gradient paths run the same `forward`: ``jax.grad`` differentiates it (through the caches,
which it ignores), and `backward` runs the layers' hand-written backward passes. A parameter read
by two nodes gets the sum of their gradients. An error inside a layer names the network, the node's
position and name: ``mlp layer 3 (Affine2): affine.forward: x has 8 features ...``.

Example, the encoder and decoder of DLFS2 §7.3 (``Seq2seq``)::

    from fnn.layers import recurrent as R, time as T
    from fnn.models.runner import Node, backward, forward, last_step

    encoder = (Node("embed", T.time_embedding, "embed"),
               Node("lstm", R.time_lstm, "lstm", carry=True),
               Node("last", last_step))                                   # hs[:, -1]: h (N, H)
    decoder = (Node("embed", T.time_embedding, "embed"),
               Node("lstm", R.time_lstm, "lstm", state="lstm", carry=True),  # starts from h
               Node("affine", T.time_affine, "affine"))
    h, enc_caches, _ = forward(encoder, params["encoder"], xs)
    scores, dec_caches, _ = forward(decoder, params["decoder"], ts_in,
                                    state={"lstm": (h, jnp.zeros_like(h))})
    ...                                                                   # loss, dscores
    dec_grads, _, dstate = backward(decoder, params["decoder"], dec_caches, dscores)
    enc_grads, _, _ = backward(encoder, params["encoder"], enc_caches, dstate["lstm"][0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from fnn.layers.core import NO_PARAMS, Layer

__all__ = ["backward", "forward", "last_step", "Node", "Where"]

# Where a node's parameters (or state) live: None, a key of a nested pytree, or {layer name: key}.
Where = str | Mapping[str, str] | None


class Node(NamedTuple):
    """One layer of a network: the book's ``self.layers["Affine1"] = Affine(W1, b1)``, made pure.

    ``name`` labels it in errors; ``layer`` is a forward/backward pair; ``params`` says where its
    parameters live in the model's params (None, a key such as ``"lstm"``, or a mapping such as
    ``{"W": "W1", "b": "b1"}``); ``options`` are static keyword arguments of its forward; ``state``
    says where its model state lives (batch norm's running statistics, a recurrent carry); ``rng``
    and ``train`` make the runner pass ``key=`` and ``train=``; ``carry`` marks a time layer with a
    recurrent carry (`fnn.layers.recurrent`'s convention); ``fast(p, x, **options) -> y`` is a
    forward without a cache that ``forward(fast=True)`` runs instead. The module docstring has an
    example.
    """

    name: str                  # the book's name in its OrderedDict ("Affine1"); errors use it
    layer: Layer               # forward(params, x, **options) -> (y, cache); backward -> (grads, dx)
    params: Where = None       # None, "lstm" (params["lstm"]), or {"W": "W1", "b": "b1"}
    options: Mapping[str, Any] | None = None  # static keyword arguments of layer.forward
    state: Where = None        # where its model state lives (batch norm, a recurrent carry)
    rng: bool = False          # forward takes key= (dropout)
    train: bool = False        # forward takes train= (dropout, batch norm)
    carry: bool = False        # a time layer: forward(p, xs, state) -> ((hs, last), cache)
    fast: Callable[..., Array] | None = None  # fast(p, x, **options) -> y, no cache


def _take(tree, where: Where, what: str, *, missing_ok: bool = False):
    """The node's part of `tree`: {} for None, tree[key] for a key, {name: tree[key]} for a mapping."""
    if where is None:
        return NO_PARAMS
    keys = [where] if isinstance(where, str) else list(where.values())
    absent = [k for k in keys if k not in tree]
    if absent and isinstance(where, str) and missing_ok:
        return None
    if absent:
        raise ValueError(f"{what} has no {absent[0]!r}; it has keys {sorted(tree)}")
    return tree[where] if isinstance(where, str) else {name: tree[k] for name, k in where.items()}


def _put(tree: dict, where: Where, value, *, add: bool = False) -> None:
    """Store the node's `value` at `where` in `tree` (summed with what is there when `add`)."""
    if where is None:
        return
    items = [(where, value)] if isinstance(where, str) else [(k, value[n]) for n, k in where.items()]
    for k, v in items:
        tree[k] = jax.tree_util.tree_map(jnp.add, tree[k], v) if add and k in tree else v


def forward(net: Sequence[Node], params, x, *, state=None, train: bool = False,
            key: Array | None = None, fast: bool = False, name: str = "network"):
    """Run the nodes in order on x (DLFS1 §5.7.2, ``MultiLayerNet.predict``); returns ``(y, caches,
    new_state)``.

    `state` (a dict, or None for {}) holds the stateful nodes' state; `new_state` is a copy with
    theirs replaced. With ``train=True`` the `rng` nodes draw from one key each, split from `key`.
    ``fast=True`` runs the nodes' `fast` forwards where they have one and keeps no caches (None).
    """
    state = {} if state is None else state
    drawing = [node.name for node in net if node.rng]
    keys = iter(())
    if train and drawing:
        if key is None:
            raise ValueError(f"{name}: train is True, but key is None; expected a jax.random key for "
                             f"the random masks of {', '.join(drawing)}")
        keys = iter(jax.random.split(key, len(drawing)))
    new_state, caches = dict(state), []
    for i, node in enumerate(net, start=1):
        kw = dict(node.options or {})
        if node.rng:
            kw["key"] = next(keys, None)
        if node.train:
            kw["train"] = train
        try:
            p = _take(params, node.params, "params")
            if fast and node.fast is not None:
                x, cache = node.fast(p, x, **kw), None
            elif node.carry:  # None: start from zeros
                s0 = None if node.state is None else _take(state, node.state, "state", missing_ok=True)
                (x, last), cache = node.layer.forward(p, x, s0, **kw)
                _put(new_state, node.state, last)
            elif node.state is not None:
                x, cache = node.layer.forward(p, x, state=_take(state, node.state, "state"), **kw)
                _put(new_state, node.state, cache.state)
            else:
                x, cache = node.layer.forward(p, x, **kw)
        except (ValueError, TypeError) as e:
            _name_the_layer(e, f"{name} layer {i} ({node.name})")
            raise
        caches.append(cache)
    return x, (None if fast else caches), new_state


def backward(net: Sequence[Node], params, caches, dout):
    """The layers' hand-written backward passes in reverse order (DLFS1 §5.7.2,
    ``MultiLayerNet.gradient``); returns ``(grads, dx, dstate)``.

    `caches` from ``forward(..., fast=False)``; `dout` is d loss / d y. `grads` holds every params
    entry a node reads, in the order of `params`; `dx` is d loss / d x; `dstate` maps the `state`
    key of every carry node to d loss / d (the state it started from), the book's ``TimeLSTM.dh``.
    """
    if caches is None or len(caches) != len(net):
        got = "None" if caches is None else f"{len(caches)} caches"
        raise ValueError(f"runner.backward: caches is {got}, expected the {len(net)} caches of "
                         f"forward(..., fast=False)")
    grads, dstate = {}, {}
    for node, cache in zip(reversed(net), reversed(caches), strict=True):
        g, dout = node.layer.backward(_take(params, node.params, "params"), cache, dout)
        if node.carry:
            dout, ds = dout
            _put(dstate, node.state, ds)
        _put(grads, node.params, g, add=True)
    return {k: grads[k] for k in params if k in grads}, dout, dstate


def _name_the_layer(e: Exception, where: str) -> None:
    """Prefix `e`'s message with the layer it came from, in place (its type and traceback stay)."""
    if len(e.args) == 1 and isinstance(e.args[0], str):
        e.args = (f"{where}: {e.args[0]}",)


# --------------------------------------------------------------------------------------------
# A glue layer the sequence models share
# --------------------------------------------------------------------------------------------


def _last_step_forward(params, hs: Array):
    """h_T = hs[:, -1]: the last hidden state (N, H) of hs (N, T, H), what a sequence classifier and
    the book's ``Encoder`` hand on (DLFS2 §7.3.1); the cache is hs's shape."""
    return hs[:, -1], hs.shape


def _last_step_backward(params, shape, dh: Array):
    """dhs = 0 except dhs[:, -1] = dh: only h_T reaches the loss (DLFS2 §7.3.1, ``Encoder.backward``)."""
    return NO_PARAMS, jnp.zeros(shape, dh.dtype).at[:, -1].set(dh)


# forward(params, hs (N, T, H)) -> (hs[:, -1], cache); backward(params, cache, dh) -> ({}, dhs).
last_step = Layer(_last_step_forward, _last_step_backward)

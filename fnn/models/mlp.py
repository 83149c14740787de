"""Multi-layer perceptrons: TwoLayerNet, MultiLayerNet and MultiLayerNetExtend (DLFS1 §4.5, §5.7, §6.1.8,
§6.3, §6.4).

    x -> Affine1 [-> BatchNorm1] -> act [-> Dropout1] -> ... -> AffineL -> scores  (-> SoftmaxWithLoss)

The bracketed layers are the options of the book's ``MultiLayerNetExtend``
(``common/multi_layer_net_extend.py``): ``use_batchnorm`` puts a batch norm between every hidden
Affine and its activation (§6.3), ``drop_rate > 0`` (the book's ``dropout_ration``) a dropout after
every hidden activation (§6.4.3), and ``weight_decay`` (the book's ``weight_decay_lambda``) adds
0.5 * lambda * sum ||W||^2 to the loss (§6.4.2; the biases, gamma and beta are not decayed).

Parameters use the book's names: ``{"W1": (D, H1), "b1": (H1,), ..., "WL": (H_{L-1}, C), "bL": (C,)}``,
plus ``"gamma{i}", "beta{i}": (H_i,)`` for every hidden layer i with batch norm. The model state is
``{}``, or with batch norm ``{"running_mean{i}", "running_var{i}": (H_i,)}`` (see
`fnn.layers.normalization`). Shapes: N batch, D = input_size (an image (N, 1, 28, 28) is flattened
to (N, 784) by the first Affine, as in the book), C = output_size.

Modes: ``train=True`` normalises with batch statistics (and returns the updated running ones) and
draws dropout masks from `key`; ``train=False`` uses the running statistics and scales by
1 - drop_rate (the book's test-time dropout). One key is split into one per dropout layer, so the
same key gives the same masks on both gradient paths.

`network` lists the layers with the book's names (Affine1, BatchNorm1, Activation_function1,
Dropout1, ...) and `fnn.models.runner` runs them: `apply`, `loss` (what ``jax.grad``
differentiates) and `manual_grad` (the book's backprop, the runner's backward) all run the one
forward pass, so both gradient paths see the very same computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import Array

from fnn import compile_cache
from fnn import init as initializers
from fnn._checks import concrete
from fnn.layers import core as L
from fnn.layers.dropout import dropout
from fnn.layers.normalization import EPS, MOMENTUM, batch_norm
from fnn.models import runner
from fnn.models._model import Model, Params, State, check_positive_int
from fnn.models.runner import Node

__all__ = [
    "apply", "init", "init_state", "loss", "loss_and_state", "manual_grad", "manual_grad_and_state", "model",
    "network", "num_layers", "two_layer_net", "weight_decay_term",
]


def _check_weight_init(weight_init) -> None:
    """A name or number `fnn.init.get` accepts, or a scalar array (a traced std under `vmap`)."""
    if isinstance(weight_init, jax.Array):
        if weight_init.ndim != 0:
            raise ValueError(f"mlp.init: weight_init is an array of shape {tuple(weight_init.shape)}, "
                             f"expected a scalar standard deviation")
        return
    initializers.get(weight_init)


def _hidden_sizes(fn: str, hidden_sizes: int | Sequence[int]) -> list[int]:
    """`hidden_sizes` as a list: one int is one hidden layer."""
    if isinstance(hidden_sizes, int) and not isinstance(hidden_sizes, bool):
        return [hidden_sizes]
    if isinstance(hidden_sizes, str) or not hasattr(hidden_sizes, "__iter__"):
        raise TypeError(f"{fn}: hidden_sizes is {hidden_sizes!r}, expected an int or a list of ints "
                        f"(the sizes of the hidden layers)")
    return list(hidden_sizes)


def _check_sizes(fn: str, input_size: int, hidden_sizes: list[int], output_size: int) -> None:
    for name, value in [("input_size", input_size), ("output_size", output_size),
                        *[(f"hidden_sizes[{i}]", h) for i, h in enumerate(hidden_sizes)]]:
        check_positive_int(fn, name, value)


def init(key: Array, input_size: int, hidden_sizes: int | Sequence[int], output_size: int, *,
         weight_init: str | float | Array = "he", use_batchnorm: bool = False,
         dtype=jnp.float32) -> Params:
    """Weights and zero biases for an MLP with the given layer sizes (DLFS1 §4.5.1, §6.2).

    `weight_init`: a standard deviation (the book's TwoLayerNet uses 0.01; a scalar array may be
    traced, to vmap over init scales) or a name from `fnn.init` ("he"/"relu", "xavier"/"sigmoid",
    "zeros"). He/Xavier use the previous layer's size. ``use_batchnorm`` adds ``gamma{i}`` = 1 and
    ``beta{i}`` = 0, (H_i,), for every hidden layer (DLFS1 §6.3). `hidden_sizes`: a list, or an
    int for one hidden layer.
    """
    hidden_sizes = _hidden_sizes("mlp.init", hidden_sizes)
    _check_sizes("mlp.init", input_size, hidden_sizes, output_size)
    sizes = [input_size, *hidden_sizes, output_size]
    _check_weight_init(weight_init)
    z = initializers.normals(key, list(zip(sizes[:-1], sizes[1:], strict=True)), dtype)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"W{i}"] = (initializers.std(weight_init, n_in) * z[i - 1]).astype(dtype)
        params[f"b{i}"] = jnp.zeros((n_out,), dtype)
        if use_batchnorm and i < len(sizes) - 1:
            params[f"gamma{i}"] = jnp.ones((n_out,), dtype)
            params[f"beta{i}"] = jnp.zeros((n_out,), dtype)
    return params


def init_state(hidden_sizes: int | Sequence[int], *, use_batchnorm: bool = False,
               dtype=jnp.float32) -> State:
    """The model state: ``{}``, or zero running statistics (H_i,) per batch norm (DLFS1 §6.3)."""
    if not use_batchnorm:
        return {}
    state = {}
    for i, h in enumerate(_hidden_sizes("mlp.init_state", hidden_sizes), start=1):
        state[f"running_mean{i}"] = jnp.zeros((h,), dtype)
        state[f"running_var{i}"] = jnp.zeros((h,), dtype)
    return state


def num_layers(params: Params) -> int:
    """How many Affine layers `params` holds (keys W1..WL, and gamma/beta 1..L-1 or none)."""
    n = sum(1 for k in params if k.startswith("W"))
    expected = {f"{p}{i}" for i in range(1, n + 1) for p in "Wb"}
    if "gamma1" in params:
        expected |= {f"{p}{i}" for i in range(1, n) for p in ("gamma", "beta")}
    if set(params) != expected:
        raise ValueError(f"mlp: params has keys {sorted(params)}, expected {sorted(expected)}")
    return n


def network(num_affine: int, activation: str = "relu", *, use_batchnorm: bool = False,
            drop_rate: float = 0.0) -> tuple[Node, ...]:
    """The layers of an MLP with `num_affine` Affine layers, in order, with the book's names
    (DLFS1 §6.3.2, §6.4.3; ``MultiLayerNetExtend.__init__``'s ``OrderedDict``): Affine{i}
    [BatchNorm{i}] Activation_function{i} [Dropout{i}] for every hidden layer i, then the last Affine."""
    act = L.activation_layer(activation)
    nodes = []
    for i in range(1, num_affine + 1):
        nodes.append(Node(f"Affine{i}", L.affine, {"W": f"W{i}", "b": f"b{i}"}))
        if i == num_affine:
            break
        if use_batchnorm:
            nodes.append(Node(f"BatchNorm{i}", batch_norm, {"gamma": f"gamma{i}", "beta": f"beta{i}"},
                              {"momentum": MOMENTUM, "eps": EPS}, train=True,
                              state={"running_mean": f"running_mean{i}", "running_var": f"running_var{i}"}))
        nodes.append(Node(f"Activation_function{i}", act))
        if drop_rate:
            nodes.append(Node(f"Dropout{i}", dropout, options={"drop_rate": drop_rate}, rng=True, train=True))
    return tuple(nodes)


def _network(params: Params, state: State | None, activation: str, drop_rate: float) -> tuple[Node, ...]:
    """The network that `params` (and `state`) describe, checked."""
    n = num_layers(params)
    use_bn = "gamma1" in params
    if use_bn and (state is None or f"running_mean{n - 1}" not in state):
        raise ValueError(f"mlp: params has batch norm (gamma1...) but state is "
                         f"{None if state is None else sorted(state)}, expected running_mean1.."
                         f"running_mean{n - 1} and running_var1..running_var{n - 1} (mlp.init_state)")
    return network(n, activation, use_batchnorm=use_bn, drop_rate=drop_rate)


def _forward(params: Params, x: Array, activation: str, *, state: State | None = None,
             train: bool = False, key: Array | None = None, drop_rate: float = 0.0):
    """The layers' forward passes (DLFS1 §5.7.2, ``MultiLayerNetExtend.predict``).

    Returns ``(scores (N, C), caches, new_state, net)``: the runner's caches and the model state
    after this pass, and the network they belong to.
    """
    net = _network(params, state, activation, drop_rate)
    scores, caches, new_state = runner.forward(net, params, x, state=state, train=train, key=key,
                                               name="mlp")
    return scores, caches, new_state, net


def apply(params: Params, x: Array, *, activation: str = "relu", state: State | None = None,
          train: bool = False, key: Array | None = None, drop_rate: float = 0.0) -> Array:
    """Scores (N, C) of inputs x (N, D) or (N, ...), before softmax (DLFS1 §3.4, ``predict``).

    With batch norm, `state` holds the running statistics (evaluation mode uses them); use the
    `model` bundle to get the updated state of a training-mode pass.
    """
    return _forward(params, x, activation, state=state, train=train, key=key, drop_rate=drop_rate)[0]


def weight_decay_term(params: Params, weight_decay: float) -> Array:
    """0.5 * lambda * sum_l ||W_l||^2, the L2 penalty added to the loss (DLFS1 §6.4.2); 0.0, not
    computed, when lambda is the number 0 (a pass over every weight less per loss evaluation)."""
    if isinstance(weight_decay, (int, float)) and weight_decay == 0:
        return 0.0
    return 0.5 * weight_decay * sum(jnp.sum(W * W) for k, W in params.items() if k.startswith("W"))


def loss_and_state(params: Params, state: State | None, x: Array, t: Array, *,
                   activation: str = "relu", weight_decay: float = 0.0, train: bool = True,
                   key: Array | None = None, drop_rate: float = 0.0) -> tuple[Array, State]:
    """Softmax cross-entropy plus the L2 penalty, and the new state (DLFS1 §4.5.1, §6.4.2)."""
    scores, _, new_state, _ = _forward(params, x, activation, state=state, train=train, key=key,
                                       drop_rate=drop_rate)
    data_loss, _ = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
    return data_loss + weight_decay_term(params, weight_decay), new_state


def loss(params: Params, x: Array, t: Array, *, activation: str = "relu",
         weight_decay: float = 0.0, **kwargs) -> Array:
    """Softmax cross-entropy of the scores, plus the L2 penalty (DLFS1 §4.5.1, §6.4.2).

    `kwargs` (``state``, ``train``, ``key``, ``drop_rate``) as in `loss_and_state`.
    """
    state = kwargs.pop("state", None)
    return loss_and_state(params, state, x, t, activation=activation, weight_decay=weight_decay,
                          **kwargs)[0]


def manual_grad_and_state(params: Params, state: State | None, x: Array, t: Array, *,
                          activation: str = "relu", weight_decay: float = 0.0, train: bool = True,
                          key: Array | None = None, drop_rate: float = 0.0) -> tuple[Array, Params, State]:
    """The loss, its gradient by backprop, and the new state (DLFS1 §5.7.2, §6.3, §6.4;
    ``MultiLayerNetExtend.gradient``): forward collecting caches, backward in reverse order
    (`fnn.models.runner`); weight decay adds lambda * W to each dW (§6.4.2)."""
    scores, caches, new_state, net = _forward(params, x, activation, state=state, train=train,
                                              key=key, drop_rate=drop_rate)
    data_loss, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
    _, dout = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
    grads, _, _ = runner.backward(net, params, caches, dout)
    grads = {k: g + weight_decay * params[k] if k.startswith("W") else g for k, g in grads.items()}
    return data_loss + weight_decay_term(params, weight_decay), grads, new_state


def manual_grad(params: Params, x: Array, t: Array, *, activation: str = "relu",
                weight_decay: float = 0.0, **kwargs) -> tuple[Array, Params]:
    """The loss and its gradient by backprop (DLFS1 §5.7.2, ``TwoLayerNet.gradient``; weight decay
    adds lambda * W to each dW, §6.4.2). `kwargs` as in `manual_grad_and_state`."""
    state = kwargs.pop("state", None)
    value, grads, _ = manual_grad_and_state(params, state, x, t, activation=activation,
                                            weight_decay=weight_decay, **kwargs)
    return value, grads


def model(input_size: int, hidden_sizes: int | Sequence[int], output_size: int, *,
          activation: str = "relu", weight_init: str | float | Array = "he",
          weight_decay: float | Array = 0.0, use_batchnorm: bool = False, drop_rate: float = 0.0,
          dtype=jnp.float32) -> Model:
    """The book's MultiLayerNet / MultiLayerNetExtend (DLFS1 §6.1.8, §6.3.2, §6.4;
    ``common/multi_layer_net.py``, ``common/multi_layer_net_extend.py``) as a `Model`.

    ``hidden_sizes``: the hidden layers' sizes, a list (``[100, 100]``) or one int for one hidden
    layer (``model(784, 50, 10)`` is the book's TwoLayerNet shape). ``use_batchnorm``: batch norm
    before every hidden activation (§6.3.2). ``drop_rate``: the book's ``dropout_ration`` (its
    ``use_dropout=False`` is ``drop_rate=0``), dropout after every hidden activation (§6.4.3), with
    the book's test-time scaling (`fnn.layers.dropout`). ``weight_decay``: the book's
    ``weight_decay_lambda`` (§6.4.2).
    `weight_decay` and a numeric `weight_init` may be scalar arrays, traced under ``jax.vmap``, so
    many models differing only in them train together (`fnn.multi`).

    The model's ``loss`` and ``manual_grad`` run in training mode (batch statistics, dropout
    masks from `key`) and return the updated state; ``apply(..., train=False)`` is the book's
    ``predict(x, train_flg=False)``.
    """
    hidden_sizes = _hidden_sizes("mlp.model", hidden_sizes)
    _check_sizes("mlp.model", input_size, hidden_sizes, output_size)
    L.activation_layer(activation)  # fail now, not at the first step, on an unknown name
    wd = concrete(weight_decay)
    if wd is not None and (wd.ndim != 0 or not wd >= 0):
        raise ValueError(f"mlp.model: weight_decay is {weight_decay}, expected a number >= 0")
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"mlp.model: drop_rate is {drop_rate!r}, expected a probability in [0, 1)")
    _check_weight_init(weight_init)
    kw = {"activation": activation, "weight_decay": weight_decay, "drop_rate": drop_rate}

    # one compiled program for the whole initialisation, compiled for speed of compiling
    @compile_cache.jit_once
    def init_(key):
        params = init(key, input_size, hidden_sizes, output_size, weight_init=weight_init,
                      use_batchnorm=use_batchnorm, dtype=dtype)
        return params, init_state(hidden_sizes, use_batchnorm=use_batchnorm, dtype=dtype)

    def apply_(params, state, x, *, train=False, key=None):
        scores, _, new_state, _ = _forward(params, x, activation, state=state, train=train, key=key,
                                           drop_rate=drop_rate)
        return scores, new_state

    def loss_(params, state, x, t, *, key=None):
        return loss_and_state(params, state, x, t, train=True, key=key, **kw)

    def manual_grad_(params, state, x, t, *, key=None):
        return manual_grad_and_state(params, state, x, t, train=True, key=key, **kw)

    sizes = "-".join(str(s) for s in [input_size, *hidden_sizes, output_size])
    options = [activation] + (["batchnorm"] if use_batchnorm else [])
    options += [f"dropout{drop_rate:g}"] if drop_rate else []
    if wd is None:
        options.append("weight_decay")
    elif wd > 0:
        options.append(f"weight_decay{float(wd):g}")
    return Model(init_, apply_, loss_, manual_grad_, name=f"mlp[{sizes},{','.join(options)}]")


def two_layer_net(input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
                  weight_init_std: float = 0.01) -> Model:
    """The book's ``TwoLayerNet`` (DLFS1 §4.5.1, §5.7.2): Affine - ReLU - Affine, N(0, 0.01^2) weights."""
    return model(input_size, [hidden_size], output_size, activation="relu",
                 weight_init=weight_init_std)

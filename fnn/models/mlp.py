"""Multi-layer perceptrons: the book's TwoLayerNet and MultiLayerNet (DLFS1 §4.5, §5.7, §6.1.8).

    x -> Affine1 -> act -> Affine2 -> act -> ... -> AffineL -> scores   (-> SoftmaxWithLoss)

Parameters use the book's names: ``{"W1": (D, H1), "b1": (H1,), ..., "WL": (H_{L-1}, C), "bL": (C,)}``.
Shapes: N batch, D = input_size (an image (N, 1, 28, 28) is flattened to (N, 784) by the first
Affine, as in the book), C = output_size.

`apply` and `manual_grad` share one forward pass (`_forward`), so `jax.grad` of `loss` and the
hand-written backprop differentiate the very same computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import Array

from fnn import init as initializers
from fnn.layers import core as L
from fnn.models._model import Model, Params


def init(key: Array, input_size: int, hidden_sizes: Sequence[int], output_size: int, *,
         weight_init: str | float = "he", dtype=jnp.float32) -> Params:
    """Weights and zero biases for an MLP with the given layer sizes (DLFS1 §4.5.1, §6.2).

    `weight_init`: a standard deviation (the book's TwoLayerNet uses 0.01) or a name from
    `fnn.init` ("he"/"relu", "xavier"/"sigmoid", "zeros"). He/Xavier use the previous layer's size.
    """
    sizes = [input_size, *hidden_sizes, output_size]
    for name, value in [("input_size", input_size), ("output_size", output_size),
                        *[(f"hidden_sizes[{i}]", h) for i, h in enumerate(hidden_sizes)]]:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"mlp.init: {name} is {value!r}, expected a positive integer")
    w_init = initializers.get(weight_init)
    keys = jax.random.split(key, len(sizes) - 1)
    params = {}
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"W{i}"] = w_init(k, (n_in, n_out), dtype, fan_in=n_in)
        params[f"b{i}"] = jnp.zeros((n_out,), dtype)
    return params


def num_layers(params: Params) -> int:
    """How many Affine layers `params` holds (keys W1..WL)."""
    n = sum(1 for k in params if k.startswith("W"))
    expected = {f"{p}{i}" for i in range(1, n + 1) for p in "Wb"}
    if set(params) != expected:
        raise ValueError(f"mlp: params has keys {sorted(params)}, expected {sorted(expected)}")
    return n


def _affine_params(params: Params, i: int) -> Params:
    return {"W": params[f"W{i}"], "b": params[f"b{i}"]}


def _forward(params: Params, x: Array, activation: str):
    """Affine/activation forward passes; returns the scores and every layer's cache (DLFS1 §5.7.2)."""
    act = L.activation_layer(activation)
    n = num_layers(params)
    caches = []
    for i in range(1, n + 1):
        x, cache = L.affine.forward(_affine_params(params, i), x)
        caches.append(cache)
        if i < n:
            x, cache = act.forward(L.NO_PARAMS, x)
            caches.append(cache)
    return x, caches


def apply(params: Params, x: Array, *, activation: str = "relu") -> Array:
    """Scores (N, C) of inputs x (N, D) or (N, ...), before softmax (DLFS1 §3.4, ``predict``)."""
    return _forward(params, x, activation)[0]


def weight_decay_term(params: Params, weight_decay: float) -> Array:
    """0.5 * lambda * sum_l ||W_l||^2, the L2 penalty added to the loss (DLFS1 §6.4.2)."""
    return 0.5 * weight_decay * sum(jnp.sum(W * W) for k, W in params.items() if k.startswith("W"))


def loss(params: Params, x: Array, t: Array, *, activation: str = "relu",
         weight_decay: float = 0.0) -> Array:
    """Softmax cross-entropy of the scores, plus the L2 penalty (DLFS1 §4.5.1, §6.4.2)."""
    scores = apply(params, x, activation=activation)
    data_loss, _ = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
    return data_loss + weight_decay_term(params, weight_decay)


def manual_grad(params: Params, x: Array, t: Array, *, activation: str = "relu",
                weight_decay: float = 0.0) -> tuple[Array, Params]:
    """The loss and its gradient by backprop: forward collecting caches, backward in reverse
    (DLFS1 §5.7.2, ``TwoLayerNet.gradient``; weight decay adds lambda * W to each dW, §6.4.2)."""
    act = L.activation_layer(activation)
    n = num_layers(params)
    scores, caches = _forward(params, x, activation)
    data_loss, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)

    _, dout = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
    grads = {}
    for i in range(n, 0, -1):
        if i < n:
            _, dout = act.backward(L.NO_PARAMS, caches.pop(), dout)
        g, dout = L.affine.backward(_affine_params(params, i), caches.pop(), dout)
        grads[f"W{i}"] = g["W"] + weight_decay * params[f"W{i}"]
        grads[f"b{i}"] = g["b"]
    return data_loss + weight_decay_term(params, weight_decay), grads


def model(input_size: int, hidden_sizes: Sequence[int], output_size: int, *,
          activation: str = "relu", weight_init: str | float = "he", weight_decay: float = 0.0,
          dtype=jnp.float32) -> Model:
    """The book's MultiLayerNet (DLFS1 §6.1.8, ``common/multi_layer_net.py``) as a `Model`."""
    L.activation_layer(activation)  # fail now, not at the first step, on an unknown name
    if weight_decay < 0:
        raise ValueError(f"mlp.model: weight_decay is {weight_decay}, expected >= 0")
    initializers.get(weight_init)
    kw = {"activation": activation, "weight_decay": weight_decay}

    def init_(key):
        return init(key, input_size, hidden_sizes, output_size, weight_init=weight_init,
                    dtype=dtype), {}

    def apply_(params, state, x, *, train=False, key=None):
        return apply(params, x, activation=activation), state

    def loss_(params, state, x, t, *, key=None):
        return loss(params, x, t, **kw), state

    def manual_grad_(params, state, x, t, *, key=None):
        value, grads = manual_grad(params, x, t, **kw)
        return value, grads, state

    sizes = "-".join(str(s) for s in [input_size, *hidden_sizes, output_size])
    return Model(init_, apply_, loss_, manual_grad_, name=f"mlp[{sizes},{activation}]")


def two_layer_net(input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
                weight_init_std: float = 0.01) -> Model:
    """The book's ``TwoLayerNet`` (DLFS1 §4.5.1, §5.7.2): Affine - ReLU - Affine, N(0, 0.01^2) weights."""
    return model(input_size, [hidden_size], output_size, activation="relu",
                 weight_init=weight_init_std)

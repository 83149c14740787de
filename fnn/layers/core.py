"""The book's layers made pure: Mul, Add, ReLU, Sigmoid, Tanh, Affine, SoftmaxWithLoss (DLFS1 ch5).

A layer is a `Layer` pair of pure functions, the book's class with its state handed back instead of
stored on ``self``:

    forward(params, x)          -> (y, cache)     # the book's forward(x); cache = what it stored
    backward(params, cache, dout) -> (grads, dx)  # the book's backward(dout); grads = its dW, db

`params` is a dict of arrays (``{"W": ..., "b": ...}``) or ``{}`` for a layer without parameters,
and `grads` has the same structure. A network's backprop is its forward passes collecting caches,
then the backward passes in reverse order (DLFS1 §5.7).

Shapes: N batch, D input features, M output features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import Array

from fnn import functions as F
from fnn._checks import check_labels, check_ndim, check_nonempty

__all__ = [
    "ACTIVATION_LAYERS", "NO_PARAMS", "activation_layer", "add", "affine", "identity", "Layer", "mul", "Params",
    "relu", "sigmoid", "softmax_with_loss", "tanh",
]

Params = dict[str, Array]
NO_PARAMS: Params = {}


class Layer(NamedTuple):
    """A forward/backward pair; see the module docstring for the contract."""

    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[..., tuple[Params, Any]]


# --------------------------------------------------------------------------------------------
# Mul and Add: the apple-shopping graph (DLFS1 §5.4)
# --------------------------------------------------------------------------------------------


def _mul_forward(params: Params, xy: tuple[Array, Array]):
    """out = x * y; the inputs are the cache (DLFS1 §5.4.1, MulLayer)."""
    x, y = xy
    return x * y, (x, y)


def _mul_backward(params: Params, cache, dout: Array):
    """dx = dout * y, dy = dout * x: each input gets the other one (DLFS1 §5.3.2)."""
    x, y = cache
    return NO_PARAMS, (dout * y, dout * x)


def _add_forward(params: Params, xy: tuple[Array, Array]):
    """out = x + y; nothing to remember (DLFS1 §5.4.2, AddLayer)."""
    x, y = xy
    return x + y, None


def _add_backward(params: Params, cache, dout: Array):
    """dx = dy = dout: addition passes the gradient on unchanged (DLFS1 §5.3.1)."""
    return NO_PARAMS, (dout, dout)


mul = Layer(_mul_forward, _mul_backward)
add = Layer(_add_forward, _add_backward)


# --------------------------------------------------------------------------------------------
# Activations (DLFS1 §5.5; tanh: DLFS2 §5.3.1)
# --------------------------------------------------------------------------------------------


def _relu_forward(params: Params, x: Array):
    """y = max(0, x); the cache is the book's mask x <= 0 (DLFS1 §5.5.1, Relu).

    As in the book, only x <= 0 is zeroed: a NaN input stays NaN instead of being hidden.
    """
    mask = x <= 0
    return jnp.where(mask, 0, x), mask


def _relu_backward(params: Params, mask: Array, dout: Array):
    """dx = dout where x > 0, else 0 (DLFS1 §5.5.1, equation 5.8)."""
    return NO_PARAMS, jnp.where(mask, 0, dout)


def _sigmoid_forward(params: Params, x: Array):
    """y = 1 / (1 + exp(-x)); the cache is y (DLFS1 §5.5.2, Sigmoid)."""
    y = F.sigmoid(x)
    return y, y


def _sigmoid_backward(params: Params, y: Array, dout: Array):
    """dx = dout * y (1 - y) (DLFS1 §5.5.2, equation 5.12)."""
    return NO_PARAMS, dout * y * (1.0 - y)


def _tanh_forward(params: Params, x: Array):
    """y = tanh(x); the cache is y (DLFS2 §5.3.1)."""
    y = jnp.tanh(x)
    return y, y


def _tanh_backward(params: Params, y: Array, dout: Array):
    """dx = dout * (1 - y^2) (DLFS2 §5.3.1, the derivative of tanh)."""
    return NO_PARAMS, dout * (1.0 - y * y)


def _identity_forward(params: Params, x: Array):
    """y = x (DLFS1 §3.5, the output activation of regression)."""
    return x, None


def _identity_backward(params: Params, cache, dout: Array):
    """dx = dout."""
    return NO_PARAMS, dout


relu = Layer(_relu_forward, _relu_backward)
sigmoid = Layer(_sigmoid_forward, _sigmoid_backward)
tanh = Layer(_tanh_forward, _tanh_backward)
identity = Layer(_identity_forward, _identity_backward)

ACTIVATION_LAYERS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "identity": identity}


def activation_layer(name: str) -> Layer:
    """The activation layer called `name` (one of `ACTIVATION_LAYERS`)."""
    if name not in ACTIVATION_LAYERS:
        raise ValueError(f"activation_layer: activation is {name!r}, expected one of "
                         f"{sorted(ACTIVATION_LAYERS)}")
    return ACTIVATION_LAYERS[name]


# --------------------------------------------------------------------------------------------
# Affine (DLFS1 §5.6.1–5.6.2)
# --------------------------------------------------------------------------------------------


def _affine_forward(params: Params, x: Array):
    """y = x · W + b, W (D, M), b (M,) (DLFS1 §5.6.2, Affine).

    x is (N, D), or (N, d1, d2, ...) with d1*d2*... = D, flattened per sample as the book does
    (an image (N, C, H, W) becomes (N, C*H*W)). The cache is x, in its original shape.
    """
    W, b = params["W"], params["b"]
    check_ndim("affine.forward", "W", W, 2, "(D, M)")
    if x.ndim < 2:
        raise ValueError(f"affine.forward: x needs rank >= 2, (N, D) or (N, ...), but has shape "
                         f"{tuple(x.shape)}")
    x2 = x.reshape(x.shape[0], -1)  # (N, D)
    if x2.shape[1] != W.shape[0]:
        raise ValueError(f"affine.forward: x has {x2.shape[1]} features per sample (shape "
                         f"{tuple(x.shape)}), expected {W.shape[0]} (W.shape[0])")
    if tuple(b.shape) != (W.shape[1],):
        raise ValueError(f"affine.forward: b has shape {tuple(b.shape)}, expected "
                         f"({W.shape[1]},) (W.shape[1])")
    return x2 @ W + b[None, :], x


def _affine_backward(params: Params, x: Array, dout: Array):
    """dx = dout · W^T, dW = x^T · dout, db = sum_n dout (DLFS1 §5.6.2, equations 5.13–5.14).

    dout (N, M); dx comes back in the shape x had.
    """
    x2 = x.reshape(x.shape[0], -1)  # (N, D)
    grads = {"W": x2.T @ dout, "b": jnp.sum(dout, axis=0)}
    return grads, (dout @ params["W"].T).reshape(x.shape)


affine = Layer(_affine_forward, _affine_backward)


# --------------------------------------------------------------------------------------------
# SoftmaxWithLoss (DLFS1 §5.6.3)
# --------------------------------------------------------------------------------------------


def _softmax_with_loss_forward(params: Params, x: Array, t: Array):
    """loss = cross_entropy(softmax(x), t), x scores (N, C), t labels (N,) or one-hot (N, C).

    DLFS1 §5.6.3 (SoftmaxWithLoss). The loss is computed from `log_softmax`, the book's value
    without its log(y + 1e-7) bias. The cache is (y, t) with y = softmax(x) and t one-hot.
    """
    check_ndim("softmax_with_loss.forward", "x", x, 2, "(N, C)")
    check_nonempty("softmax_with_loss.forward", "x", x)
    one_hot = check_labels("softmax_with_loss.forward", t, x)
    t1 = t if one_hot else (t[:, None] == jnp.arange(x.shape[1])[None, :]).astype(x.dtype)  # (N, C)
    loss = -jnp.sum(t1 * F.log_softmax(x)) / x.shape[0]
    return loss, (F.softmax(x), t1)


def _softmax_with_loss_backward(params: Params, cache, dout: Array = 1.0):
    """dx = dout * (y - t) / N (DLFS1 §5.6.3, Figure 5-30): the whole chain in one clean line."""
    y, t1 = cache
    return NO_PARAMS, dout * (y - t1) / y.shape[0]


# forward(params, x, t) -> (loss, cache); backward(params, cache, dout=1.0) -> ({}, dx).
softmax_with_loss = Layer(_softmax_with_loss_forward, _softmax_with_loss_backward)

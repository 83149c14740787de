"""Networks as a sequence of layer specs, run forward and backward by the book's layers (DLFS1 §5.7, §7.5).

A network is a tuple of specs (`Conv`, `Pool`, `Act`, `Flatten`, `Affine`, `Dropout`). One
`_forward` runs them collecting the caches of the book's layers, one `_backward` runs the layers'
hand-written backward in reverse (the book's backprop), and `model` binds a tuple into a `Model`.
`fnn.models.cnn` builds SimpleConvNet, DeepConvNet and LeNet-5 from these specs.

Parameters use the book's names and shapes: convolution ``W{i}`` (FN, C, FH, FW) and ``b{i}``
(FN,), affine ``W{i}`` (D, M) and ``b{i}`` (M,), numbered from the input. Images are NCHW
(N, C, H, W) at the API; inside, activations are NHWC (3x faster on XLA:CPU), and the flatten before
the first affine restores the book's (C, H, W) order, so that affine's ``W`` has the book's rows.

The convolution kernel (``conv``, the same for both gradient paths; `fnn.layers.conv`):

* ``"im2col"`` — the book's: a column matrix, one matmul, ``dW = col^T dout``, col2im;
* ``"lax"`` — the same equations on XLA's convolution (no column matrix);
* ``"auto"`` (default) — per layer, im2col for layers with fewer than 4 input channels (a first
  layer on grey images), lax elsewhere: the fastest measured on XLA:CPU for every book network.

`Model.manual_grad` is the book's backprop through the layers (convolution, pooling with the
argmax mask, ...) on the chosen kernel; `Model.loss` is the training-mode loss whose ``jax.grad``
the autodiff path takes: with ``"im2col"`` the book's layers themselves, otherwise `conv2d_nhwc`
(a ``custom_vjp`` on the lax kernel) and `pool2d_nhwc` (reshape + max).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from fnn import init as initializers
from fnn.layers import core as L
from fnn.layers.conv import IMPLS, conv2d_nhwc, convolution_nhwc
from fnn.layers.dropout import dropout
from fnn.layers.im2col import output_size
from fnn.layers.pooling import pool2d_nhwc, pooling_nhwc
from fnn.models._model import Model, Params

CONV_IMPLS = IMPLS
"""The convolution kernels, "im2col" and "lax"; a model also takes "auto" (see the module doc)."""
CONV_CHOICES = ("auto", *IMPLS)

# --------------------------------------------------------------------------------------------
# Layer specs: a network is a tuple of these
# --------------------------------------------------------------------------------------------


class Conv(NamedTuple):
    """Convolution with params W{index} (FN, C, size, size), b{index} (FN,) (DLFS1 §7.4.3)."""
    index: int
    filter_num: int
    filter_size: int
    stride: int = 1
    pad: int = 0


class Pool(NamedTuple):
    """Pooling over size x size windows with the given stride (DLFS1 §7.4.4)."""
    size: int = 2
    stride: int = 2
    mode: str = "max"


class Act(NamedTuple):
    """An activation layer from `fnn.layers.core` (relu, sigmoid, tanh)."""
    name: str = "relu"


class Flatten(NamedTuple):
    """(N, H, W, C) -> (N, C*H*W) in the book's NCHW order (what the book's Affine does)."""


class Affine(NamedTuple):
    """Affine with params W{index} (D, size), b{index} (size,) (DLFS1 §5.6.2)."""
    index: int
    size: int


class Dropout(NamedTuple):
    """The book's Dropout (DLFS1 §6.4.3); `drop_rate` is its dropout_ratio."""
    drop_rate: float = 0.5


# --------------------------------------------------------------------------------------------
# Shapes and initialisation
# --------------------------------------------------------------------------------------------


def param_shapes(layers: Sequence, input_dim: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape, and the fan-in its initialiser uses: {name: (shape, fan_in)}."""
    C, H, W = input_dim
    D = None  # features after Flatten
    shapes = {}
    for layer in layers:
        if isinstance(layer, Conv):
            FH = FW = layer.filter_size
            H, W = output_size("cnn", H, W, FH, FW, layer.stride, layer.pad)
            shapes[f"W{layer.index}"] = ((layer.filter_num, C, FH, FW), C * FH * FW)
            shapes[f"b{layer.index}"] = ((layer.filter_num,), None)
            C = layer.filter_num
        elif isinstance(layer, Pool):
            H, W = output_size("cnn", H, W, layer.size, layer.size, layer.stride, 0)
        elif isinstance(layer, Flatten):
            D = C * H * W
        elif isinstance(layer, Affine):
            shapes[f"W{layer.index}"] = ((D, layer.size), D)
            shapes[f"b{layer.index}"] = ((layer.size,), None)
            D = layer.size
    return shapes


def init(key: Array, layers: Sequence, input_dim: tuple[int, int, int], *,
         weight_init: str | float, dtype=jnp.float32) -> Params:
    """Weights from `weight_init` (a std such as the book's 0.01, or "he"/"xavier" with fan-in
    C*FH*FW for filters and D for affine weights, DLFS1 §6.2), zero biases."""
    w_init = initializers.get(weight_init)
    shapes = param_shapes(layers, input_dim)
    keys = dict(zip(shapes, jax.random.split(key, len(shapes)), strict=True))
    return {name: (jnp.zeros(shape, dtype) if name.startswith("b")
                   else w_init(keys[name], shape, dtype, fan_in=fan_in))
            for name, (shape, fan_in) in shapes.items()}


def _layer_params(params: Params, i: int) -> Params:
    return {"W": params[f"W{i}"], "b": params[f"b{i}"]}


def _check_input(fn: str, x: Array, input_dim: tuple[int, int, int]) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_dim):
        want = ", ".join(map(str, input_dim))
        raise ValueError(f"{fn}: x has shape {tuple(x.shape)}, expected (N, {want}) (NCHW images; "
                         f"load the data with flatten=False)")


# --------------------------------------------------------------------------------------------
# One forward pass, one backward pass
# --------------------------------------------------------------------------------------------


def _forward(params: Params, x: Array, layers: Sequence, *, conv: str = "auto",
             train: bool = False, key: Array | None = None, for_grad: bool = False):
    """Run the layers on x (N, C, H, W); returns scores (N, classes) and the caches (DLFS1 §7.5).

    ``for_grad=False`` runs the book's layers on the `conv` kernel, keeping what `_backward`
    needs. ``for_grad=True`` is the forward that ``jax.grad`` differentiates: unless `conv` is
    "im2col", convolution and pooling are then `conv2d_nhwc` and `pool2d_nhwc` (caches None).
    """
    n_drop = sum(isinstance(layer, Dropout) for layer in layers)
    keys = list(jax.random.split(key, n_drop)) if (train and n_drop and key is not None) else []
    fast = for_grad and conv != "im2col"
    x = x.transpose(0, 2, 3, 1)  # (N, H, W, C) inside
    caches = []
    for layer in layers:
        if isinstance(layer, Conv):
            p = _layer_params(params, layer.index)
            if fast:
                x, cache = conv2d_nhwc(x, p["W"], p["b"], stride=layer.stride, pad=layer.pad,
                                       impl=conv), None
            else:
                x, cache = convolution_nhwc.forward(p, x, stride=layer.stride, pad=layer.pad,
                                                    impl=conv)
        elif isinstance(layer, Pool):
            kw = {"pool_h": layer.size, "pool_w": layer.size, "stride": layer.stride,
                  "mode": layer.mode}
            if fast:
                x, cache = pool2d_nhwc(x, **kw), None
            else:
                x, cache = pooling_nhwc.forward(L.NO_PARAMS, x, **kw)
        elif isinstance(layer, Act):
            x, cache = L.activation_layer(layer.name).forward(L.NO_PARAMS, x)
        elif isinstance(layer, Flatten):
            cache = x.shape                                 # (N, H, W, C)
            x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # (N, C*H*W), the book's order
        elif isinstance(layer, Affine):
            x, cache = L.affine.forward(_layer_params(params, layer.index), x)
        elif isinstance(layer, Dropout):
            x, cache = dropout.forward(L.NO_PARAMS, x, key=keys.pop(0) if keys else None,
                                       drop_rate=layer.drop_rate, train=train)
        else:
            raise TypeError(f"cnn._forward: unknown layer spec {layer!r}")
        caches.append(cache)
    return x, caches


def _backward(params: Params, layers: Sequence, caches: list, dout: Array) -> Params:
    """The book's backprop: each layer's hand-written backward in reverse order (DLFS1 §5.7, §7.5)."""
    grads = {}
    for layer, cache in zip(reversed(layers), reversed(caches), strict=True):
        if isinstance(layer, Conv):
            g, dout = convolution_nhwc.backward(_layer_params(params, layer.index), cache, dout)
        elif isinstance(layer, Pool):
            g, dout = pooling_nhwc.backward(L.NO_PARAMS, cache, dout)
        elif isinstance(layer, Act):
            g, dout = L.activation_layer(layer.name).backward(L.NO_PARAMS, cache, dout)
        elif isinstance(layer, Flatten):
            N, H, W, C = cache
            g, dout = {}, dout.reshape(N, C, H, W).transpose(0, 2, 3, 1)
        elif isinstance(layer, Affine):
            g, dout = L.affine.backward(_layer_params(params, layer.index), cache, dout)
        else:  # Dropout
            g, dout = dropout.backward(L.NO_PARAMS, cache, dout)
        if g:
            grads[f"W{layer.index}"], grads[f"b{layer.index}"] = g["W"], g["b"]
    return {name: grads[name] for name in params}  # the order of params


def apply(params: Params, x: Array, layers: Sequence, *, conv: str = "auto", train: bool = False,
          key: Array | None = None) -> Array:
    """Scores (N, classes) of images x (N, C, H, W) (the book's ``predict``)."""
    return _forward(params, x, layers, conv=conv, train=train, key=key, for_grad=True)[0]


def loss(params: Params, x: Array, t: Array, layers: Sequence, *, conv: str = "auto",
         key: Array | None = None) -> Array:
    """Softmax cross-entropy of the training-mode scores, t (N,) labels or (N, classes) one-hot."""
    scores = apply(params, x, layers, conv=conv, train=True, key=key)
    return L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)[0]


def manual_grad(params: Params, x: Array, t: Array, layers: Sequence, *, conv: str = "auto",
                key: Array | None = None) -> tuple[Array, Params]:
    """The loss and its gradient by the book's backprop through the layers on the `conv` kernel
    (DLFS1 §7.5, ``SimpleConvNet.gradient``)."""
    scores, caches = _forward(params, x, layers, conv=conv, train=True, key=key)
    value, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
    _, dout = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
    return value, _backward(params, layers, caches, dout)


def model(layers: Sequence, input_dim: tuple[int, int, int] = (1, 28, 28), *,
          weight_init: str | float = "he", conv: str = "auto", dtype=jnp.float32,
          name: str = "cnn") -> Model:
    """A `Model` from layer specs (`Conv`, `Pool`, `Act`, `Flatten`, `Affine`, `Dropout`).

    `conv` picks the convolution kernel of both gradient paths ("auto", "im2col" or "lax"; see
    the module docstring). `init` is one jitted call.
    """
    if conv not in CONV_CHOICES:
        raise ValueError(f"cnn.model: conv is {conv!r}, expected one of {CONV_CHOICES}")
    layers = tuple(layers)
    param_shapes(layers, input_dim)  # bad sizes fail now, not at the first step
    initializers.get(weight_init)

    @jax.jit
    def init_(key):
        return init(key, layers, input_dim, weight_init=weight_init, dtype=dtype), {}

    def apply_(params, state, x, *, train=False, key=None):
        _check_input(f"{name}.apply", x, input_dim)
        return apply(params, x, layers, conv=conv, train=train, key=key), state

    def loss_(params, state, x, t, *, key=None):
        _check_input(f"{name}.loss", x, input_dim)
        return loss(params, x, t, layers, conv=conv, key=key), state

    def manual_grad_(params, state, x, t, *, key=None):
        _check_input(f"{name}.manual_grad", x, input_dim)
        value, grads = manual_grad(params, x, t, layers, conv=conv, key=key)
        return value, grads, state

    return Model(init_, apply_, loss_, manual_grad_, name=name)

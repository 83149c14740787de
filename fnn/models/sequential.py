"""Networks as a sequence of layer specs, run forward and backward by the book's layers (DLFS1 §5.7, §7.5).

A network is a tuple of specs::

    (Conv(30, 5), Act("relu"), Pool(2, 2), Flatten(), Affine(100), Act("relu"), Affine(10))

`network` turns the specs into `fnn.models.runner` nodes, the runner's forward collects the
caches of the book's layers and its backward runs their hand-written backward passes in reverse
(the book's backprop); `model` binds a tuple into a `Model`. `fnn.models.cnn` builds
SimpleConvNet, DeepConvNet and LeNet-5 from these specs. `param_shapes` checks a sequence when
the model is built: a missing `Flatten` before the first `Affine`, or a window larger than its
input, is an error that names the layer.

Parameters use the book's names and shapes, numbered in order over the Conv and Affine layers:
convolution ``W{k}`` (FN, C, FH, FW) and ``b{k}`` (FN,), affine ``W{k}`` (D, M) and ``b{k}`` (M,)
(SimpleConvNet: W1 conv, W2 and W3 affine, as in the book). Images are NCHW
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

from fnn import compile_cache
from fnn import init as initializers
from fnn.layers import core as L
from fnn.layers.conv import IMPLS, conv2d_nhwc, convolution_nhwc
from fnn.layers.core import Layer
from fnn.layers.dropout import dropout
from fnn.layers.im2col import output_size
from fnn.layers.pooling import pool2d_nhwc, pooling_nhwc
from fnn.models import runner
from fnn.models._model import Model, Params, check_positive_int
from fnn.models.runner import Node

__all__ = [
    "CONV_CHOICES", "CONV_IMPLS", "SPECS", "Act", "Affine", "apply", "Conv", "Dropout", "Flatten", "flatten_nhwc",
    "init", "loss", "manual_grad", "model", "network", "param_names", "param_shapes", "Pool",
]

# The convolution kernels, "im2col" and "lax"; a model also takes "auto" (see the module doc).
CONV_IMPLS = IMPLS
CONV_CHOICES = ("auto", *IMPLS)

# --------------------------------------------------------------------------------------------
# Layer specs: a network is a tuple of these
# --------------------------------------------------------------------------------------------


class Conv(NamedTuple):
    """Convolution with `filter_num` filters of `filter_size` x `filter_size` (DLFS1 §7.4.3); its
    params are W{k} (FN, C, size, size) and b{k} (FN,), k its place among the Conv/Affine layers."""
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
    """(N, H, W, C) -> (N, C*H*W) in the book's NCHW order (what the book's Affine does); needed
    between the last Conv/Pool and the first Affine."""


class Affine(NamedTuple):
    """Affine with `size` outputs (DLFS1 §5.6.2); its params are W{k} (D, size) and b{k} (size,),
    k its place among the Conv/Affine layers."""
    size: int


class Dropout(NamedTuple):
    """The book's Dropout (DLFS1 §6.4.3); `drop_rate` is its dropout_ratio."""
    drop_rate: float = 0.5


SPECS = (Conv, Pool, Act, Flatten, Affine, Dropout)

# --------------------------------------------------------------------------------------------
# Shapes and initialisation
# --------------------------------------------------------------------------------------------


def param_names(layers: Sequence) -> list[tuple[str, str] | None]:
    """Per layer, the names of its params, ("W1", "b1"), ... numbered in order over the Conv and
    Affine layers (the book's numbering), or None for a layer without params."""
    names, k = [], 0
    for layer in layers:
        if isinstance(layer, (Conv, Affine)):
            k += 1
            names.append((f"W{k}", f"b{k}"))
        else:
            names.append(None)
    return names


def _describe(i: int, layer) -> str:
    return f"cnn.model: layer {i} ({layer!r})"


def param_shapes(layers: Sequence, input_dim: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape, and the fan-in its initialiser uses: {name: (shape, fan_in)}.

    Checks the sequence on the way: every layer a spec, every window inside its input, a
    `Flatten` between images and the first `Affine`, none after it.
    """
    C, H, W = input_dim
    D = None  # features after Flatten; None while the activations are images
    shapes = {}
    for i, (layer, names) in enumerate(zip(layers, param_names(layers), strict=True), start=1):
        where = _describe(i, layer)
        if not isinstance(layer, SPECS):
            raise TypeError(f"{where} is not a layer spec, expected one of "
                            f"{', '.join(s.__name__ for s in SPECS)}")
        if D is not None and isinstance(layer, (Conv, Pool, Flatten)):
            raise ValueError(f"{where} follows a Flatten (features ({D},)), expected images: "
                             f"put Conv, Pool and Flatten before the first Affine")
        if D is None and isinstance(layer, Affine):
            raise ValueError(f"{where} gets images ({C}, {H}, {W}), expected features: put "
                             f"Flatten() before it")
        if isinstance(layer, Conv):
            FH = FW = layer.filter_size
            check_positive_int(where, "filter_num", layer.filter_num)
            H, W = output_size(where, H, W, FH, FW, layer.stride, layer.pad)
            shapes[names[0]] = ((layer.filter_num, C, FH, FW), C * FH * FW)
            shapes[names[1]] = ((layer.filter_num,), None)
            C = layer.filter_num
        elif isinstance(layer, Pool):
            H, W = output_size(where, H, W, layer.size, layer.size, layer.stride, 0)
        elif isinstance(layer, Flatten):
            D = C * H * W
        elif isinstance(layer, Affine):
            check_positive_int(where, "size", layer.size)
            shapes[names[0]] = ((D, layer.size), D)
            shapes[names[1]] = ((layer.size,), None)
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


def _check_input(fn: str, x: Array, input_dim: tuple[int, int, int]) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_dim):
        want = ", ".join(map(str, input_dim))
        raise ValueError(f"{fn}: x has shape {tuple(x.shape)}, expected (N, {want}) (NCHW images; "
                         f"load the data with flatten=False)")


# --------------------------------------------------------------------------------------------
# The specs as the runner's nodes
# --------------------------------------------------------------------------------------------


def _flatten_forward(params: Params, x: Array):
    """(N, H, W, C) -> (N, C*H*W) in the book's (C, H, W) order, what its Affine's reshape of an
    NCHW image gives (DLFS1 §7.5); the cache is x's shape."""
    return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1), x.shape


def _flatten_backward(params: Params, shape, dout: Array):
    """dx = dout (N, C*H*W) back to (N, H, W, C) (DLFS1 §7.5)."""
    N, H, W, C = shape
    return L.NO_PARAMS, dout.reshape(N, C, H, W).transpose(0, 2, 3, 1)


flatten_nhwc = Layer(_flatten_forward, _flatten_backward)


def _conv_fast(p: Params, x: Array, **options) -> Array:
    return conv2d_nhwc(x, p["W"], p["b"], **options)


def _pool_fast(p: Params, x: Array, **options) -> Array:
    return pool2d_nhwc(x, **options)


def network(layers: Sequence, conv: str = "auto") -> tuple[Node, ...]:
    """The specs as `fnn.models.runner` nodes on the `conv` kernel (DLFS1 §7.5). Unless `conv` is
    "im2col", convolution and pooling have `conv2d_nhwc` / `pool2d_nhwc` as fast forwards, what
    ``jax.grad`` differentiates."""
    fast = conv != "im2col"
    nodes = []
    for i, (layer, names) in enumerate(zip(layers, param_names(layers), strict=True), start=1):
        kind = type(layer).__name__
        label = f"{kind}{'' if names is None else ' ' + names[0]}"
        params = None if names is None else {"W": names[0], "b": names[1]}
        if isinstance(layer, Conv):
            nodes.append(Node(label, convolution_nhwc, params,
                              {"stride": layer.stride, "pad": layer.pad, "impl": conv},
                              fast=_conv_fast if fast else None))
        elif isinstance(layer, Pool):
            nodes.append(Node(label, pooling_nhwc, None, {"pool_h": layer.size, "pool_w": layer.size,
                                                          "stride": layer.stride, "mode": layer.mode},
                              fast=_pool_fast if fast else None))
        elif isinstance(layer, Act):
            nodes.append(Node(f"{kind}({layer.name})", L.activation_layer(layer.name)))
        elif isinstance(layer, Flatten):
            nodes.append(Node(label, flatten_nhwc))
        elif isinstance(layer, Affine):
            nodes.append(Node(label, L.affine, params))
        elif isinstance(layer, Dropout):
            nodes.append(Node(label, dropout, options={"drop_rate": layer.drop_rate}, rng=True,
                              train=True))
        else:
            raise TypeError(f"{_describe(i, layer)} is not a layer spec, expected one of "
                            f"{', '.join(s.__name__ for s in SPECS)}")
    return tuple(nodes)


# --------------------------------------------------------------------------------------------
# Forward (apply, loss) and the book's backprop
# --------------------------------------------------------------------------------------------


def apply(params: Params, x: Array, layers: Sequence, *, conv: str = "auto", train: bool = False,
          key: Array | None = None, name: str = "cnn") -> Array:
    """Scores (N, classes) of images x (N, C, H, W) (the book's ``predict``), by the fast
    forwards (DLFS1 §7.5)."""
    x = x.transpose(0, 2, 3, 1)  # (N, H, W, C) inside
    return runner.forward(network(layers, conv), params, x, train=train, key=key, fast=True,
                          name=name)[0]


def loss(params: Params, x: Array, t: Array, layers: Sequence, *, conv: str = "auto",
         key: Array | None = None, name: str = "cnn") -> Array:
    """Softmax cross-entropy of the training-mode scores, t (N,) labels or (N, classes) one-hot."""
    scores = apply(params, x, layers, conv=conv, train=True, key=key, name=name)
    return L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)[0]


def manual_grad(params: Params, x: Array, t: Array, layers: Sequence, *, conv: str = "auto",
                key: Array | None = None, name: str = "cnn") -> tuple[Array, Params]:
    """The loss and its gradient by the book's backprop through the layers on the `conv` kernel
    (DLFS1 §7.5, ``SimpleConvNet.gradient``): the runner's forward collecting caches, then its
    backward."""
    net = network(layers, conv)
    scores, caches, _ = runner.forward(net, params, x.transpose(0, 2, 3, 1), train=True, key=key,
                                       name=name)
    value, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
    _, dout = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
    grads, _, _ = runner.backward(net, params, caches, dout)
    return value, grads


def model(layers: Sequence, input_dim: tuple[int, int, int] = (1, 28, 28), *,
          weight_init: str | float = "he", conv: str = "auto", dtype=jnp.float32,
          name: str = "cnn") -> Model:
    """A `Model` from layer specs (`Conv`, `Pool`, `Act`, `Flatten`, `Affine`, `Dropout`).

    The Conv and Affine params are numbered in order: W1, b1 for the first of them, W2, b2 ...
    `conv` picks the convolution kernel of both gradient paths ("auto", "im2col" or "lax"; see
    the module docstring). `init` is one jitted call.
    """
    if conv not in CONV_CHOICES:
        raise ValueError(f"cnn.model: conv is {conv!r}, expected one of {CONV_CHOICES}")
    layers = tuple(layers)
    param_shapes(layers, input_dim)  # bad sizes fail now, not at the first step
    network(layers, conv)            # and unknown activations
    initializers.get(weight_init)

    @compile_cache.jit_once  # runs once
    def init_(key):
        return init(key, layers, input_dim, weight_init=weight_init, dtype=dtype), {}

    def apply_(params, state, x, *, train=False, key=None):
        _check_input(f"{name}.apply", x, input_dim)
        return apply(params, x, layers, conv=conv, train=train, key=key, name=name), state

    def loss_(params, state, x, t, *, key=None):
        _check_input(f"{name}.loss", x, input_dim)
        return loss(params, x, t, layers, conv=conv, key=key, name=name), state

    def manual_grad_(params, state, x, t, *, key=None):
        _check_input(f"{name}.manual_grad", x, input_dim)
        value, grads = manual_grad(params, x, t, layers, conv=conv, key=key, name=name)
        return value, grads, state

    return Model(init_, apply_, loss_, manual_grad_, name=name)

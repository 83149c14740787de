"""Convolutional networks: the book's SimpleConvNet and DeepConvNet, and LeNet-5 (DLFS1 ch7–8).

    SimpleConvNet (DLFS1 §7.5, ``ch07/simple_convnet.py``):
        conv 30@5x5 - ReLU - pool 2x2 - affine 100 - ReLU - affine 10
    DeepConvNet (DLFS1 §8.1.1, ``ch08/deep_convnet.py``):
        conv 16 - ReLU - conv 16 - ReLU - pool - conv 32 - ReLU - conv 32 (pad 2) - ReLU - pool -
        conv 64 - ReLU - conv 64 - ReLU - pool - affine 50 - ReLU - dropout 0.5 - affine 10 - dropout 0.5
    LeNet-5 (LeCun et al. 1998, with ReLU and max pooling by default):
        conv 6@5x5 (pad 2) - act - pool - conv 16@5x5 - act - pool - affine 120 - act - affine 84 - act -
        affine 10

Parameters use the book's names and shapes, so the book's trained pickles load as they are
(`from_book_params`): convolution ``W{i}`` (FN, C, FH, FW) and ``b{i}`` (FN,), affine ``W{i}``
(D, M) and ``b{i}`` (M,), numbered from the input. Images are NCHW (N, C, H, W) at the API; inside,
activations are NHWC (3x faster on XLA:CPU), and the flatten before the first affine restores the
book's (C, H, W) order, so ``W`` of that affine has the book's row order.

A network is a list of layer specs run by one `_forward` (collecting the caches of the book's
layers) and one `_backward` (the book's backprop, those layers' hand-written backward in reverse):

* ``conv="im2col"`` — forward by the book's im2col layers (`fnn.layers.conv`, `fnn.layers.pooling`);
* ``conv="lax"`` — forward by ``lax.conv_general_dilated`` and reshape-max pooling. Caution:
  measured on XLA:CPU (jax 0.10.2), a ``jax.grad`` training step on lax.conv inside a
  ``lax.scan`` (as `fnn.train.make_epoch` runs it) is ~40x slower than the same step jitted alone
  (DeepConvNet: 4.2 s vs 0.09 s for im2col in the same scan), so "im2col" is the default.

`Model.loss` (the autodiff path) differentiates the chosen forward with ``jax.grad``;
`Model.manual_grad` is always the book's backprop through the im2col layers. Dropout follows the
book (test-time scaling, `fnn.layers.dropout`), and DeepConvNet keeps the book's dropout after its
last affine too.

References: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from fnn import init as initializers
from fnn.layers import core as L
from fnn.layers.conv import conv2d_nhwc, convolution_nhwc, output_size
from fnn.layers.dropout import dropout
from fnn.layers.pooling import pool2d_nhwc, pooling_nhwc
from fnn.models._model import Model, Params

CONV_IMPLS = ("im2col", "lax")

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


def _forward(params: Params, x: Array, layers: Sequence, *, conv: str = "im2col",
             train: bool = False, key: Array | None = None):
    """Run the layers on x (N, C, H, W); returns scores (N, classes) and the caches (DLFS1 §7.5).

    With ``conv="lax"`` the convolutions and poolings are XLA's and their caches are None: that
    forward is for ``jax.grad`` and evaluation, not for `_backward`.
    """
    n_drop = sum(isinstance(layer, Dropout) for layer in layers)
    keys = list(jax.random.split(key, n_drop)) if (train and n_drop and key is not None) else []
    x = x.transpose(0, 2, 3, 1)  # (N, H, W, C) inside
    caches = []
    for layer in layers:
        if isinstance(layer, Conv):
            p = _layer_params(params, layer.index)
            if conv == "lax":
                x, cache = conv2d_nhwc(x, p["W"], p["b"], stride=layer.stride, pad=layer.pad), None
            else:
                x, cache = convolution_nhwc.forward(p, x, stride=layer.stride, pad=layer.pad)
        elif isinstance(layer, Pool):
            kw = {"pool_h": layer.size, "pool_w": layer.size, "stride": layer.stride,
                  "mode": layer.mode}
            if conv == "lax":
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


def apply(params: Params, x: Array, layers: Sequence, *, conv: str = "lax", train: bool = False,
          key: Array | None = None) -> Array:
    """Scores (N, classes) of images x (N, C, H, W) (the book's ``predict``)."""
    return _forward(params, x, layers, conv=conv, train=train, key=key)[0]


def loss(params: Params, x: Array, t: Array, layers: Sequence, *, conv: str = "lax",
         key: Array | None = None) -> Array:
    """Softmax cross-entropy of the training-mode scores, t (N,) labels or (N, classes) one-hot."""
    scores = apply(params, x, layers, conv=conv, train=True, key=key)
    return L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)[0]


def manual_grad(params: Params, x: Array, t: Array, layers: Sequence, *,
                key: Array | None = None) -> tuple[Array, Params]:
    """The loss and its gradient by the book's backprop through the im2col layers (DLFS1 §7.5,
    ``SimpleConvNet.gradient``)."""
    scores, caches = _forward(params, x, layers, conv="im2col", train=True, key=key)
    value, loss_cache = L.softmax_with_loss.forward(L.NO_PARAMS, scores, t)
    _, dout = L.softmax_with_loss.backward(L.NO_PARAMS, loss_cache, 1.0)
    return value, _backward(params, layers, caches, dout)


# --------------------------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------------------------


def model(layers: Sequence, input_dim: tuple[int, int, int] = (1, 28, 28), *,
          weight_init: str | float = "he", conv: str = "im2col", dtype=jnp.float32,
          name: str = "cnn") -> Model:
    """A `Model` from layer specs (`Conv`, `Pool`, `Act`, `Flatten`, `Affine`, `Dropout`).

    `conv` picks the forward of `apply` and `loss` ("im2col", the book's, or "lax");
    `manual_grad` always runs the book's layers. `init` is one jitted call.
    """
    if conv not in CONV_IMPLS:
        raise ValueError(f"cnn.model: conv is {conv!r}, expected one of {CONV_IMPLS}")
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
        value, grads = manual_grad(params, x, t, layers, key=key)
        return value, grads, state

    return Model(init_, apply_, loss_, manual_grad_, name=name)


def simple_convnet_layers(conv_param: dict | None = None, hidden_size: int = 100,
                          output_size: int = 10) -> tuple:
    """SimpleConvNet's layer specs (see `simple_convnet`)."""
    cp = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, **(conv_param or {})}
    return (Conv(1, cp["filter_num"], cp["filter_size"], cp["stride"], cp["pad"]), Act("relu"),
            Pool(2, 2), Flatten(), Affine(2, hidden_size), Act("relu"), Affine(3, output_size))


def deep_convnet_layers(hidden_size: int = 50, output_size: int = 10, drop_rate: float = 0.5,
                        filter_nums: Sequence[int] = (16, 16, 32, 32, 64, 64)) -> tuple:
    """DeepConvNet's layer specs (see `deep_convnet`)."""
    if len(filter_nums) != 6:
        raise ValueError(f"deep_convnet: filter_nums has {len(filter_nums)} entries, expected 6")
    layers = []
    for i, (fn, pad) in enumerate(zip(filter_nums, (1, 1, 1, 2, 1, 1), strict=True), start=1):
        layers += [Conv(i, fn, 3, 1, pad), Act("relu")]
        if i % 2 == 0:
            layers.append(Pool(2, 2))
    return tuple(layers + [Flatten(), Affine(7, hidden_size), Act("relu"), Dropout(drop_rate),
                           Affine(8, output_size), Dropout(drop_rate)])


def simple_convnet(input_dim: tuple[int, int, int] = (1, 28, 28), conv_param: dict | None = None,
                   hidden_size: int = 100, output_size: int = 10, weight_init_std: float = 0.01,
                   *, conv: str = "im2col", dtype=jnp.float32) -> Model:
    """The book's SimpleConvNet (DLFS1 §7.5): conv - ReLU - pool 2x2 - affine - ReLU - affine.

    `conv_param` is the book's ``{"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}``;
    all weights N(0, weight_init_std^2) as in the book. Params W1 (30, C, 5, 5), b1, W2 (30*12*12,
    100), b2, W3 (100, 10), b3 for 28x28 inputs.
    """
    layers = simple_convnet_layers(conv_param, hidden_size, output_size)
    return model(layers, input_dim, weight_init=weight_init_std, conv=conv, dtype=dtype,
                 name="simple_convnet")


def deep_convnet(input_dim: tuple[int, int, int] = (1, 28, 28), hidden_size: int = 50,
                 output_size: int = 10, *, drop_rate: float = 0.5,
                 filter_nums: Sequence[int] = (16, 16, 32, 32, 64, 64), conv: str = "im2col",
                 dtype=jnp.float32) -> Model:
    """The book's DeepConvNet (DLFS1 §8.1.1, ``ch08/deep_convnet.py``), He initialisation.

    Six 3x3 convolutions 16-16-32-32-64-64 (pad 1, except pad 2 on the fourth, as in the book:
    14x14 -> 16x16), a 2x2 pool after every second, affine 64*4*4 -> 50 - ReLU - dropout - affine
    50 -> 10 - dropout. Params W1..W6 (convolutions), W7 (1024, 50), W8 (50, 10) and biases.
    `filter_nums` (six numbers) shrinks it for tests; the book's are the default.
    """
    layers = deep_convnet_layers(hidden_size, output_size, drop_rate, filter_nums)
    return model(layers, input_dim, weight_init="he", conv=conv, dtype=dtype, name="deep_convnet")


def lenet5(input_dim: tuple[int, int, int] = (1, 28, 28), output_size: int = 10, *,
           activation: str = "relu", pool: str = "max", weight_init: str | float = "he",
           conv: str = "im2col", dtype=jnp.float32) -> Model:
    """LeNet-5 (LeCun et al. 1998; DLFS1 §7.7.1): conv 6@5x5 - pool - conv 16@5x5 - pool - 120 - 84 - 10.

    The first convolution pads by 2, so a 28x28 MNIST digit sees the 32x32 input of the paper.
    The paper used sigmoid-like activations and subsampling (``activation="tanh", pool="avg"``);
    the default is today's ReLU and max pooling, as DLFS1 §7.7.1 notes. Params W1 (6, C, 5, 5),
    W2 (16, 6, 5, 5), W3 (16*5*5, 120), W4 (120, 84), W5 (84, 10) and biases.
    """
    L.activation_layer(activation)
    layers = (Conv(1, 6, 5, 1, 2), Act(activation), Pool(2, 2, pool),
              Conv(2, 16, 5), Act(activation), Pool(2, 2, pool), Flatten(),
              Affine(3, 120), Act(activation), Affine(4, 84), Act(activation),
              Affine(5, output_size))
    return model(layers, input_dim, weight_init=weight_init, conv=conv, dtype=dtype,
                 name="lenet5")


# --------------------------------------------------------------------------------------------
# The book's pretrained weights
# --------------------------------------------------------------------------------------------

BOOK_WEIGHTS = {"simple_convnet": ("simple_convnet_params.pkl", simple_convnet),
                "deep_convnet": ("deep_convnet_params.pkl", deep_convnet)}


def from_book_params(model_: Model, book_params: dict, dtype=jnp.float32) -> Params:
    """The book's saved ``params`` dict (numpy arrays, its ``save_params``) as `model_`'s params.

    The layouts are the same (OIHW filters, (D, M) affine weights, NCHW flatten order); this
    checks every name and shape against `model_`'s and converts to `dtype`.
    """
    want = jax.eval_shape(model_.init, jax.random.key(0))[0]
    if set(book_params) != set(want):
        raise ValueError(f"from_book_params: the book's params have keys {sorted(book_params)}, "
                         f"expected {sorted(want)} for {model_.name}")
    for k, spec in want.items():
        if tuple(np.shape(book_params[k])) != tuple(spec.shape):
            raise ValueError(f"from_book_params: {k} has shape {tuple(np.shape(book_params[k]))}, "
                             f"expected {tuple(spec.shape)} for {model_.name}")
    return {k: jnp.asarray(book_params[k], dtype) for k in want}


def book_pretrained(name: str, *, conv: str = "im2col", dtype=jnp.float32,
                    download: bool = True) -> tuple[Model, Params]:
    """The book's trained network `name` ("simple_convnet", DLFS1 ch07 ``params.pkl``, or
    "deep_convnet", ch08 ``deep_convnet_params.pkl``) as ``(model, params)``, loaded safely."""
    from fnn.data.weights import load_book_weights

    if name not in BOOK_WEIGHTS:
        raise ValueError(f"book_pretrained: name is {name!r}, expected one of {sorted(BOOK_WEIGHTS)}")
    file, make = BOOK_WEIGHTS[name]
    model_ = make(conv=conv)
    return model_, from_book_params(model_, load_book_weights(file, download=download), dtype)


def num_params(params: Params) -> int:
    """How many numbers `params` holds."""
    return sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))

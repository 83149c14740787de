"""Convolutional networks: the book's SimpleConvNet and DeepConvNet, and LeNet-5 (DLFS1 ch7–8).

    SimpleConvNet (DLFS1 §7.5, ``ch07/simple_convnet.py``):
        conv 30@5x5 - ReLU - pool 2x2 - affine 100 - ReLU - affine 10
    DeepConvNet (DLFS1 §8.1.1, ``ch08/deep_convnet.py``):
        conv 16 - ReLU - conv 16 - ReLU - pool - conv 32 - ReLU - conv 32 (pad 2) - ReLU - pool -
        conv 64 - ReLU - conv 64 - ReLU - pool - affine 50 - ReLU - dropout 0.5 - affine 10 - dropout 0.5
    LeNet-5 (LeCun et al. 1998, with ReLU and max pooling by default):
        conv 6@5x5 (pad 2) - act - pool - conv 16@5x5 - act - pool - affine 120 - act - affine 84 - act -
        affine 10

Each is a tuple of layer specs run by `fnn.models.sequential` (re-exported here: `Conv`, `Pool`,
..., `model`, `init`, `apply`, `loss`, `manual_grad`), whose docstring has the layouts and the
``conv`` choice ("auto", the default; "im2col", the book's kernel; "lax", XLA's). Parameters use
the book's names and shapes, so the book's trained pickles load as they are (`from_book_params`).
Dropout follows the book (test-time scaling, `fnn.layers.dropout`), and DeepConvNet keeps the
book's dropout after its last affine too.

References: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn.layers import core as L
from fnn.models._model import Model, Params
from fnn.models.sequential import (
    CONV_CHOICES,
    CONV_IMPLS,
    Act,
    Affine,
    Conv,
    Dropout,
    Flatten,
    Pool,
    apply,
    init,
    loss,
    manual_grad,
    model,
    network,
    param_names,
    param_shapes,
)

__all__ = ["BOOK_WEIGHTS", "CONV_CHOICES", "CONV_IMPLS", "Act", "Affine", "Conv", "Dropout",
           "Flatten", "Pool", "apply", "book_pretrained", "deep_convnet", "deep_convnet_layers",
           "from_book_params", "init", "lenet5", "loss", "manual_grad", "model", "network",
           "param_names", "param_shapes", "simple_convnet", "simple_convnet_layers"]


def simple_convnet_layers(conv_param: dict | None = None, hidden_size: int = 100,
                          output_size: int = 10) -> tuple:
    """SimpleConvNet's layer specs (see `simple_convnet`)."""
    cp = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, **(conv_param or {})}
    return (Conv(cp["filter_num"], cp["filter_size"], cp["stride"], cp["pad"]), Act("relu"),
            Pool(2, 2), Flatten(), Affine(hidden_size), Act("relu"), Affine(output_size))


def deep_convnet_layers(hidden_size: int = 50, output_size: int = 10, drop_rate: float = 0.5,
                        filter_nums: Sequence[int] = (16, 16, 32, 32, 64, 64)) -> tuple:
    """DeepConvNet's layer specs (see `deep_convnet`)."""
    if len(filter_nums) != 6:
        raise ValueError(f"deep_convnet: filter_nums has {len(filter_nums)} entries, expected 6")
    layers = []
    for i, (fn, pad) in enumerate(zip(filter_nums, (1, 1, 1, 2, 1, 1), strict=True), start=1):
        layers += [Conv(fn, 3, 1, pad), Act("relu")]
        if i % 2 == 0:
            layers.append(Pool(2, 2))
    return tuple(layers + [Flatten(), Affine(hidden_size), Act("relu"), Dropout(drop_rate),
                           Affine(output_size), Dropout(drop_rate)])


def simple_convnet(input_dim: tuple[int, int, int] = (1, 28, 28), conv_param: dict | None = None,
                   hidden_size: int = 100, output_size: int = 10, weight_init_std: float = 0.01,
                   *, conv: str = "auto", dtype=jnp.float32) -> Model:
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
                 filter_nums: Sequence[int] = (16, 16, 32, 32, 64, 64), conv: str = "auto",
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
           conv: str = "auto", dtype=jnp.float32) -> Model:
    """LeNet-5 (LeCun et al. 1998; DLFS1 §7.7.1): conv 6@5x5 - pool - conv 16@5x5 - pool - 120 - 84 - 10.

    The first convolution pads by 2, so a 28x28 MNIST digit sees the 32x32 input of the paper.
    The paper used sigmoid-like activations and subsampling (``activation="tanh", pool="avg"``);
    the default is today's ReLU and max pooling, as DLFS1 §7.7.1 notes. Params W1 (6, C, 5, 5),
    W2 (16, 6, 5, 5), W3 (16*5*5, 120), W4 (120, 84), W5 (84, 10) and biases.
    """
    L.activation_layer(activation)
    layers = (Conv(6, 5, 1, 2), Act(activation), Pool(2, 2, pool),
              Conv(16, 5), Act(activation), Pool(2, 2, pool), Flatten(),
              Affine(120), Act(activation), Affine(84), Act(activation),
              Affine(output_size))
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


def book_pretrained(name: str, *, conv: str = "auto", dtype=jnp.float32,
                    download: bool = True) -> tuple[Model, Params]:
    """The book's trained network `name` ("simple_convnet", DLFS1 ch07 ``params.pkl``, or
    "deep_convnet", ch08 ``deep_convnet_params.pkl``) as ``(model, params)``, loaded safely."""
    from fnn.data.weights import load_book_weights

    if name not in BOOK_WEIGHTS:
        raise ValueError(f"book_pretrained: name is {name!r}, expected one of {sorted(BOOK_WEIGHTS)}")
    file, make = BOOK_WEIGHTS[name]
    model_ = make(conv=conv)
    return model_, from_book_params(model_, load_book_weights(file, download=download), dtype)


"""Dropout (DLFS1 §6.4.3), with explicit `jax.random` keys.

`drop_rate` is the book's ``dropout_ratio``: the probability that a unit is *dropped* (not
stax's "keep" rate).

Convention (docs/DESIGN.md, "Conventions"): the book scales at *test* time. Training keeps each
unit with probability 1 - drop_rate and does not rescale; evaluation multiplies every unit by 1 - drop_rate.
The book's trained DeepConvNet weights need exactly this. ``inverted=True`` gives the modern
"inverted dropout" instead: training divides kept units by 1 - drop_rate, evaluation is the identity.
Both have the same expected output in training and evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from fnn.layers.core import NO_PARAMS, Layer, Params

__all__ = ["dropout"]


def _check_rate(drop_rate: float) -> None:
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"dropout.forward: drop_rate is {drop_rate!r}, expected a probability "
                         f"in [0, 1)")


def _dropout_forward(params: Params, x: Array, *, key: Array | None = None, drop_rate: float = 0.5,
                     train: bool = True, inverted: bool = False):
    """y = x * mask (training) or x * (1 - drop_rate) (evaluation) (DLFS1 §6.4.3, Dropout).

    `key` is required when ``train=True``. The cache is the factor dy/dx: the 0/1 mask (scaled by
    1 / (1 - drop_rate) when `inverted`) in training, the evaluation scale otherwise.
    """
    _check_rate(drop_rate)
    keep = 1.0 - drop_rate
    if not train:
        scale = jnp.asarray(1.0 if inverted else keep, x.dtype)
        return x * scale, scale
    if key is None:
        raise ValueError("dropout.forward: key is None, expected a jax.random key when train=True")
    mask = jax.random.bernoulli(key, keep, x.shape).astype(x.dtype)
    if inverted:
        mask = mask / keep
    return x * mask, mask


def _dropout_backward(params: Params, factor: Array, dout: Array):
    """dx = dout * mask: the gradient flows only through the units that were kept (DLFS1 §6.4.3)."""
    return NO_PARAMS, dout * factor


dropout = Layer(_dropout_forward, _dropout_backward)

"""Weight initialisers (DLFS1 §6.2).

An initialiser is ``init(key, shape, dtype=float32, *, fan_in=None) -> array``. `fan_in` is the
number of nodes of the previous layer, n in the book: ``shape[0]`` for an affine weight ``(in, out)``
and ``C * FH * FW`` for a convolution filter ``(FN, C, FH, FW)`` (the default takes ``prod(shape[1:])``
for rank > 2).

`get(spec)` turns what a model's `weight_init` argument accepts into an initialiser:

* a number ``s``: Gaussian with standard deviation s (the book's ``weight_init_std=0.01``)
* ``"he"`` or ``"relu"``: Gaussian with std sqrt(2 / n), for ReLU (He et al. 2015; DLFS1 §6.2.3)
* ``"xavier"`` or ``"sigmoid"``: Gaussian with std sqrt(1 / n), for sigmoid/tanh (Glorot & Bengio
  2010 as the book simplifies it; DLFS1 §6.2.2)
* ``"zeros"``: all zeros (DLFS1 §6.2.1 shows why this fails for weights)

References: X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural
networks", AISTATS 2010. K. He et al., "Delving Deep into Rectifiers", ICCV 2015.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array

__all__ = ["INITIALIZERS", "get", "he", "Initializer", "normal", "normals", "std", "xavier", "zeros"]

Initializer = Callable[..., Array]


def _fan_in(shape: tuple[int, ...], fan_in: int | None) -> int:
    if fan_in is not None:
        return fan_in
    return shape[0] if len(shape) <= 2 else math.prod(shape[1:])


def zeros(key: Array, shape, dtype=jnp.float32, *, fan_in: int | None = None) -> Array:
    """All zeros (DLFS1 §6.2.1); the key is ignored."""
    del key, fan_in
    return jnp.zeros(shape, dtype)


def normal(std: float) -> Initializer:
    """Gaussian N(0, std^2) weights: the book's ``weight_init_std * np.random.randn(...)`` (DLFS1 §6.2)."""
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std >= 0):
        raise ValueError(f"init.normal: std is {std!r}, expected a finite number >= 0")

    def init(key: Array, shape, dtype=jnp.float32, *, fan_in: int | None = None) -> Array:
        del fan_in
        return std * jax.random.normal(key, shape, dtype)

    return init


def xavier(key: Array, shape, dtype=jnp.float32, *, fan_in: int | None = None) -> Array:
    """Xavier: N(0, 1/n), n = fan-in (DLFS1 §6.2.2, the book's simplified Glorot form)."""
    n = _fan_in(tuple(shape), fan_in)
    return math.sqrt(1.0 / n) * jax.random.normal(key, shape, dtype)


def he(key: Array, shape, dtype=jnp.float32, *, fan_in: int | None = None) -> Array:
    """He: N(0, 2/n), n = fan-in (DLFS1 §6.2.3)."""
    n = _fan_in(tuple(shape), fan_in)
    return math.sqrt(2.0 / n) * jax.random.normal(key, shape, dtype)


def normals(key: Array, shapes, dtype=jnp.float32) -> list[Array]:
    """Standard-normal arrays of the given shapes, cut from ONE draw.

    Every `jax.random.normal` of a new shape is a program of its own to compile; a network's
    weights drawn layer by layer cost seconds of compilation before the first step. One flat draw
    costs one program, however many layers there are.
    """
    shapes = [tuple(s) for s in shapes]
    sizes = [math.prod(s) for s in shapes]
    z = jax.random.normal(key, (sum(sizes),), dtype)
    out, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        out.append(jax.lax.slice(z, (start,), (start + size,)).reshape(shape))
        start += size
    return out


def std(spec: str | float | Array, fan_in: int):
    """The standard deviation `spec` gives a layer with `fan_in` inputs (DLFS1 §6.2): the number
    itself, sqrt(1/n) for "xavier"/"sigmoid", sqrt(2/n) for "he"/"relu", 0 for "zeros"."""
    if isinstance(spec, str):
        get(spec)  # the error for an unknown name
        return {"zeros": 0.0, "xavier": math.sqrt(1.0 / fan_in), "sigmoid": math.sqrt(1.0 / fan_in),
                "he": math.sqrt(2.0 / fan_in), "relu": math.sqrt(2.0 / fan_in)}[spec]
    return spec


INITIALIZERS = {"zeros": zeros, "xavier": xavier, "sigmoid": xavier, "he": he, "relu": he}


def get(spec: str | float) -> Initializer:
    """The initialiser for `spec`: a standard deviation, or a name in `INITIALIZERS`."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int, float)):
        raise TypeError(f"init.get: weight_init is {spec!r}, expected a standard deviation "
                        f"(float) or one of {sorted(INITIALIZERS)}")
    if isinstance(spec, str):
        if spec not in INITIALIZERS:
            raise ValueError(f"init.get: weight_init is {spec!r}, expected a standard deviation "
                             f"(float) or one of {sorted(INITIALIZERS)}")
        return INITIALIZERS[spec]
    return normal(float(spec))

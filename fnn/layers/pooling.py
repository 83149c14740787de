"""Pooling: max and average over PH x PW windows (DLFS1 §7.3, §7.4.4).

Shapes: N batch, C channels, H x W input, PH x PW window (the book's ``pool_h``, ``pool_w``),
stride S (default: the window size, as every book network passes: ``Pooling(pool_h=2, pool_w=2,
stride=2)``; the book's own default, stride 1, is rarely what one means),
padding P with zeros, OH = (H + 2P - PH) // S + 1, OW likewise. Pooling acts on every channel
separately and has no parameters.

The book's Pooling (``common/layers.py``) computes OH without P although it pads; here P counts,
so ``pad > 0`` works. The book implements max pooling only; average pooling is its §7.3 variant.

Max pooling's backward sends each dout to the *first* maximum of its window in (ph, pw) order,
exactly the book's ``argmax`` (DLFS1 §7.4.4). Where a window holds several equal maxima,
``jax.grad`` of the fast path instead splits dout equally among them; both are valid
subgradients and agree wherever the maximum is unique.

The layer runs on FH*FW static strided views (`fnn.layers.im2col.patches`). Its forward keeps the
book's ``arg_max`` (one small integer a window, from a reduction) and its backward puts dout where
it points: no ``reduce_window``, whose gradient XLA:CPU lowers to a slow scatter, and no chain of
masks recomputed from the input in the backward, which XLA fused into the loop over dx and
recomputed for every cell of a window (SimpleConvNet's step measured 11-23 % faster without it).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import Array, lax

from fnn._checks import check_ndim
from fnn.layers.core import NO_PARAMS, Layer, Params
from fnn.layers.im2col import nchw_layer, output_size, pad_hw, patches, to_nchw, to_nhwc, unpatches

__all__ = ["MODES", "pool2d", "pool2d_nhwc", "PoolCache", "pooling", "pooling_nhwc"]

MODES = ("max", "avg")


@functools.partial(jax.tree_util.register_dataclass, data_fields=["arg_max"],
                   meta_fields=["x_shape", "pool_h", "pool_w", "stride", "pad", "mode"])
@dataclasses.dataclass(frozen=True)
class PoolCache:
    """Pooling forward's cache: for max, the book's ``arg_max`` (N, OH, OW, C), the window cell
    (ph * PW + pw) of each window's first maximum (None for avg); the input's shape (N, H, W, C)
    and the static window."""

    arg_max: Array | None
    x_shape: tuple[int, ...]
    pool_h: int
    pool_w: int
    stride: int
    pad: int
    mode: str


def _setup(fn: str, x: Array, pool_h: int, pool_w: int, stride: int | None, pad: int, mode: str):
    check_ndim(fn, "x", x, 4, "(N, H, W, C) (NHWC inside a model)")
    if mode not in MODES:
        raise ValueError(f"{fn}: mode is {mode!r}, expected one of {MODES}")
    if stride is None:
        if pool_h != pool_w:
            raise ValueError(f"{fn}: stride is None with a {pool_h}x{pool_w} window, expected "
                             f"an explicit stride for a non-square window")
        stride = pool_h
    OH, OW = output_size(fn, x.shape[1], x.shape[2], pool_h, pool_w, stride, pad)
    return stride, OH, OW


def _pooling_nhwc_forward(params: Params, x: Array, *, pool_h: int = 2, pool_w: int = 2,
                          stride: int | None = None, pad: int = 0, mode: str = "max"):
    """Max (or mean) over each PH x PW window (DLFS1 §7.4.4, Pooling). x (N, H, W, C) -> (N, OH, OW, C)."""
    stride, OH, OW = _setup("pooling.forward", x, pool_h, pool_w, stride, pad, mode)
    parts = patches(pad_hw(x, pad), pool_h, pool_w, stride, OH, OW)  # PH*PW x (N, OH, OW, C)
    if mode == "avg":
        out = functools.reduce(jnp.add, parts) / (pool_h * pool_w)
        return out, PoolCache(None, tuple(x.shape), pool_h, pool_w, stride, pad, mode)
    out = functools.reduce(jnp.maximum, parts)
    # the book's arg_max (np.argmax: the first maximum), a small int a window, kept for backward
    arg_max = jnp.argmax(jnp.stack(parts, axis=-1), axis=-1).astype(_index_dtype(pool_h * pool_w))
    return out, PoolCache(arg_max, tuple(x.shape), pool_h, pool_w, stride, pad, mode)


def _index_dtype(cells: int):
    """The smallest integer type for a window cell's index: int8 below 127 cells (a 2x2 window: a
    quarter of float32's bytes to keep and read back), int32 above."""
    return jnp.int8 if cells < 127 else jnp.int32


def _pooling_nhwc_backward(params: Params, cache: PoolCache, dout: Array):
    """Max: dout to the first maximum of each window; avg: dout / (PH*PW) to every cell (§7.4.4).

    dout (N, OH, OW, C) -> dx (N, H, W, C).
    """
    N, H, W, C = cache.x_shape
    PH, PW, S, P = cache.pool_h, cache.pool_w, cache.stride, cache.pad
    OH, OW = dout.shape[1], dout.shape[2]
    tiles = S == PH == PW and P == 0  # non-overlapping windows (the book's 2x2, stride 2)
    first = cache.arg_max
    if tiles:  # every cell (i, j) of every window at once: dout where the cell is the window's argmax
        d6 = dout[:, :, None, :, None, :]  # (N, OH, 1, OW, 1, C), broadcast over the window
        if cache.mode == "max":
            cell = jnp.arange(PH * PW, dtype=first.dtype).reshape(1, 1, PH, 1, PW, 1)  # k = i*PW + j
            d6 = jnp.where(first[:, :, None, :, None, :] == cell, d6, 0)
        else:
            d6 = jnp.broadcast_to(d6 / (PH * PW), (N, OH, PH, OW, PW, C))
        dx = d6.reshape(N, OH * PH, OW * PW, C)  # one pass, no concatenation
        return NO_PARAMS, jnp.pad(dx, ((0, 0), (0, H - OH * PH), (0, W - OW * PW), (0, 0)))
    if cache.mode == "max":
        dparts = [jnp.where(first == k, dout, 0) for k in range(PH * PW)]
    else:
        dparts = [dout / (PH * PW)] * (PH * PW)
    dxp = unpatches(dparts, (N, H + 2 * P, W + 2 * P, C), PH, PW, S)
    return NO_PARAMS, dxp[:, P:P + H, P:P + W, :]


# forward({}, x, *, pool_h=2, pool_w=2, stride=None, pad=0, mode="max") -> (y, cache) on NHWC
# activations (N, H, W, C), the layout the models use inside; backward({}, cache, dout) -> ({}, dx).
pooling_nhwc = Layer(_pooling_nhwc_forward, _pooling_nhwc_backward)
# The book's Pooling: the same layer on NCHW, x (N, C, H, W) -> y (N, C, OH, OW).
pooling = nchw_layer("pooling", pooling_nhwc)


# --------------------------------------------------------------------------------------------
# The autodiff path
# --------------------------------------------------------------------------------------------


def pool2d_nhwc(x: Array, *, pool_h: int = 2, pool_w: int = 2, stride: int | None = None,
                pad: int = 0, mode: str = "max") -> Array:
    """Pooling for ``jax.grad`` (DLFS1 §7.3): x (N, H, W, C) -> (N, OH, OW, C), the numbers of `pooling_nhwc`.

    Non-overlapping windows without padding (the book's 2x2, stride 2) are a reshape and a max
    (or mean), whose gradient is elementwise; other windows use ``lax.reduce_window`` on the
    zero-padded input.
    """
    stride, OH, OW = _setup("pool2d", x, pool_h, pool_w, stride, pad, mode)
    N, H, W, C = x.shape
    if stride == pool_h == pool_w and pad == 0:
        x6 = x[:, :OH * pool_h, :OW * pool_w, :].reshape(N, OH, pool_h, OW, pool_w, C)
        return jnp.max(x6, axis=(2, 4)) if mode == "max" else jnp.mean(x6, axis=(2, 4))
    xp = pad_hw(x, pad)
    window, strides = (1, pool_h, pool_w, 1), (1, stride, stride, 1)
    if mode == "max":
        return lax.reduce_window(xp, -jnp.inf, lax.max, window, strides, "VALID")
    total = lax.reduce_window(xp, 0.0, lax.add, window, strides, "VALID")  # scalar inits: grads
    return total / (pool_h * pool_w)


def pool2d(x: Array, *, pool_h: int = 2, pool_w: int = 2, stride: int | None = None, pad: int = 0,
           mode: str = "max") -> Array:
    """`pool2d_nhwc` with the book's layout: x (N, C, H, W) -> (N, C, OH, OW) (DLFS1 §7.3)."""
    check_ndim("pool2d", "x", x, 4, "(N, C, H, W)")
    return to_nchw(pool2d_nhwc(to_nhwc(x), pool_h=pool_h, pool_w=pool_w, stride=stride, pad=pad,
                               mode=mode))

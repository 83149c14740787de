"""Convolution: im2col / col2im and the Convolution layer (DLFS1 §7.2–7.4).

Shapes: N batch, C input channels, H x W input size, FN filters of FH x FW, stride S, padding P,
OH = (H + 2P - FH) // S + 1 and OW = (W + 2P - FW) // S + 1 (DLFS1 §7.2.4, equation 7.1).

Layout. At the API everything is the book's: images NCHW ``(N, C, H, W)``, filters OIHW
``(FN, C, FH, FW)``, biases ``(FN,)``, and `im2col` returns the book's ``(N*OH*OW, C*FH*FW)``
matrix. Inside, XLA:CPU is ~3x faster in NHWC, so the models keep activations ``(N, H, W, C)``
and call the ``*_nhwc`` functions; the NCHW ones are thin transposing wrappers around them.

Two implementations of the same convolution:

* the book's: `im2col` (FH*FW static strided slices of the padded input, no loop over output
  positions), one matmul, and the hand-written backward ``dW = col^T dout``, ``dcol = dout W^T``,
  `col2im` (DLFS1 §7.4.3). This is `convolution` / `convolution_nhwc`, the "manual" gradient path,
  and on XLA:CPU also the fastest one for small filter banks.
* `conv2d` / `conv2d_nhwc` on ``lax.conv_general_dilated``, for the autodiff path.

Both agree to rounding (tests/layers/test_conv.py, float64).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import Array, lax

from fnn._checks import check_floating, check_ndim
from fnn.layers.core import Layer, Params

# --------------------------------------------------------------------------------------------
# Shape checks
# --------------------------------------------------------------------------------------------


def _check_int(fn: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{fn}: {name} is {value!r}, expected an integer >= {minimum}")


def output_size(fn: str, H: int, W: int, FH: int, FW: int, stride: int, pad: int) -> tuple[int, int]:
    """(OH, OW) of a FH x FW window sliding over H x W with `stride` and `pad` (DLFS1 §7.2.4, equation 7.1).

    `fn` names the caller in the error raised for a bad stride/pad or a window larger than the
    padded input.
    """
    _check_int(fn, "stride", stride, 1)
    _check_int(fn, "pad", pad, 0)
    for what, f, n in (("height", FH, H), ("width", FW, W)):
        _check_int(fn, f"window {what}", f, 1)
        if f > n + 2 * pad:
            raise ValueError(f"{fn}: window {what} is {f}, larger than the padded input {what} "
                             f"{n} + 2*pad = {n + 2 * pad}")
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1


# --------------------------------------------------------------------------------------------
# Patches: the FH*FW shifted views that im2col stacks, and their adjoint
# --------------------------------------------------------------------------------------------


def pad_hw(x: Array, pad: int) -> Array:
    """x (N, H, W, C) with `pad` zeros on each side of H and W: (N, H+2P, W+2P, C) (padding, DLFS1 §7.2.3)."""
    return x if pad == 0 else jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def patches(xp: Array, FH: int, FW: int, stride: int, OH: int, OW: int) -> list[Array]:
    """The FH*FW strided views of a padded NHWC input, each (N, OH, OW, C), in (fh, fw) order.

    View (i, j) holds, at output position (oh, ow), the input pixel xp[:, oh*S + i, ow*S + j]:
    the loop of the book's `im2col` (DLFS1 §7.4.3) over filter offsets, with static slices.
    """
    N, _, _, C = xp.shape
    return [lax.slice(xp, (0, i, j, 0), (N, i + stride * (OH - 1) + 1, j + stride * (OW - 1) + 1, C),
                      (1, stride, stride, 1))
            for i in range(FH) for j in range(FW)]


def unpatches(parts: list[Array], padded_shape: tuple[int, ...], FH: int, FW: int,
              stride: int) -> Array:
    """Adjoint of `patches` (DLFS1 §7.4.3, col2im): add each view (N, OH, OW, C) back at its offset; (N, Hp, Wp, C).

    The book's `col2im` loop ``img[:, :, y:y_max:stride, x:x_max:stride] += col[...]``, written as
    a sum of zero-padded views (``lax.pad`` with interior padding S - 1), which XLA fuses into a
    single pass instead of a scatter.
    """
    _, Hp, Wp, _ = padded_shape
    zero = jnp.zeros((), parts[0].dtype)
    out = None
    for k, part in enumerate(parts):
        i, j = divmod(k, FW)
        OH, OW = part.shape[1], part.shape[2]
        config = ((0, 0, 0), (i, Hp - i - stride * (OH - 1) - 1, stride - 1),
                  (j, Wp - j - stride * (OW - 1) - 1, stride - 1), (0, 0, 0))
        placed = lax.pad(part, zero, config)
        out = placed if out is None else out + placed
    return out


# --------------------------------------------------------------------------------------------
# im2col / col2im (DLFS1 §7.4.3)
# --------------------------------------------------------------------------------------------


def im2col_nhwc(x: Array, FH: int, FW: int, stride: int = 1, pad: int = 0) -> Array:
    """x (N, H, W, C) -> col (N, OH, OW, FH*FW*C), columns in (fh, fw, c) order (DLFS1 §7.4.3)."""
    check_ndim("im2col_nhwc", "x", x, 4, "(N, H, W, C)")
    N, H, W, C = x.shape
    OH, OW = output_size("im2col_nhwc", H, W, FH, FW, stride, pad)
    parts = patches(pad_hw(x, pad), FH, FW, stride, OH, OW)
    return jnp.stack(parts, axis=3).reshape(N, OH, OW, FH * FW * C)  # (N, OH, OW, FH*FW*C)


def col2im_nhwc(col: Array, x_shape: tuple[int, ...], FH: int, FW: int, stride: int = 1,
                pad: int = 0) -> Array:
    """col (N, OH, OW, FH*FW*C) -> image (N, H, W, C) = x_shape: the adjoint of `im2col_nhwc`.

    Entries that several windows share are summed, as the gradient needs (DLFS1 §7.4.3).
    """
    N, H, W, C = x_shape
    OH, OW = output_size("col2im_nhwc", H, W, FH, FW, stride, pad)
    if tuple(col.shape) != (N, OH, OW, FH * FW * C):
        raise ValueError(f"col2im_nhwc: col has shape {tuple(col.shape)}, expected "
                         f"{(N, OH, OW, FH * FW * C)} for x_shape {tuple(x_shape)}")
    col = col.reshape(N, OH, OW, FH * FW, C)
    parts = [col[:, :, :, k, :] for k in range(FH * FW)]
    xp = unpatches(parts, (N, H + 2 * pad, W + 2 * pad, C), FH, FW, stride)
    return xp[:, pad:pad + H, pad:pad + W, :]


def im2col(input_data: Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Array:
    """The book's im2col: input_data (N, C, H, W) -> col (N*OH*OW, C*FH*FW) (DLFS1 §7.4.3).

    Row ``(n*OH + oh)*OW + ow`` is the receptive field of output (oh, ow) of image n, flattened
    in (c, fh, fw) order, so ``col @ W.reshape(FN, -1).T`` is the convolution, as in the book.
    """
    check_ndim("im2col", "input_data", input_data, 4, "(N, C, H, W)")
    N, C, H, W = input_data.shape
    col = im2col_nhwc(input_data.transpose(0, 2, 3, 1), filter_h, filter_w, stride, pad)
    OH, OW = col.shape[1], col.shape[2]
    col = col.reshape(N, OH, OW, filter_h, filter_w, C).transpose(0, 1, 2, 5, 3, 4)
    return col.reshape(N * OH * OW, C * filter_h * filter_w)


def col2im(col: Array, input_shape: tuple[int, ...], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> Array:
    """The book's col2im: col (N*OH*OW, C*FH*FW) -> (N, C, H, W) = input_shape (DLFS1 §7.4.3).

    The adjoint of `im2col`: ``<im2col(x), y> == <x, col2im(y)>``.
    """
    N, C, H, W = input_shape
    OH, OW = output_size("col2im", H, W, filter_h, filter_w, stride, pad)
    if tuple(col.shape) != (N * OH * OW, C * filter_h * filter_w):
        raise ValueError(f"col2im: col has shape {tuple(col.shape)}, expected "
                         f"{(N * OH * OW, C * filter_h * filter_w)} for input_shape "
                         f"{tuple(input_shape)}")
    col = col.reshape(N, OH, OW, C, filter_h, filter_w).transpose(0, 1, 2, 4, 5, 3)
    col = col.reshape(N, OH, OW, filter_h * filter_w * C)
    return col2im_nhwc(col, (N, H, W, C), filter_h, filter_w, stride, pad).transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# Convolution layer (DLFS1 §7.4.3, Convolution)
# --------------------------------------------------------------------------------------------


@functools.partial(jax.tree_util.register_dataclass, data_fields=["col"],
                   meta_fields=["x_shape", "stride", "pad"])
@dataclasses.dataclass(frozen=True)
class ConvCache:
    """What Convolution's forward keeps: col (N, OH, OW, FH*FW*C) and the static shape/stride/pad."""

    col: Array
    x_shape: tuple[int, ...]
    stride: int
    pad: int


def _check_filters(fn: str, params: Params, C: int) -> tuple[int, int, int, int]:
    W, b = params["W"], params["b"]
    check_ndim(fn, "W", W, 4, "(FN, C, FH, FW)")
    FN, C_w, FH, FW = W.shape
    if C_w != C:
        raise ValueError(f"{fn}: x has {C} channels, expected {C_w} (W.shape[1])")
    if tuple(b.shape) != (FN,):
        raise ValueError(f"{fn}: b has shape {tuple(b.shape)}, expected ({FN},) (W.shape[0])")
    return FN, C_w, FH, FW


def filters_as_matrix(W: Array) -> Array:
    """Filters W (FN, C, FH, FW) as the matmul operand (FH*FW*C, FN) of `im2col_nhwc`'s columns
    (DLFS1 §7.4.3: the filters expanded to one column each)."""
    FN, C, FH, FW = W.shape
    return W.transpose(2, 3, 1, 0).reshape(FH * FW * C, FN)


def _convolution_nhwc_forward(params: Params, x: Array, *, stride: int = 1, pad: int = 0):
    """y = im2col(x) · W_col + b (DLFS1 §7.4.3). x (N, H, W, C) -> y (N, OH, OW, FN).

    params: ``{"W": (FN, C, FH, FW), "b": (FN,)}`` (the book's filter layout).
    """
    check_ndim("convolution.forward", "x", x, 4, "(N, H, W, C) (NHWC inside a model)")
    FN, C, FH, FW = _check_filters("convolution.forward", params, x.shape[3])
    output_size("convolution.forward", x.shape[1], x.shape[2], FH, FW, stride, pad)
    col = im2col_nhwc(x, FH, FW, stride, pad)  # (N, OH, OW, FH*FW*C)
    N, OH, OW, K = col.shape
    y = col.reshape(N * OH * OW, K) @ filters_as_matrix(params["W"])  # (N*OH*OW, FN)
    y = y + params["b"].reshape(1, FN)
    return y.reshape(N, OH, OW, FN), ConvCache(col, tuple(x.shape), stride, pad)


def _convolution_nhwc_backward(params: Params, cache: ConvCache, dout: Array):
    """dW = col^T · dout, db = sum dout, dx = col2im(dout · W_col^T) (DLFS1 §7.4.3).

    dout (N, OH, OW, FN); grads in the book's shapes, dx (N, H, W, C).
    """
    W = params["W"]
    FN, C, FH, FW = W.shape
    N, OH, OW, K = cache.col.shape
    d2 = dout.reshape(N * OH * OW, FN)
    dW = (cache.col.reshape(N * OH * OW, K).T @ d2).reshape(FH, FW, C, FN).transpose(3, 2, 0, 1)
    dcol = (d2 @ filters_as_matrix(W).T).reshape(N, OH, OW, K)
    dx = col2im_nhwc(dcol, cache.x_shape, FH, FW, cache.stride, cache.pad)
    return {"W": dW, "b": jnp.sum(d2, axis=0)}, dx


def _convolution_forward(params: Params, x: Array, *, stride: int = 1, pad: int = 0):
    """The book's Convolution.forward: x (N, C, H, W) -> (N, FN, OH, OW) (DLFS1 §7.4.3).

    params ``{"W": (FN, C, FH, FW), "b": (FN,)}``; the cache is a `ConvCache`.
    """
    check_ndim("convolution.forward", "x", x, 4, "(N, C, H, W)")
    y, cache = _convolution_nhwc_forward(params, x.transpose(0, 2, 3, 1), stride=stride, pad=pad)
    return y.transpose(0, 3, 1, 2), cache


def _convolution_backward(params: Params, cache: ConvCache, dout: Array):
    """The book's Convolution.backward: dout (N, FN, OH, OW) -> grads, dx (N, C, H, W)."""
    grads, dx = _convolution_nhwc_backward(params, cache, dout.transpose(0, 2, 3, 1))
    return grads, dx.transpose(0, 3, 1, 2)


convolution = Layer(_convolution_forward, _convolution_backward)
"""NCHW: forward(params, x, *, stride=1, pad=0) -> (y, cache); backward(params, cache, dout)."""
convolution_nhwc = Layer(_convolution_nhwc_forward, _convolution_nhwc_backward)
"""The same layer on NHWC activations (N, H, W, C), the layout the models use inside."""


# --------------------------------------------------------------------------------------------
# The autodiff fast path: lax.conv_general_dilated
# --------------------------------------------------------------------------------------------


def conv2d_nhwc(x: Array, W: Array, b: Array, *, stride: int = 1, pad: int = 0) -> Array:
    """Convolution on XLA's conv: x (N, H, W, C), W (FN, C, FH, FW), b (FN,) -> (N, OH, OW, FN).

    Same numbers as `convolution_nhwc` (DLFS1 §7.2), meant for ``jax.grad``. XLA:CPU's weight
    gradient of a convolution padded by 2 or more is pathologically slow (measured: 94 ms of a
    177 ms DeepConvNet step), so all but one ring of padding is added with ``jnp.pad`` first.
    """
    check_ndim("conv2d", "x", x, 4, "(N, H, W, C)")
    FN, C, FH, FW = _check_filters("conv2d", {"W": W, "b": b}, x.shape[3])
    output_size("conv2d", x.shape[1], x.shape[2], FH, FW, stride, pad)
    inner = min(pad, 1)
    x = pad_hw(x, pad - inner)
    y = lax.conv_general_dilated(x, W.transpose(2, 3, 1, 0), (stride, stride),
                                 ((inner, inner), (inner, inner)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b.reshape(1, 1, 1, FN)


def conv2d(x: Array, W: Array, b: Array, *, stride: int = 1, pad: int = 0) -> Array:
    """`conv2d_nhwc` with the book's layout: x (N, C, H, W) -> (N, FN, OH, OW) (DLFS1 §7.2)."""
    check_ndim("conv2d", "x", x, 4, "(N, C, H, W)")
    check_floating("conv2d", "x", x)
    return conv2d_nhwc(x.transpose(0, 2, 3, 1), W, b, stride=stride, pad=pad).transpose(0, 3, 1, 2)

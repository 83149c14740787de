"""im2col and col2im: a convolution's input windows as the rows of a matrix (DLFS1 §7.4.3).

Shapes: N batch, C channels, H x W input size, FH x FW filter, stride S, padding P, output
OH = (H + 2P - FH) // S + 1 and OW = (W + 2P - FW) // S + 1 (DLFS1 §7.2.4, equation 7.1).

`im2col` / `col2im` take and give the book's NCHW images and ``(N*OH*OW, C*FH*FW)`` matrix; the
``*_nhwc`` forms are what the models use inside (NHWC, ~3x faster on XLA:CPU). All are built from
FH*FW static strided slices of the padded input (`patches`) and their scatter-add back
(`unpatches`): no loop over output positions at run time. `fnn.layers.conv` (the Convolution
layer) and `fnn.layers.pooling` (Pooling) are written on them, in NHWC; `nchw_layer` gives each
the book's NCHW interface.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array, lax

from fnn._checks import check_ndim
from fnn.layers.core import Layer

__all__ = ["col2im", "col2im_nhwc", "col2im_rows", "im2col", "im2col_nhwc", "im2col_rows", "nchw_layer",
           "output_size", "pad_hw", "patches", "to_nchw", "to_nhwc", "unpatches"]

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


def im2col_rows(x: Array, FH: int, FW: int, stride: int = 1, pad: int = 0) -> Array:
    """x (N, H, W, C) -> the transposed column matrix (FH*FW*C, N*OH*OW) (DLFS1 §7.4.3).

    ``im2col_rows(x)[:, m]`` is row m of the book's ``im2col`` (in (fh, fw, c) order): one row a
    filter tap and channel, each a whole (N, OH, OW) plane cut from the channel's padded image.
    Written plane by plane it is built at memory speed where `im2col_nhwc` interleaves FH*FW*C
    values per pixel (DeepConvNet's and SimpleConvNet's 1-channel first layers: 2-4x faster to
    build, and their forward and dW products as fast or faster; docs/SPEED.md).
    """
    check_ndim("im2col_rows", "x", x, 4, "(N, H, W, C)")
    N, H, W, C = x.shape
    OH, OW = output_size("im2col_rows", H, W, FH, FW, stride, pad)
    planes = pad_hw(x, pad).transpose(3, 0, 1, 2).reshape(C * N, H + 2 * pad, W + 2 * pad, 1)
    parts = patches(planes, FH, FW, stride, OH, OW)  # FH*FW x (C*N, OH, OW, 1)
    return jnp.stack(parts).reshape(FH * FW * C, N * OH * OW)


def col2im_rows(col_t: Array, x_shape: tuple[int, ...], FH: int, FW: int, stride: int = 1,
                pad: int = 0) -> Array:
    """(FH*FW*C, N*OH*OW) -> image (N, H, W, C) = x_shape: the adjoint of `im2col_rows`
    (the book's ``col2im``, DLFS1 §7.4.3: entries that several windows share are summed)."""
    N, H, W, C = x_shape
    OH, OW = output_size("col2im_rows", H, W, FH, FW, stride, pad)
    if tuple(col_t.shape) != (FH * FW * C, N * OH * OW):
        raise ValueError(f"col2im_rows: col_t has shape {tuple(col_t.shape)}, expected "
                         f"{(FH * FW * C, N * OH * OW)} for x_shape {tuple(x_shape)}")
    parts = list(col_t.reshape(FH * FW, C * N, OH, OW, 1))
    planes = unpatches(parts, (C * N, H + 2 * pad, W + 2 * pad, 1), FH, FW, stride)
    xp = planes.reshape(C, N, H + 2 * pad, W + 2 * pad).transpose(1, 2, 3, 0)
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
# The book's NCHW layout around a layer written on NHWC
# --------------------------------------------------------------------------------------------


def to_nhwc(x: Array) -> Array:
    """The book's NCHW images (DLFS1 §7.2.5) as NHWC: (N, C, H, W) -> (N, H, W, C)."""
    return x.transpose(0, 2, 3, 1)


def to_nchw(x: Array) -> Array:
    """NHWC back to the book's NCHW (DLFS1 §7.2.5): (N, H, W, C) -> (N, C, H, W)."""
    return x.transpose(0, 3, 1, 2)


def nchw_layer(name: str, layer: Layer) -> Layer:
    """`layer` (a pair on NHWC activations) with the book's NCHW ones: x (N, C, H, W) in, y
    (N, C', OH, OW) out, dout and dx alike (the layout of DLFS1 §7.2.5). `name` prefixes errors."""

    def forward(params, x, **kwargs):
        check_ndim(f"{name}.forward", "x", x, 4, "(N, C, H, W)")
        y, cache = layer.forward(params, to_nhwc(x), **kwargs)
        return to_nchw(y), cache

    def backward(params, cache, dout):
        grads, dx = layer.backward(params, cache, to_nhwc(dout))
        return grads, to_nchw(dx)

    return Layer(forward, backward)

"""Convolution: the Convolution layer on two kernels (DLFS1 §7.2–7.4).

Shapes: N batch, C input channels, H x W input size, FN filters of FH x FW, stride S, padding P,
OH = (H + 2P - FH) // S + 1 and OW = (W + 2P - FW) // S + 1 (DLFS1 §7.2.4, equation 7.1).

Layout. At the API everything is the book's: images NCHW ``(N, C, H, W)``, filters OIHW
``(FN, C, FH, FW)``, biases ``(FN,)``; `fnn.layers.im2col` has the book's ``im2col`` / ``col2im``.
Inside, XLA:CPU is ~3x faster in NHWC, so the models keep activations ``(N, H, W, C)`` and call
the ``*_nhwc`` forms; ``convolution`` and ``conv2d`` put the book's NCHW around them.

Two kernels compute the same equations (``impl``; a model's ``conv``):

* "im2col", the book's: the column matrix (`fnn.layers.im2col.im2col_rows`: FH*FW static strided
  slices of the padded input, no loop over output positions; kept transposed, one row a filter tap
  and channel, which is built at memory speed), one matmul, and the hand-written backward
  ``dW = col^T dout``, ``dcol = dout W^T``, ``col2im`` (DLFS1 §7.4.3);
* "lax": the same three products as XLA convolutions without a column matrix, in the NHWC/HWIO
  layout that XLA:CPU hands to its fast kernels.

"auto", the default everywhere, picks per layer (`choose_impl`): im2col for fewer than 4 input
channels, lax otherwise. Measured on XLA:CPU, one thread, batch 100 (README, "Speed";
scripts/profile_convnet.py reads the named scopes each direction runs under): im2col wins where the
column matrix is narrow (a 1-channel first layer: forward 2.5 ms against 6.7 ms, dW 3.2 against
6.6) and loses on DeepConvNet's 16–64-channel layers, where building the column matrices is
memory-bound. Choosing the kernel per direction instead (dW as ``dout^T · im2col(x)`` on the lax
forward) won alone and lost inside the training step.
`convolution` / `convolution_nhwc` is the layer (forward/backward pair, the manual gradient path)
on either kernel; `conv2d` / `conv2d_nhwc` is the function for ``jax.grad``. Both agree to
rounding (tests/layers/test_conv.py, float64).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import Array, lax

from fnn._checks import check_floating, check_ndim
from fnn.layers.core import Layer, Params
from fnn.layers.im2col import col2im_rows, im2col_rows, nchw_layer, output_size, pad_hw, to_nchw, to_nhwc

__all__ = [
    "DEFAULT_IMPL", "IMPLS", "choose_impl", "conv2d", "conv2d_nhwc", "ConvCache", "convolution", "convolution_nhwc",
]

# The kernels that compute the convolution's equations; "auto" (`choose_impl`) picks per layer.
IMPLS = ("im2col", "lax")
# The kernel of every convolution unless one is named: `choose_impl`'s per-layer choice.
DEFAULT_IMPL = "auto"


def choose_impl(impl: str, C: int) -> str:
    """The kernel for the convolution (DLFS1 §7.4.3) of a layer with C input channels.

    `impl` itself, or for "auto": "im2col" when C < 4 (its column matrix is then narrow, FH*FW*C,
    and XLA's kernel, which vectorises over channels, is slower: 6.7 vs 2.5 ms for a 1-channel
    3x3 forward at batch 100), "lax" otherwise.
    """
    if impl not in (*IMPLS, "auto"):
        raise ValueError(f"convolution: impl is {impl!r}, expected one of {(*IMPLS, 'auto')}")
    return impl if impl != "auto" else ("im2col" if C < 4 else "lax")


# --------------------------------------------------------------------------------------------
# The lax kernel: the same equations on XLA's convolution
# --------------------------------------------------------------------------------------------

_DN = ("NHWC", "HWIO", "NHWC")  # the only layout XLA:CPU hands to its fast convolution kernels


def _split_pad(pad: int) -> tuple[int, int]:
    """(outer, inner): all but one ring of zeros is added with ``jnp.pad``, the last by the conv.

    XLA:CPU's weight gradient of a convolution padded by 2 inside is pathologically slow (measured
    228 ms against 20 ms for DeepConvNet's fourth layer), so only one ring stays inside.
    """
    inner = min(pad, 1)
    return pad - inner, inner


def _lax_forward(x: Array, W: Array, stride: int, pad: int) -> Array:
    """y = x ⋆ W (DLFS1 §7.2.2; ``im2col(x) · W_col`` of §7.4.3): x (N, H, W, C) -> (N, OH, OW, FN)."""
    outer, inner = _split_pad(pad)
    return lax.conv_general_dilated(pad_hw(x, outer), W.transpose(2, 3, 1, 0), (stride, stride),
                                    ((inner, inner), (inner, inner)), dimension_numbers=_DN)


def _lax_dx(dout: Array, W: Array, x_shape: tuple[int, ...], stride: int, pad: int) -> Array:
    """dx = col2im(dout · W_col^T) (DLFS1 §7.4.3) as one convolution: (N, H, W, C) = x_shape.

    Every input pixel collects dout from the outputs whose window covers it, weighted by the
    filter tap that joined them: dout (N, OH, OW, FN), dilated by the stride, correlated with the
    filters flipped in (FH, FW) and transposed to (FN -> C).
    """
    FN, C, FH, FW = W.shape
    N, H, W_, _ = x_shape
    OH, OW = dout.shape[1], dout.shape[2]
    crop = 0 if pad <= min(FH, FW) - 1 else pad  # else: dx of the padded input, border cut off
    p = pad - crop
    padding = ((FH - 1 - p, H + 2 * crop - 1 - (OH - 1) * stride + p),
               (FW - 1 - p, W_ + 2 * crop - 1 - (OW - 1) * stride + p))
    Wt = jnp.flip(W, (2, 3)).transpose(2, 3, 0, 1)  # (FH, FW, FN, C): HWIO with I = FN, O = C
    dx = lax.conv_general_dilated(dout, Wt, (1, 1), padding, lhs_dilation=(stride, stride),
                                  dimension_numbers=_DN)
    return dx[:, crop:crop + H, crop:crop + W_, :]


def _lax_dW(x: Array, dout: Array, FH: int, FW: int, stride: int, pad: int) -> Array:
    """dW = col^T · dout (DLFS1 §7.4.3) as one convolution: (FN, C, FH, FW).

    ``dW[f, c, i, j] = sum over n, oh, ow of xp[n, oh*S + i, ow*S + j, c] * dout[n, oh, ow, f]`` is
    a convolution with batch and channels exchanged: x^T (C, H, W, N), a batch of C images with N
    channels, correlated with dout^T (OH, OW, N, FN) as FN filters of OH x OW (dilated by S).
    """
    outer, inner = _split_pad(pad)
    xt = pad_hw(x, outer).transpose(3, 1, 2, 0)  # (C, H + 2*outer, W + 2*outer, N)
    g = lax.conv_general_dilated(xt, dout.transpose(1, 2, 0, 3), (1, 1), ((inner, inner),) * 2,
                                 rhs_dilation=(stride, stride), dimension_numbers=_DN)
    return g[:, :FH, :FW, :].transpose(3, 0, 1, 2)  # (C, >=FH, >=FW, FN) -> (FN, C, FH, FW)


# --------------------------------------------------------------------------------------------
# Convolution layer (DLFS1 §7.4.3, Convolution)
# --------------------------------------------------------------------------------------------


@functools.partial(jax.tree_util.register_dataclass, data_fields=["col", "x"],
                   meta_fields=["x_shape", "stride", "pad"])
@dataclasses.dataclass(frozen=True)
class ConvCache:
    """What Convolution's forward keeps: the column matrix, transposed, (FH*FW*C, N*OH*OW) for the
    im2col kernel (`im2col_rows`), or the input x (N, H, W, C) for the lax kernel (the other is
    None), and the static shape/stride/pad."""

    col: Array | None
    x: Array | None
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


def _scope(W: Array, direction: str):
    """A `jax.named_scope` such as ``conv16to32_dW``: a profile's op names then tell each layer's
    forward, dx and dW apart (scripts/profile_convnet.py)."""
    return jax.named_scope(f"conv{W.shape[1]}to{W.shape[0]}_{direction}")


def _filters_as_matrix(W: Array) -> Array:
    """Filters W (FN, C, FH, FW) as the matmul operand (FH*FW*C, FN) of `im2col_rows`'s rows
    (DLFS1 §7.4.3: the filters expanded to one column each)."""
    FN, C, FH, FW = W.shape
    return W.transpose(2, 3, 1, 0).reshape(FH * FW * C, FN)


def _convolution_nhwc_forward(params: Params, x: Array, *, stride: int = 1, pad: int = 0,
                              impl: str = DEFAULT_IMPL):
    """y = im2col(x) · W_col + b (DLFS1 §7.4.3). x (N, H, W, C) -> y (N, OH, OW, FN).

    params: ``{"W": (FN, C, FH, FW), "b": (FN,)}`` (the book's filter layout). `impl` "im2col"
    builds the column matrix as the book does; "lax" computes the same product with XLA's
    convolution and keeps x instead; "auto" picks per `choose_impl`.
    """
    check_ndim("convolution.forward", "x", x, 4, "(N, H, W, C) (NHWC inside a model)")
    FN, C, FH, FW = _check_filters("convolution.forward", params, x.shape[3])
    output_size("convolution.forward", x.shape[1], x.shape[2], FH, FW, stride, pad)
    b = params["b"].reshape(1, 1, 1, FN)
    with _scope(params["W"], "forward"):
        if choose_impl(impl, C) == "lax":
            y = _lax_forward(x, params["W"], stride, pad) + b
            return y, ConvCache(None, x, tuple(x.shape), stride, pad)
        col_t = im2col_rows(x, FH, FW, stride, pad)  # (FH*FW*C, N*OH*OW): the book's col, transposed
        OH, OW = output_size("convolution.forward", x.shape[1], x.shape[2], FH, FW, stride, pad)
        y = col_t.T @ _filters_as_matrix(params["W"])  # (N*OH*OW, FN)
        return y.reshape(x.shape[0], OH, OW, FN) + b, ConvCache(col_t, None, tuple(x.shape), stride, pad)


def _convolution_nhwc_backward(params: Params, cache: ConvCache, dout: Array):
    """dW = col^T · dout, db = sum dout, dx = col2im(dout · W_col^T) (DLFS1 §7.4.3).

    dout (N, OH, OW, FN); grads in the book's shapes, dx (N, H, W, C). With the lax kernel the
    same two products are XLA convolutions (`_lax_dW`, `_lax_dx`).
    """
    W = params["W"]
    FN, C, FH, FW = W.shape
    with _scope(W, "dW"):
        db = jnp.sum(dout, axis=(0, 1, 2))
        if cache.col is None:
            dW = _lax_dW(cache.x, dout, FH, FW, cache.stride, cache.pad)
        else:
            d2 = dout.reshape(-1, FN)  # (N*OH*OW, FN)
            dW = (cache.col @ d2).reshape(FH, FW, C, FN).transpose(3, 2, 0, 1)
    with _scope(W, "dx"):
        if cache.col is None:
            dx = _lax_dx(dout, W, cache.x_shape, cache.stride, cache.pad)
        else:
            dcol_t = _filters_as_matrix(W) @ d2.T  # (FH*FW*C, N*OH*OW): dcol, transposed
            dx = col2im_rows(dcol_t, cache.x_shape, FH, FW, cache.stride, cache.pad)
    return {"W": dW, "b": db}, dx


# forward(params, x, *, stride=1, pad=0, impl="auto") -> (y, cache) on NHWC activations
# (N, H, W, C), the layout the models use inside; backward(params, cache, dout) -> (grads, dx).
convolution_nhwc = Layer(_convolution_nhwc_forward, _convolution_nhwc_backward)
# The book's Convolution: the same layer on NCHW, x (N, C, H, W) -> y (N, FN, OH, OW).
convolution = nchw_layer("convolution", convolution_nhwc)


# --------------------------------------------------------------------------------------------
# The autodiff path
# --------------------------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _lax_conv(x: Array, W: Array, b: Array, stride: int, pad: int) -> Array:
    with _scope(W, "forward"):
        return _lax_forward(x, W, stride, pad) + b.reshape(1, 1, 1, -1)


def _lax_conv_fwd(x, W, b, stride, pad):
    return _lax_conv(x, W, b, stride, pad), (x, W, b)


def _lax_conv_bwd(stride, pad, res, dout):
    x, W, b = res
    grads, dx = _convolution_nhwc_backward({"W": W, "b": b},
                                           ConvCache(None, x, tuple(x.shape), stride, pad), dout)
    return dx, grads["W"], grads["b"]


_lax_conv.defvjp(_lax_conv_fwd, _lax_conv_bwd)


def conv2d_nhwc(x: Array, W: Array, b: Array, *, stride: int = 1, pad: int = 0,
                impl: str = DEFAULT_IMPL) -> Array:
    """Convolution for ``jax.grad``: x (N, H, W, C), W (FN, C, FH, FW), b (FN,) -> (N, OH, OW, FN).

    The numbers of `convolution_nhwc` (DLFS1 §7.2). With the "lax" kernel (or "auto" choosing it)
    the gradient is a ``jax.custom_vjp``: `convolution_nhwc`'s backward on the lax kernel, the
    transposed convolutions written out in XLA:CPU's canonical layout. ``jax.grad`` of a plain
    ``lax.conv_general_dilated`` gives the same numbers, but its weight gradient is a
    convolution in a non-canonical layout that XLA:CPU only rewrites for its fast kernel outside
    loops: inside `lax.scan` (an epoch) it runs on a generic loop emitter, measured 40-70x slower.
    With "im2col", ``jax.grad`` differentiates the book's im2col forward.
    """
    check_ndim("conv2d", "x", x, 4, "(N, H, W, C)")
    FN, C, FH, FW = _check_filters("conv2d", {"W": W, "b": b}, x.shape[3])
    output_size("conv2d", x.shape[1], x.shape[2], FH, FW, stride, pad)
    if choose_impl(impl, C) == "im2col":
        return convolution_nhwc.forward({"W": W, "b": b}, x, stride=stride, pad=pad, impl="im2col")[0]
    return _lax_conv(x, W, b, stride, pad)


def conv2d(x: Array, W: Array, b: Array, *, stride: int = 1, pad: int = 0,
           impl: str = DEFAULT_IMPL) -> Array:
    """`conv2d_nhwc` with the book's layout: x (N, C, H, W) -> (N, FN, OH, OW) (DLFS1 §7.2)."""
    check_ndim("conv2d", "x", x, 4, "(N, C, H, W)")
    check_floating("conv2d", "x", x)
    return to_nchw(conv2d_nhwc(to_nhwc(x), W, b, stride=stride, pad=pad, impl=impl))

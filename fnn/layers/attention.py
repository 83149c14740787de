"""Attention: AttentionWeight, WeightSum, Attention and TimeAttention (DLFS2 §8.1.3–8.1.5).

The book's ``ch08/attention_layer.py`` as pure `fnn.layers.core.Layer` pairs. The encoder's hidden
states ``hs (N, T, H)`` are attended to by a decoder state ``h (N, H)``:

    s = hs · h          (N, T)   one dot product a time step     (AttentionWeight, DLFS2 §8.1.4)
    a = softmax(s)      (N, T)   the attention weights
    c = sum_t a_t hs_t  (N, H)   the context vector              (WeightSum, DLFS2 §8.1.3)

`attention` is the two composed (DLFS2 §8.1.5), `time_attention` the same for every decoder step
``hs_dec (N, T_dec, H)`` at once (TimeAttention, DLFS2 §8.1.5): the book loops over the steps with
one Attention layer each; here the T_dec queries are one more axis of the same batched matmuls,
and the book's ``dhs_enc += dhs`` over the steps is the sum over that axis inside the matmul.

The layers have no parameters (``params`` is `NO_PARAMS`) and two inputs, passed as the book
passes them: ``forward(params, hs, h) -> (y, cache)``, ``backward(params, cache, dout) ->
(NO_PARAMS, (dhs, dh))`` (the input gradients in the order of the inputs, as `fnn.layers.core.mul`).
The caches are named tuples; their field ``a`` holds the attention weights (the book's
``attention_weight`` / ``attention_weights``, drawn as the attention map of DLFS2 §8.3.3).

Each formula exists once, in the private kernels below, on a batch of U queries ``q (N, U, H)``:
the one-step layers call them with U = 1, `time_attention` with U = T_dec.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from fnn import functions as F
from fnn._checks import check_floating, check_ndim
from fnn.layers.core import NO_PARAMS, Layer, Params

__all__ = ["attention", "attention_weight", "SumCache", "time_attention", "TimeCache", "weight_sum", "WeightCache"]

# --------------------------------------------------------------------------------------------
# Kernels on U queries at once: hs (N, T, H), q (N, U, H), a (N, U, T), context (N, U, H)
# --------------------------------------------------------------------------------------------


def _weights(hs: Array, q: Array) -> Array:
    """a = softmax(hs · q) over the T encoder steps, (N, U, T) (DLFS2 §8.1.4)."""
    return F.softmax(jnp.einsum("nuh,nth->nut", q, hs), axis=-1)


def _weights_backward(hs: Array, q: Array, a: Array, da: Array) -> tuple[Array, Array]:
    """(dhs, dq) of a = softmax(hs · q) (DLFS2 §8.1.4, AttentionWeight.backward).

    The book's Softmax layer backward, ``ds = a * da - a * sum(a * da)``; then the dot product's:
    s[n, t] = sum_h hs[n, t, h] q[n, h], so dhs = ds q (the book repeats ds over H and multiplies
    by the repeated h) and dq = sum_t ds hs (the book's ``np.sum(dt * hs, axis=1)``).
    """
    ds = a * (da - jnp.sum(a * da, axis=-1, keepdims=True))  # (N, U, T)
    return jnp.einsum("nut,nuh->nth", ds, q), jnp.einsum("nut,nth->nuh", ds, hs)


def _weighted_sum(hs: Array, a: Array) -> Array:
    """c = sum_t a_t hs_t, (N, U, H) (DLFS2 §8.1.3)."""
    return jnp.einsum("nut,nth->nuh", a, hs)


def _weighted_sum_backward(hs: Array, a: Array, dc: Array) -> tuple[Array, Array]:
    """(dhs, da) of c = sum_t a_t hs_t (DLFS2 §8.1.3, WeightSum.backward).

    The book repeats dc over T (the Sum node's backward) and multiplies: dhs = a dc (the repeated
    a, "ar"), da = sum_h dc hs (``np.sum(dt * hs, axis=2)``).
    """
    return jnp.einsum("nut,nuh->nth", a, dc), jnp.einsum("nuh,nth->nut", dc, hs)


def _attend(hs: Array, q: Array) -> tuple[Array, Array]:
    """(c, a): AttentionWeight then WeightSum (DLFS2 §8.1.5)."""
    a = _weights(hs, q)
    return _weighted_sum(hs, a), a


def _attend_backward(hs: Array, q: Array, a: Array, dc: Array) -> tuple[Array, Array]:
    """(dhs, dq): WeightSum's backward, then AttentionWeight's; hs feeds both, so its two
    gradients add (DLFS2 §8.1.5, Attention.backward: ``dhs = dhs0 + dhs1``)."""
    dhs0, da = _weighted_sum_backward(hs, a, dc)
    dhs1, dq = _weights_backward(hs, q, a, da)
    return dhs0 + dhs1, dq


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_hs(fn: str, name: str, hs: Array) -> None:
    check_ndim(fn, name, hs, 3, "(N, T, H)")
    check_floating(fn, name, hs)
    if hs.shape[1] == 0:
        raise ValueError(f"{fn}: {name} has shape {tuple(hs.shape)}, expected T >= 1 time steps to attend to")


def _check_query(fn: str, name: str, q: Array, hs: Array, ndim: int) -> None:
    """q is (N, H) (ndim 2) or (N, T_dec, H) (ndim 3), with hs's N and H."""
    N, _, H = hs.shape
    what = "(N, H)" if ndim == 2 else "(N, T_dec, H)"
    check_ndim(fn, name, q, ndim, what)
    if q.shape[0] != N or q.shape[-1] != H:
        want = f"({N}, {H})" if ndim == 2 else f"({N}, T_dec, {H})"
        raise ValueError(f"{fn}: {name} has shape {tuple(q.shape)}, expected {want} to match hs of "
                         f"shape {tuple(hs.shape)}")


def _check_dout(fn: str, name: str, dout: Array, shape: tuple[int, ...]) -> None:
    if tuple(dout.shape) != tuple(shape):
        raise ValueError(f"{fn}: {name} has shape {tuple(dout.shape)}, expected {tuple(shape)} (the forward's output)")


# --------------------------------------------------------------------------------------------
# AttentionWeight (DLFS2 §8.1.4)
# --------------------------------------------------------------------------------------------


class WeightCache(NamedTuple):
    """What `attention_weight` and `attention` remember: their inputs and the weights."""

    hs: Array  # (N, T, H) encoder states
    h: Array   # (N, H) decoder state, the query
    a: Array   # (N, T) attention weights


def _attention_weight_forward(params: Params, hs: Array, h: Array):
    """a = softmax_t(hs_t · h): hs (N, T, H), h (N, H) -> a (N, T) (DLFS2 §8.1.4, AttentionWeight)."""
    _check_hs("attention_weight.forward", "hs", hs)
    _check_query("attention_weight.forward", "h", h, hs, 2)
    a = _weights(hs, h[:, None, :])[:, 0]
    return a, WeightCache(hs, h, a)


def _attention_weight_backward(params: Params, cache: WeightCache, da: Array):
    """ds = a (da - sum_t a da), dhs = ds h, dh = sum_t ds hs (DLFS2 §8.1.4)."""
    _check_dout("attention_weight.backward", "da", da, cache.a.shape)
    dhs, dh = _weights_backward(cache.hs, cache.h[:, None, :], cache.a[:, None, :], da[:, None, :])
    return NO_PARAMS, (dhs, dh[:, 0])


# forward(params, hs, h) -> (a (N, T), WeightCache); backward(params, cache, da) -> ({}, (dhs, dh)).
attention_weight = Layer(_attention_weight_forward, _attention_weight_backward)


# --------------------------------------------------------------------------------------------
# WeightSum (DLFS2 §8.1.3)
# --------------------------------------------------------------------------------------------


class SumCache(NamedTuple):
    """What `weight_sum` remembers: its two inputs."""

    hs: Array  # (N, T, H) encoder states
    a: Array   # (N, T) weights


def _weight_sum_forward(params: Params, hs: Array, a: Array):
    """c = sum_t a_t hs_t: hs (N, T, H), a (N, T) -> c (N, H) (DLFS2 §8.1.3, WeightSum)."""
    fn = "weight_sum.forward"
    _check_hs(fn, "hs", hs)
    check_ndim(fn, "a", a, 2, "(N, T)")
    if tuple(a.shape) != tuple(hs.shape[:2]):
        raise ValueError(f"{fn}: a has shape {tuple(a.shape)}, expected {tuple(hs.shape[:2])} to match hs "
                         f"of shape {tuple(hs.shape)}")
    return _weighted_sum(hs, a[:, None, :])[:, 0], SumCache(hs, a)


def _weight_sum_backward(params: Params, cache: SumCache, dc: Array):
    """dhs = a dc, da = sum_h dc hs (DLFS2 §8.1.3)."""
    _check_dout("weight_sum.backward", "dc", dc, cache.hs.shape[::2])
    dhs, da = _weighted_sum_backward(cache.hs, cache.a[:, None, :], dc[:, None, :])
    return NO_PARAMS, (dhs, da[:, 0])


# forward(params, hs, a) -> (c (N, H), SumCache); backward(params, cache, dc) -> ({}, (dhs, da)).
weight_sum = Layer(_weight_sum_forward, _weight_sum_backward)


# --------------------------------------------------------------------------------------------
# Attention = AttentionWeight + WeightSum (DLFS2 §8.1.5)
# --------------------------------------------------------------------------------------------


def _attention_forward(params: Params, hs: Array, h: Array):
    """c = sum_t softmax_t(hs_t · h) hs_t: hs (N, T, H), h (N, H) -> c (N, H) (DLFS2 §8.1.5, Attention).

    The cache is a `WeightCache`; its ``a`` is the book's ``attention_weight``.
    """
    _check_hs("attention.forward", "hs", hs)
    _check_query("attention.forward", "h", h, hs, 2)
    c, a = _attend(hs, h[:, None, :])
    return c[:, 0], WeightCache(hs, h, a[:, 0])


def _attention_backward(params: Params, cache: WeightCache, dc: Array):
    """dhs = WeightSum's dhs + AttentionWeight's dhs; dh from AttentionWeight (DLFS2 §8.1.5)."""
    _check_dout("attention.backward", "dc", dc, cache.h.shape)
    dhs, dh = _attend_backward(cache.hs, cache.h[:, None, :], cache.a[:, None, :], dc[:, None, :])
    return NO_PARAMS, (dhs, dh[:, 0])


# forward(params, hs, h) -> (c (N, H), WeightCache); backward(params, cache, dc) -> ({}, (dhs, dh)).
attention = Layer(_attention_forward, _attention_backward)


# --------------------------------------------------------------------------------------------
# TimeAttention: every decoder step at once (DLFS2 §8.1.5)
# --------------------------------------------------------------------------------------------


class TimeCache(NamedTuple):
    """What `time_attention` remembers; ``a`` is the attention map of DLFS2 §8.3.3."""

    hs_enc: Array  # (N, T_enc, H)
    hs_dec: Array  # (N, T_dec, H)
    a: Array       # (N, T_dec, T_enc): row u = the weights decoder step u gives the encoder steps


def _time_attention_forward(params: Params, hs_enc: Array, hs_dec: Array):
    """Attention for each decoder step: hs_enc (N, T_enc, H), hs_dec (N, T_dec, H) -> (N, T_dec, H)
    (DLFS2 §8.1.5, TimeAttention).

    out[:, u] = attention(hs_enc, hs_dec[:, u]), all T_dec steps in two batched matmuls. The
    cache's ``a`` (N, T_dec, T_enc) is the book's ``attention_weights`` stacked on axis 1.
    """
    _check_hs("time_attention.forward", "hs_enc", hs_enc)
    _check_query("time_attention.forward", "hs_dec", hs_dec, hs_enc, 3)
    c, a = _attend(hs_enc, hs_dec)
    return c, TimeCache(hs_enc, hs_dec, a)


def _time_attention_backward(params: Params, cache: TimeCache, dout: Array):
    """dhs_enc = sum over the decoder steps of each step's dhs; dhs_dec[:, u] = step u's dh
    (DLFS2 §8.1.5, TimeAttention.backward)."""
    _check_dout("time_attention.backward", "dout", dout, cache.hs_dec.shape)
    return NO_PARAMS, _attend_backward(cache.hs_enc, cache.hs_dec, cache.a, dout)


# forward(params, hs_enc, hs_dec) -> (out (N, T_dec, H), TimeCache);
# backward(params, cache, dout) -> ({}, (dhs_enc, dhs_dec)).
time_attention = Layer(_time_attention_forward, _time_attention_backward)

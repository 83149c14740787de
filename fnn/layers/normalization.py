"""Batch normalization (DLFS1 §6.3; the book's ``BatchNormalization`` in ``common/layers.py``).

Training mode normalises every feature with the statistics of the mini-batch and updates the
running statistics; evaluation mode normalises with the running statistics (DLFS1 §6.3.1)::

    mu  = mean_n x            var = mean_n (x - mu)^2          (training: the batch's)
    xn  = (x - mu) / sqrt(var + eps)
    y   = gamma * xn + beta
    running_mean <- momentum * running_mean + (1 - momentum) * mu
    running_var  <- momentum * running_var  + (1 - momentum) * var

Shapes: N batch, D features. x is (N, D), or (N, C, H, W) flattened to (N, C*H*W) as the book does
(so a convolution output is normalised per position and channel, not per channel). ``params`` is
``{"gamma": (D,), "beta": (D,)}``; ``state`` is ``{"running_mean": (D,), "running_var": (D,)}``,
zeros at the start as in the book (`init_state`).

State is explicit: the running statistics are never stored on an object. `forward` keeps the Layer
contract ``(y, cache)`` and the updated statistics travel in the cache, ``cache.state`` (in
evaluation mode the state passed in, unchanged); a model hands ``cache.state`` back as its new
state.

Conventions kept from the book: ``momentum=0.9``; ``eps=1e-6`` (the book writes ``10e-7``, which
is 1e-6, not 1e-7); the variance is the biased batch variance (divided by N) in both the
normalisation and the running average (the paper, and PyTorch, use the unbiased one for the
running average).

References:
  S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
  Internal Covariate Shift", ICML 2015 (arXiv:1502.03167).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from fnn.layers.core import Layer, Params

__all__ = ["EPS", "MOMENTUM", "batch_norm", "BatchNormCache", "init_params", "init_state"]

MOMENTUM = 0.9
EPS = 1e-6  # the book's 10e-7


class BatchNormCache(NamedTuple):
    """What `batch_norm.forward` hands to `backward`; ``state`` is the new running statistics."""

    xc: Array | None  # (N, D) x - mu in training mode; None in evaluation mode (constant stats)
    xn: Array         # (N, D) normalised input
    std: Array        # (D,) sqrt(var + eps)
    state: dict       # {"running_mean": (D,), "running_var": (D,)} after this forward


def init_params(D: int, dtype=jnp.float32) -> Params:
    """gamma = 1, beta = 0, both (D,): batch norm starts as the identity scale and shift (DLFS1 §6.3.1;
    ``MultiLayerNetExtend.__init__``)."""
    return {"gamma": jnp.ones((D,), dtype), "beta": jnp.zeros((D,), dtype)}


def init_state(D: int, dtype=jnp.float32) -> dict:
    """Running mean and variance, both zeros (D,) as in the book (DLFS1 §6.3.1; the first eval before any
    training step therefore divides by sqrt(eps))."""
    return {"running_mean": jnp.zeros((D,), dtype), "running_var": jnp.zeros((D,), dtype)}


def _check(params: Params, x: Array, state: dict | None) -> int:
    if x.ndim not in (2, 4):
        raise ValueError(f"batch_norm.forward: x needs rank 2 (N, D) or 4 (N, C, H, W), but has "
                         f"shape {tuple(x.shape)}")
    D = 1
    for s in x.shape[1:]:
        D *= s
    for name, tree in (("params", params), ("state", state)):
        if tree is None:
            raise ValueError("batch_norm.forward: state is None, expected {'running_mean': (D,), "
                             "'running_var': (D,)} (see init_state)")
        for k, v in tree.items():
            if tuple(v.shape) != (D,):
                raise ValueError(f"batch_norm.forward: {name}[{k!r}] has shape {tuple(v.shape)}, "
                                 f"expected ({D},) (the features of x {tuple(x.shape)})")
    return D


def _batch_norm_forward(params: Params, x: Array, *, state: dict, train: bool = True,
                        momentum: float = MOMENTUM, eps: float = EPS):
    """y = gamma * xn + beta, x (N, D) or (N, C, H, W); y has x's shape (DLFS1 §6.3.1).

    ``train=True`` normalises with the batch statistics and updates the running ones (their new
    value is ``cache.state``); ``train=False`` uses the running statistics and leaves them as they
    are.
    """
    _check(params, x, state)
    x2 = x.reshape(x.shape[0], -1)  # (N, D)
    if train:
        mu = jnp.mean(x2, axis=0)                        # (D,)
        xc = x2 - mu[None, :]                            # (N, D)
        var = jnp.mean(xc * xc, axis=0)                  # (D,)
        new_state = {
            "running_mean": momentum * state["running_mean"] + (1 - momentum) * mu,
            "running_var": momentum * state["running_var"] + (1 - momentum) * var}
    else:
        xc = x2 - state["running_mean"][None, :]
        var = state["running_var"]
        new_state = state
    std = jnp.sqrt(var + eps)                            # (D,)
    xn = xc / std[None, :]
    y = params["gamma"][None, :] * xn + params["beta"][None, :]
    return y.reshape(x.shape), BatchNormCache(xc if train else None, xn, std, new_state)


def _batch_norm_backward(params: Params, cache: BatchNormCache, dout: Array):
    """The book's backward through the computational graph of Figure 6-17 (DLFS1 §6.3.1).

    Training mode (mu and var depend on x)::

        dbeta = sum_n dout               dgamma = sum_n xn * dout
        dxn   = gamma * dout             dxc    = dxn / std
        dstd  = -sum_n dxn * xc / std^2  dvar   = 0.5 * dstd / std
        dxc  += (2 / N) * xc * dvar      dmu    = sum_n dxc
        dx    = dxc - dmu / N

    Evaluation mode (running statistics are constants): dx = gamma * dout / std.
    dout has x's shape; dx comes back in it.
    """
    xc, xn, std = cache.xc, cache.xn, cache.std
    N = xn.shape[0]
    dout2 = dout.reshape(N, -1)  # (N, D)
    gamma = params["gamma"][None, :]
    grads = {"gamma": jnp.sum(xn * dout2, axis=0), "beta": jnp.sum(dout2, axis=0)}
    dxn = gamma * dout2
    dxc = dxn / std[None, :]
    if xc is not None:  # training mode
        dstd = -jnp.sum(dxn * xc / (std * std)[None, :], axis=0)   # (D,)
        dvar = 0.5 * dstd / std
        dxc = dxc + (2.0 / N) * xc * dvar[None, :]
        dmu = jnp.sum(dxc, axis=0)
        dxc = dxc - dmu[None, :] / N
    return grads, dxc.reshape(dout.shape)


# forward(params, x, *, state, train=True, momentum=0.9, eps=1e-6) -> (y, cache);
# backward(params, cache, dout) -> ({"gamma", "beta"}, dx). New running statistics: ``cache.state``.
batch_norm = Layer(_batch_norm_forward, _batch_norm_backward)

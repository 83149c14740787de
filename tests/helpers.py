"""Checks every layer's test runs: the forward/backward contract against `jax.vjp` and a numerical gradient.

`check_layer(layer, params, x)` draws a random upstream gradient ``dout`` and proves, in float64,

* the hand-written ``backward`` equals ``jax.vjp`` of ``forward`` (max relative error < 1e-7 a leaf),
* both equal the central-difference gradient of ``sum(forward(params, x) * dout)`` (< 1e-5),
* ``dx`` has the shape of ``x`` and ``grads`` the structure and shapes of ``params``,

with the forward and backward passes run eagerly or under `jax.jit` (``jit=True``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fnn.gradient import max_error, numerical_gradient, relative_error

AUTODIFF_TOL = 1e-7
NUMERICAL_TOL = 1e-5


def check_layer(layer, params, x, *, dout_key=None, jit=False, h=1e-5, **kwargs):
    """Run the three-way check on `layer` at (params, x); kwargs go to forward. Returns the errors."""
    forward = functools.partial(layer.forward, **kwargs)
    backward = layer.backward
    if jit:
        forward, backward = jax.jit(forward), jax.jit(backward)
    y, cache = forward(params, x)
    dout = jax.random.normal(dout_key if dout_key is not None else jax.random.key(42), y.shape, y.dtype)
    grads, dx = backward(params, cache, dout)

    assert dx.shape == x.shape, f"dx has shape {dx.shape}, x has {x.shape}"
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    for g, p in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(params), strict=True):
        assert g.shape == p.shape

    def scalar(p_x):
        return jnp.sum(layer.forward(p_x[0], p_x[1], **kwargs)[0] * dout)

    _, vjp = jax.vjp(lambda p, xx: layer.forward(p, xx, **kwargs)[0], params, x)
    auto = vjp(dout)
    num = numerical_gradient(scalar, (params, x), h)
    errors = {"autodiff": max_error(relative_error((grads, dx), auto)),
              "numerical": max_error(relative_error((grads, dx), num))}
    assert errors["autodiff"] < AUTODIFF_TOL, errors
    assert errors["numerical"] < NUMERICAL_TOL, errors
    return errors

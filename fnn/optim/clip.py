"""Gradient clipping by the global norm, DLFS2 §6.1.4 (the book's ``clip_grads``)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from fnn.optim.transforms import _value

__all__ = ["clip_by_global_norm", "global_norm"]


def global_norm(tree: Any) -> jax.Array:
    """``sqrt(sum of x**2 over every element of every leaf)``, a scalar: the L2 norm that gradient
    clipping compares with its threshold (DLFS2 §6.1.4)."""
    return jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(tree)))


def clip_by_global_norm(max_norm: float):
    """Scale all gradients by one factor so that their global norm is about `max_norm` at most.

    DLFS2 §6.1.4 (``common/util.py``'s ``clip_grads``), with ``total_norm = global_norm(dW)``::

        rate = max_norm / (total_norm + 1e-6)
        if rate < 1:  dW <- rate * dW          (every leaf, the same rate)

    The ``1e-6`` guards against division by zero. Because of it the book clips slightly
    early and slightly too much: clipped gradients have norm ``max_norm * total_norm /
    (total_norm + 1e-6)``, just under `max_norm`. ``optax.clip_by_global_norm`` clips only
    when ``total_norm >= max_norm`` and scales to exactly `max_norm`; the two differ by a
    relative ``1e-6 / (total_norm + 1e-6)`` on clipped gradients (measured in
    ``tests/optim/test_alias.py::test_clip_vs_optax``: 1.0e-6 relative at total_norm = 1)
    and not at all on gradients with ``total_norm + 1e-6 <= max_norm``.

    Args:
      max_norm: the largest global norm let through, a finite number > 0.

    References:
      Pascanu, Mikolov and Bengio, "On the difficulty of training recurrent neural
      networks", ICML 2013 (arXiv:1211.5063).
    """
    v = _value("clip_by_global_norm", "max_norm", max_norm)
    if v is not None and not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"clip_by_global_norm: max_norm must be a finite number > 0, got {v!r}")

    def update(updates, state, params=None):
        del params
        rate = max_norm / (global_norm(updates) + 1e-6)
        scale = jnp.where(rate < 1, rate, 1.0)  # (), the same for every leaf
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), state

    return optax.GradientTransformation(optax.init_empty_state, update)

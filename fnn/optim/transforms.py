"""Small composable optimizer pieces, optax style: one transform per idea.

Each function returns an ``optax.GradientTransformation``: ``init(params) -> state`` and
``update(grads, state, params=None) -> (updates, state)``, for any pytree of arrays, under
``jax.jit`` and ``jax.vmap``. The aliases in :mod:`fnn.optim.alias` chain these pieces with
:func:`scale_by_learning_rate`; each update rule is written once, in its alias's docstring,
with the book section and the paper.

Sign convention (optax's): ``updates`` are *added* to the parameters
(``optax.apply_updates``), so :func:`scale_by_learning_rate` multiplies by ``-lr``. The pieces
that come *after* it in a chain (:func:`scale_by_momentum`, :func:`scale_by_book_nesterov`)
receive ``-lr * dW`` and keep the book's velocity ``v``, which points downhill. The pieces that
come *before* it (AdaGrad, RMSprop, Adam, AdaDelta) turn ``dW`` into a step direction.

State fields marked ``# like params`` are pytrees with the structure, shapes and dtypes of
``params``. Updates keep the dtype of the incoming gradient leaf.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fnn._checks import concrete

__all__ = [
    "AdaDeltaState",
    "AdaGradState",
    "BookAdamState",
    "BookNesterovState",
    "MomentumState",
    "RMSpropState",
    "ScaleByLearningRateState",
    "check_eps",
    "check_learning_rate",
    "check_unit_interval",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_book_adam",
    "scale_by_book_nesterov",
    "scale_by_learning_rate",
    "scale_by_momentum",
    "scale_by_rmsprop",
]


# ------------------------------------------------------------------ argument checks
# Hyper-parameters are checked when they are concrete numbers. Under jit/vmap they may be
# tracers (e.g. vmap over K learning rates); those are only checked for being scalars.


def _value(fn: str, name: str, x: Any) -> float | None:
    """`x` as a Python float, or None when it is traced; ValueError unless a real scalar."""
    value = None if isinstance(x, (bool, str)) else concrete(x)
    if value is None and isinstance(x, jax.core.Tracer) and jnp.ndim(x) == 0:
        return None  # a tracer (jit/vmap): checked where it was concrete
    real = value is not None and value.dtype.kind in "iuf"  # int, unsigned or float
    if not real or value.ndim != 0:
        raise ValueError(f"{fn}: {name} must be a real scalar, got {x!r}")
    return float(value)


def check_learning_rate(fn: str, learning_rate: Any) -> None:
    """A finite number >= 0, or a schedule (a callable of the step count)."""
    if callable(learning_rate):
        return
    v = _value(fn, "learning_rate", learning_rate)
    if v is not None and not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{fn}: learning_rate must be a finite number >= 0 or an optax schedule, got {v!r}")


def check_unit_interval(fn: str, name: str, x: Any) -> None:
    """A number in [0, 1): momentum, decay rates, Adam's betas, AdaDelta's rho."""
    v = _value(fn, name, x)
    if v is not None and not 0.0 <= v < 1.0:
        raise ValueError(f"{fn}: {name} must be in [0, 1), got {v!r}")


def check_eps(fn: str, x: Any, *, positive: bool = False) -> None:
    """A finite eps >= 0 (> 0 where `positive`)."""
    v = _value(fn, "eps", x)
    ok = v is None or (math.isfinite(v) and (v > 0.0 if positive else v >= 0.0))
    if not ok:
        expected = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"{fn}: eps must be {expected}, got {v!r}")


def _cast(x: Any, like: jax.Array) -> jax.Array:
    """A scalar hyper-parameter (float, schedule output or tracer) in `like`'s dtype."""
    return jnp.asarray(x).astype(like.dtype)


# ------------------------------------------------------------------ learning rate


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # (), int32: steps taken so far; a schedule is called with it


def scale_by_learning_rate(learning_rate: Any, *, flip_sign: bool = True):
    """Multiply the updates by ``-learning_rate`` (by ``+learning_rate`` if not `flip_sign`): the
    ``- lr * dW`` of SGD, W <- W - lr dW (DLFS1 §6.1.2).

    `learning_rate` is a number or an optax schedule ``step -> lr``, called with the number
    of steps already taken (0 at the first step) as an int32 array, as in
    ``optax.scale_by_learning_rate``; optax's own schedules then compute in float32 even
    with ``jax_enable_x64``.
    """
    check_learning_rate("scale_by_learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def init(params):
        del params
        return ScaleByLearningRateState(count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        del params
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        updates = jax.tree.map(lambda u: u * _cast(sign * lr, u), updates)
        return updates, ScaleByLearningRateState(count=state.count + 1)

    return optax.GradientTransformation(init, update)


# ------------------------------------------------------------------ momentum (after the lr)


class MomentumState(NamedTuple):
    v: Any  # like params: the velocity, v <- momentum * v - lr * dW


def scale_by_momentum(momentum: float = 0.9):
    """The book's velocity: ``v <- momentum * v + u`` with ``u = -lr * dW``; returns ``v`` (DLFS1 §6.1.4).

    Goes *after* :func:`scale_by_learning_rate` (see :func:`fnn.optim.momentum`).
    """
    check_unit_interval("scale_by_momentum", "momentum", momentum)

    def init(params):
        return MomentumState(v=jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params
        v = jax.tree.map(lambda v, u: _cast(momentum, u) * v + u, state.v, updates)
        return v, MomentumState(v=v)

    return optax.GradientTransformation(init, update)


class BookNesterovState(NamedTuple):
    v: Any  # like params: the velocity, v <- momentum * v - lr * dW


def scale_by_book_nesterov(momentum: float = 0.9):
    """The book's Nesterov step ``momentum**2 * v + (1 + momentum) * u`` with the velocity ``v``
    from *before* this step, then ``v <- momentum * v + u``; ``u = -lr * dW`` (DLFS1 §6.1.4, the
    book's ``common/optimizer.py``).

    Goes *after* :func:`scale_by_learning_rate` (see :func:`fnn.optim.nesterov`).
    """
    check_unit_interval("scale_by_book_nesterov", "momentum", momentum)

    def init(params):
        return BookNesterovState(v=jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params

        def step(v, u):  # the old v, as the book's code since its January 2021 fix
            m = _cast(momentum, u)
            return m * m * v + (1 + m) * u

        steps = jax.tree.map(step, state.v, updates)
        v = jax.tree.map(lambda v, u: _cast(momentum, u) * v + u, state.v, updates)
        return steps, BookNesterovState(v=v)

    return optax.GradientTransformation(init, update)


# ------------------------------------------------------------------ adaptive (before the lr)


class AdaGradState(NamedTuple):
    h: Any  # like params: sum of dW * dW over all steps, starts at 0


def scale_by_adagrad(eps: float = 1e-7):
    """``h <- h + dW * dW``; returns ``dW / (sqrt(h) + eps)`` (DLFS1 §6.1.5; see :func:`fnn.optim.adagrad`)."""
    check_eps("scale_by_adagrad", eps)

    def init(params):
        return AdaGradState(h=jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params
        h = jax.tree.map(lambda h, g: h + g * g, state.h, updates)
        updates = jax.tree.map(lambda g, h: g / (jnp.sqrt(h) + _cast(eps, g)), updates, h)
        return updates, AdaGradState(h=h)

    return optax.GradientTransformation(init, update)


class RMSpropState(NamedTuple):
    h: Any  # like params: moving average of dW * dW, starts at 0


def scale_by_rmsprop(decay_rate: float = 0.99, eps: float = 1e-7):
    """``h <- decay_rate * h + (1 - decay_rate) * dW * dW``; returns ``dW / (sqrt(h) + eps)`` (DLFS1 §6.1.5).

    See :func:`fnn.optim.rmsprop`.
    """
    check_unit_interval("scale_by_rmsprop", "decay_rate", decay_rate)
    check_eps("scale_by_rmsprop", eps)

    def init(params):
        return RMSpropState(h=jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params

        def average(h, g):
            rho = _cast(decay_rate, g)
            return rho * h + (1 - rho) * g * g

        h = jax.tree.map(average, state.h, updates)
        updates = jax.tree.map(lambda g, h: g / (jnp.sqrt(h) + _cast(eps, g)), updates, h)
        return updates, RMSpropState(h=h)

    return optax.GradientTransformation(init, update)


class BookAdamState(NamedTuple):
    count: jax.Array  # (), int32: the book's `iter`, steps taken so far
    m: Any  # like params: moving average of dW (not bias-corrected)
    v: Any  # like params: moving average of dW * dW (not bias-corrected)


def scale_by_book_adam(beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7):
    """The book's Adam direction ``sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)`` (DLFS1 §6.1.6).

    The bias correction is one scalar factor (the book's ``lr_t / lr``); `m` and `v` are
    kept uncorrected. See :func:`fnn.optim.adam`.
    """
    fn = "scale_by_book_adam"
    check_unit_interval(fn, "beta1", beta1)
    check_unit_interval(fn, "beta2", beta2)
    check_eps(fn, eps)

    def init(params):
        m = jax.tree.map(jnp.zeros_like, params)
        v = jax.tree.map(jnp.zeros_like, params)
        return BookAdamState(count=jnp.zeros((), jnp.int32), m=m, v=v)

    def update(updates, state, params=None):
        del params
        count = state.count + 1
        t = count.astype(jnp.result_type(float))

        def moment(beta, old, new):  # old += (1 - beta) * (new - old), the book's form
            return old + (1 - _cast(beta, new)) * (new - old)

        m = jax.tree.map(lambda m, g: moment(beta1, m, g), state.m, updates)
        v = jax.tree.map(lambda v, g: moment(beta2, v, g * g), state.v, updates)
        factor = jnp.sqrt(1 - jnp.asarray(beta2) ** t) / (1 - jnp.asarray(beta1) ** t)
        updates = jax.tree.map(lambda m, v: _cast(factor, m) * m / (jnp.sqrt(v) + _cast(eps, m)), m, v)
        return updates, BookAdamState(count=count, m=m, v=v)

    return optax.GradientTransformation(init, update)


class AdaDeltaState(NamedTuple):
    e_g2: Any  # like params: E[g^2], moving average of squared gradients, starts at 0
    e_dx2: Any  # like params: E[dx^2], moving average of squared steps, starts at 0


def scale_by_adadelta(rho: float = 0.95, eps: float = 1e-6):
    """Zeiler's step ``dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g`` (sign: uphill).

    ``E[dx^2]`` averages this unscaled step, as in optax. See :func:`fnn.optim.adadelta`.
    """
    fn = "scale_by_adadelta"
    check_unit_interval(fn, "rho", rho)
    check_eps(fn, eps, positive=True)

    def init(params):
        e_g2 = jax.tree.map(jnp.zeros_like, params)
        e_dx2 = jax.tree.map(jnp.zeros_like, params)
        return AdaDeltaState(e_g2=e_g2, e_dx2=e_dx2)

    def update(updates, state, params=None):
        del params

        def average(e, x2):
            r = _cast(rho, x2)
            return r * e + (1 - r) * x2

        e_g2 = jax.tree.map(lambda e, g: average(e, g * g), state.e_g2, updates)
        dx = jax.tree.map(
            lambda g, eg, ex: jnp.sqrt(ex + _cast(eps, g)) / jnp.sqrt(eg + _cast(eps, g)) * g,
            updates,
            e_g2,
            state.e_dx2,
        )
        e_dx2 = jax.tree.map(lambda e, d: average(e, d * d), state.e_dx2, dx)
        return dx, AdaDeltaState(e_g2=e_g2, e_dx2=e_dx2)

    return optax.GradientTransformation(init, update)

"""Activation and loss functions (DLFS1 chapters 3–4, the ML basics of linear/logistic regression).

Shapes: ``x`` is any array; scores ``(N, C)`` or ``(C,)``; labels ``t`` are integer class indices of
shape ``(N,)`` / ``()`` or one-hot ``(N, C)`` / ``(C,)``.

Every function is a plain `jax.numpy` expression: `jax.grad`, `jit` and `vmap` apply directly.
Where the book's NumPy form is numerically unstable (softmax of large scores, log of 0) we use the
algebraically equal stable form and say so in the docstring.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from fnn._checks import check_labels

__all__ = [
    "ACTIVATIONS", "accuracy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "cross_entropy_error", "get_activation", "identity", "leaky_relu", "log_softmax", "mean_squared_error", "relu",
    "sigmoid", "softmax", "squared_loss", "step_function", "tanh",
]

# --------------------------------------------------------------------------------------------
# Activations (DLFS1 §3.2)
# --------------------------------------------------------------------------------------------


def step_function(x: Array) -> Array:
    """Step function h(x) = 1 if x > 0 else 0 (DLFS1 §3.2.2), in the dtype of `x`."""
    return (x > 0).astype(jnp.result_type(x, jnp.float32))


def sigmoid(x: Array) -> Array:
    """Sigmoid h(x) = 1 / (1 + exp(-x)) (DLFS1 §3.2.4).

    Computed as (tanh(x/2) + 1) / 2, the same function without overflow of exp(-x) for x << 0.
    """
    return 0.5 * (jnp.tanh(0.5 * x) + 1.0)


def tanh(x: Array) -> Array:
    """Hyperbolic tangent, (exp(x) - exp(-x)) / (exp(x) + exp(-x)) (DLFS2 §5.3.1, the RNN's activation)."""
    return jnp.tanh(x)


def relu(x: Array) -> Array:
    """ReLU h(x) = max(0, x) (DLFS1 §3.2.7)."""
    return jnp.maximum(x, 0)


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """Leaky ReLU h(x) = x if x > 0 else alpha * x (DLFS1 §3.2.7 notes; Maas et al. 2013)."""
    return jnp.where(x > 0, x, alpha * x)


def identity(x: Array) -> Array:
    """Identity h(x) = x, the output activation for regression (DLFS1 §3.5)."""
    return x


def softmax(x: Array, axis: int = -1) -> Array:
    """Softmax y_k = exp(a_k) / sum_i exp(a_i) (DLFS1 §3.5.1–3.5.2).

    The maximum is subtracted first (DLFS1 §3.5.2): equal values, no overflow.
    """
    e = jnp.exp(x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True)))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Array, axis: int = -1) -> Array:
    """log(softmax(x)) = a_k - max(a) - log sum_i exp(a_i - max(a)), stable for any scores (DLFS1 §3.5.2).

    The shift by max(a) does not change the value, so no gradient flows through it
    (`stop_gradient`): the same derivative, and autodiff skips the arg-max scatter.
    """
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "leaky_relu": leaky_relu,
               "identity": identity, "step": step_function}


def get_activation(name: str):
    """The activation function called `name` (one of `ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"get_activation: activation is {name!r}, expected one of "
                         f"{sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


# --------------------------------------------------------------------------------------------
# Losses (DLFS1 §4.2; the ML basics' squared loss and binary cross-entropy)
# --------------------------------------------------------------------------------------------


def mean_squared_error(y: Array, t: Array) -> Array:
    """E = 1/2 sum_k (y_k - t_k)^2 (DLFS1 §4.2.1, equation 4.1).

    The book's name: it *sums* over every element (batch included), it does not average.
    For the averaged form used in linear regression see `squared_loss`.
    """
    _same_shape("mean_squared_error", y, t)
    return 0.5 * jnp.sum((y - t) ** 2)


def squared_loss(y: Array, t: Array) -> Array:
    """E = 1/(2n) sum_i (y_i - t_i)^2, the squared loss of linear regression (the seeds' ML basics)."""
    _same_shape("squared_loss", y, t)
    return 0.5 * jnp.mean((y - t) ** 2)


def cross_entropy_error(y: Array, t: Array, delta: float = 1e-7) -> Array:
    """E = -1/N sum_n sum_k t_nk log(y_nk + delta), on *probabilities* y (DLFS1 §4.2.2–4.2.4).

    The book's form, kept as written: `delta` keeps log(0) finite. `t` is one-hot (same shape as
    `y`) or integer labels (shape ``y.shape[:-1]``). A 1-D `y` is one sample (N = 1).
    For scores (logits) use `cross_entropy`, which is exact and stable.
    """
    y2, t2 = (y[None], jnp.asarray(t)[None]) if y.ndim == 1 else (y, t)  # one sample -> N = 1
    one_hot = check_labels("cross_entropy_error", t2, y2)
    N = y2.shape[0]
    if one_hot:
        return -jnp.sum(t2 * jnp.log(y2 + delta)) / N
    picked = jnp.take_along_axis(y2, t2[:, None], axis=-1)
    return -jnp.sum(jnp.log(picked + delta)) / N


def cross_entropy(scores: Array, t: Array) -> Array:
    """E = -1/N sum_n log softmax(a_n)[t_n], softmax and cross-entropy in one (DLFS1 §4.2.4, §5.6.3).

    `scores` (N, C) or (..., C): every leading axis is a sample axis (a sequence model's (N, T, C)
    averages over N*T). `t` integer labels of shape ``scores.shape[:-1]`` or one-hot of
    ``scores.shape``. Uses `log_softmax`, so it equals the book's
    ``cross_entropy_error(softmax(a), t)`` without its `delta` bias and never overflows.
    """
    one_hot = check_labels("cross_entropy", t, scores)
    logp = log_softmax(scores)
    if one_hot:
        return -jnp.sum(t * logp) / (logp.size // logp.shape[-1])
    return -jnp.mean(jnp.take_along_axis(logp, t[..., None], axis=-1))


def binary_cross_entropy(y: Array, t: Array, delta: float = 1e-7) -> Array:
    """E = -1/N sum_n [t_n log(y_n + delta) + (1 - t_n) log(1 - y_n + delta)] on probabilities y
    (logistic regression, the seeds' ML basics)."""
    _same_shape("binary_cross_entropy", y, t)
    return -jnp.mean(t * jnp.log(y + delta) + (1 - t) * jnp.log(1 - y + delta))


def binary_cross_entropy_with_logits(z: Array, t: Array) -> Array:
    """The binary cross-entropy of y = sigmoid(z), as mean(softplus(z) - t z): exact and stable for any z."""
    _same_shape("binary_cross_entropy_with_logits", z, t)
    return jnp.mean(jnp.logaddexp(0.0, z) - t * z)


def accuracy(scores: Array, t: Array) -> Array:
    """Fraction of samples whose arg-max score is the label (DLFS1 §3.6.2); `t` indices or one-hot."""
    one_hot = check_labels("accuracy", t, scores)
    labels = jnp.argmax(t, axis=-1) if one_hot else t
    return jnp.mean(jnp.argmax(scores, axis=-1) == labels)


def _same_shape(fn: str, y: Array, t: Array) -> None:
    if tuple(y.shape) != tuple(t.shape):
        raise ValueError(f"{fn}: t has shape {tuple(t.shape)}, expected the shape of y "
                         f"{tuple(y.shape)}")

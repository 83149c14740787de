"""Input checks shared by the whole library: one function per kind of check (base floor).

Private to fnn (the library's own argument checking, not API): every public function checks its
arguments with these, so that one kind of mistake gives one kind of message. Every message names
the function, the argument, what was expected and what was found::

    affine.forward: x has 785 features per sample (shape (2, 785)), expected 784 (W.shape[0])
    fit: batch_size is 0, expected a positive integer

Shape and dtype checks are static (shapes and dtypes are known while tracing), so they cost
nothing under `jit`. Value checks (labels in range) run only when the array is concrete, i.e. when
a function is called eagerly; inside `jit` they are skipped rather than forcing a host round trip.
Integer settings (batch sizes, epochs, ...) may be Python or NumPy integers (``np.int64(10)`` is a
batch size), never bools; the checks hand back a Python `int`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def concrete(x) -> np.ndarray | None:
    """`x` as a NumPy array when its value is known now, None while it is being traced."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def check_floating(fn: str, name: str, x) -> None:
    """Raise TypeError unless `x` has a floating dtype."""
    dtype = jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{fn}: {name} has dtype {dtype}, expected a floating dtype "
                        f"(float16/bfloat16/float32/float64)")


def check_ndim(fn: str, name: str, x, ndim: int | tuple[int, ...], what: str = "") -> None:
    """Raise ValueError unless `x.ndim` is `ndim` (or one of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        want = " or ".join(str(n) for n in allowed)
        hint = f" {what}" if what else ""
        raise ValueError(f"{fn}: {name} needs rank {want}{hint}, but has shape {tuple(x.shape)}")


def check_labels(fn: str, t, scores) -> bool:
    """Validate labels `t` against `scores` of shape (..., C); return True when `t` is one-hot.

    Accepted: integer class indices of shape ``scores.shape[:-1]`` with values in ``[0, C)``, or
    one-hot / probability targets of exactly ``scores.shape`` (DLFS1 §4.2.2 accepts both).
    """
    t_shape, s_shape = tuple(t.shape), tuple(scores.shape)
    if t_shape == s_shape:
        check_floating(fn, "t (one-hot)", t)
        return True
    if t_shape != s_shape[:-1]:
        raise ValueError(
            f"{fn}: t has shape {t_shape}, expected {s_shape[:-1]} (integer labels) or "
            f"{s_shape} (one-hot), to match the scores of shape {s_shape}")
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{fn}: t has dtype {t.dtype}; integer labels of shape {t_shape} "
                        f"need an integer dtype (one-hot labels need shape {s_shape})")
    values = concrete(t)
    if values is not None and values.size:
        lo, hi, C = int(values.min()), int(values.max()), s_shape[-1]
        if lo < 0 or hi >= C:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{fn}: t holds the label {bad}, expected labels in [0, {C - 1}] "
                             f"(scores have {C} classes)")
    return False


def check_nonempty(fn: str, name: str, x) -> None:
    """Raise ValueError when the batch axis of `x` is empty."""
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} is an empty batch (shape {tuple(x.shape)}), "
                         f"expected at least one sample")


def is_int(value) -> bool:
    """Is `value` a Python or NumPy integer (and not a bool, which Python counts as an int)?"""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(fn: str, name: str, value, minimum: int, *, expected: str | None = None) -> int:
    """`value` as a Python int; ValueError unless it is an integer >= `minimum` (`is_int`).

    The message ends in ``expected an integer >= minimum``, or in `expected` when given.
    """
    if not is_int(value) or value < minimum:
        raise ValueError(f"{fn}: {name} is {value!r}, expected {expected or f'an integer >= {minimum}'}")
    return int(value)


def check_positive_int(fn: str, name: str, value, *, or_none: bool = False) -> int | None:
    """`value` as a Python int; ValueError unless it is an integer >= 1 (or None, with `or_none`)."""
    if or_none and value is None:
        return None
    return check_int(fn, name, value, 1,
                     expected="a positive integer or None" if or_none else "a positive integer")


def check_data(fn: str, name: str, x, t, *, ids: bool = False) -> None:
    """Validate a data set (x, t): floating x with a sample axis, labels `t` with as many samples.
    ``ids=True``: x holds integer ids instead (the input of a model that embeds them, seq2seq)."""
    for arr, arg in ((x, f"{name} x"), (t, f"{name} t")):
        if not hasattr(arr, "shape"):
            raise TypeError(f"{fn}: {arg} is a {type(arr).__name__}, expected an array")
    if not ids:
        check_floating(fn, f"{name} x", x)
    elif not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{fn}: {name} x has dtype {x.dtype}, expected integer ids")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} x has shape {tuple(x.shape)}, expected (N, ...) with N >= 1")
    if t.shape[:1] != x.shape[:1]:
        raise ValueError(f"{fn}: {name} t has {t.shape[0] if t.ndim else 'no'} samples (shape "
                         f"{tuple(t.shape)}), expected {x.shape[0]} to match x {tuple(x.shape)}")

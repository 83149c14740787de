"""Input checks shared by the whole library: one function per kind of check (base floor).

Private to fnn (the library's own argument checking, not API): every public function checks its
arguments with these, so that one kind of mistake gives one kind of message. Every message names
the function, the argument, what was expected and what was found::

    affine.forward: x has 785 features per sample (shape (2, 785)), expected 784 (W.shape[0])
    fit: batch_size is 0, expected a positive integer

Shape and dtype checks are static (shapes and dtypes are known while tracing), so they cost
nothing under `jit`. Value checks (labels and ids in range, soft targets that are distributions,
finite data) run only when the array is concrete, i.e. when a function is called eagerly; inside
`jit` they are skipped rather than forcing a host round trip, and what JAX then does is its own:
an out-of-range gather is *clamped* (id 7 of a 5-word vocabulary reads row 4, id -1 reads row 4),
NaN flows through. So the drivers (`fit`, `fit_many`, `fit_lm`, `perplexity`, `generate`, the
evaluation `make_evaluate` returns) check their data once per call on the host, before anything is
cast or compiled, and the layers check what they are given eagerly. Values are checked in their own
dtype, before any cast: int64 labels of ``2**32 + 1`` are refused, not truncated to 1 by
`jnp.asarray`. Integer settings (batch sizes, epochs, ...) may be Python or NumPy integers
(``np.int64(10)`` is a batch size), never bools; the checks hand back a Python `int`.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np


class InputWarning(UserWarning):
    """Data that is legal but probably not what was meant (pixels 0..255 where [0, 1] is expected)."""


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
        check_distribution(fn, "t", t)
        return True
    if t_shape != s_shape[:-1]:
        raise ValueError(
            f"{fn}: t has shape {t_shape}, expected {s_shape[:-1]} (integer labels) or "
            f"{s_shape} (one-hot), to match the scores of shape {s_shape}")
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{fn}: t has dtype {t.dtype}; integer labels of shape {t_shape} "
                        f"need an integer dtype (one-hot labels need shape {s_shape})")
    check_ids(fn, "t", t, s_shape[-1], what="labels", unit="classes", noun="the label")
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


def _arg(name: str, arg: str) -> str:
    return f"{name} {arg}" if name else arg


def check_data(fn: str, name: str, x, t, *, ids: bool = False) -> None:
    """Validate a data set (x, t) (`name` "train", "test" or ""): floating x with a sample axis,
    labels `t` with as many samples. ``ids=True``: x holds integer ids instead (the input of a
    model that embeds them, seq2seq)."""
    for arr, arg in ((x, _arg(name, "x")), (t, _arg(name, "t"))):
        if not hasattr(arr, "shape"):
            raise TypeError(f"{fn}: {arg} is a {type(arr).__name__}, expected an array")
    if not ids:
        check_floating(fn, _arg(name, "x"), x)
    elif not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{fn}: {_arg(name, 'x')} has dtype {x.dtype}, expected integer ids")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{fn}: {_arg(name, 'x')} has shape {tuple(x.shape)}, expected (N, ...) with N >= 1")
    if t.shape[:1] != x.shape[:1]:
        raise ValueError(f"{fn}: {_arg(name, 't')} has {t.shape[0] if t.ndim else 'no'} samples (shape "
                         f"{tuple(t.shape)}), expected {x.shape[0]} to match x {tuple(x.shape)}")


def _host(x) -> np.ndarray | None:
    """`x`'s values on the host in its own dtype (None while traced); lists and scalars too."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def _index(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first True of `mask` (C order)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _at(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if index else name


@jax.jit
def _device_range(x):
    """(all finite, min, max) in one compiled pass (XLA's min/max do not propagate NaN on CPU)."""
    x = jnp.abs(x) if jnp.issubdtype(x.dtype, jnp.complexfloating) else x
    return jnp.all(jnp.isfinite(x)), jnp.min(x), jnp.max(x)


def value_range(x) -> tuple[float, float] | None:
    """(min, max) of a concrete floating array, reduced where it lives (an accelerator's array on the
    accelerator; a CPU array with numpy, whose reductions ran twice as fast as XLA:CPU's here); a NaN
    or inf anywhere makes one of them non-finite, so both are finite exactly when every value is.
    None while traced, for other dtypes, or when empty."""
    if isinstance(x, jax.core.Tracer) or not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return None
    if isinstance(x, jax.Array) and any(d.platform != "cpu" for d in x.devices()):
        if not x.size:
            return None
        finite, lo, hi = jax.device_get(_device_range(x))
        return (float(lo), float(hi)) if finite else (math.nan, math.nan)
    x = np.asarray(x)
    if not x.size:
        return None
    x = np.abs(x) if np.iscomplexobj(x) else x
    return float(x.min()), float(x.max())  # numpy's min and max propagate NaN


def check_finite(fn: str, name: str, x) -> tuple[float, float] | None:
    """Raise ValueError when a concrete floating `x` holds NaN or inf, naming the first one:
    ``fit: test x[5, 0, 3, 7] is nan, expected finite numbers (1 of 2352 values are NaN or inf)``.

    One pass for a clean array: its min and max (`value_range`, which it returns), computed where
    the array lives; the values come to the host only to name the first bad element."""
    lo_hi = value_range(x)
    if lo_hi is None or np.isfinite(lo_hi).all():
        return lo_hi
    values = np.asarray(x)
    bad = ~np.isfinite(values)
    i = _index(bad)
    raise ValueError(f"{fn}: {_at(name, i)} is {values[i]}, expected finite numbers ({int(bad.sum())} "
                     f"of {values.size} values are NaN or inf)")


def check_ids(fn: str, name: str, ids, n: int, *, what: str = "ids", unit: str = "rows",
              allowed: int | None = None, noun: str = "the id") -> None:
    """Raise unless `ids` (an array, a list or one integer) are integers in ``[0, n)`` (or equal
    `allowed`, e.g. an ignore label). Checked in their own dtype, before any cast; floats are
    refused (TypeError) even when they hold whole numbers. Values are skipped while traced (JAX
    then clamps an out-of-range gather: see the module docstring); the dtype never is."""
    dtype = ids.dtype if isinstance(ids, jax.core.Tracer) else np.asarray(ids).dtype
    empty = not isinstance(ids, jax.core.Tracer) and np.asarray(ids).size == 0
    if not (np.issubdtype(dtype, np.integer) or empty):
        found = f"dtype {dtype}" if dtype != np.dtype(object) else f"values of type {type(ids).__name__}"
        raise TypeError(f"{fn}: {name} has {found}, expected integer {what} in [0, {n - 1}]")
    values = _host(ids)
    if values is None or empty:
        return
    bad = (values < 0) | (values >= n)
    if allowed is not None:
        bad &= values != allowed
    if bad.any():
        i = _index(bad) if values.ndim else ()
        first = f"; first at {_at(name, i)}" if i else ""
        also = f" or {allowed} (ignored)" if allowed is not None else ""
        found = f"holds {noun} {values[i]}" if values.ndim else f"is {values[()]}"
        raise ValueError(f"{fn}: {name} {found}, expected {what} in [0, {n - 1}]{also} ({n} {unit}{first})")


def check_corpus(fn: str, name: str, corpus, V: int) -> np.ndarray:
    """`corpus` as a 1-d numpy array of word ids in [0, V), checked in its own dtype (floats refused)."""
    if not hasattr(corpus, "shape") and not isinstance(corpus, (list, tuple)):
        raise TypeError(f"{fn}: {name} is a {type(corpus).__name__}, expected a 1-d array of word ids")
    corpus = np.asarray(corpus)
    if corpus.ndim != 1:
        raise ValueError(f"{fn}: {name} has shape {corpus.shape}, expected a 1-d array of word ids")
    check_ids(fn, name, corpus, V, what="word ids", unit="words in the model's vocabulary")
    return corpus


def check_distribution(fn: str, name: str, t) -> None:
    """Soft or one-hot targets (..., C): every entry in [0, 1] and every row summing to 1 (to the
    dtype's rounding). Skipped while traced."""
    values = _host(t)
    if values is None or not values.size:
        return
    check_finite(fn, name, values)
    values = values.astype(np.float64)
    outside = (values < 0) | (values > 1)
    if outside.any():
        i = _index(outside)
        raise ValueError(f"{fn}: {_at(name, i)} is {values[i]:g}, expected probabilities in [0, 1] "
                         f"(one-hot or soft targets)")
    sums = values.sum(-1)
    dtype = np.asarray(t).dtype
    tol = np.sqrt(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 1e-6
    off = np.abs(sums - 1) > tol * max(1.0, values.shape[-1] ** 0.5)
    if off.any():
        i = _index(off)
        raise ValueError(f"{fn}: {_at(name, i)} sums to {sums[i]:.6g}, expected each row of targets to sum "
                         f"to 1 (one-hot or soft targets over {values.shape[-1]} classes)")


def warn_if_pixels(fn: str, name: str, x, lo_hi: tuple[float, float] | None = None) -> None:
    """Warn (`InputWarning`) when `x` looks like raw pixels: whole numbers in [0, 255] with a
    maximum above 1, where fnn's image models expect [0, 1] (``normalize=True``). `lo_hi` is x's
    (min, max) when known (`check_finite` returns it)."""
    lo_hi = value_range(x) if lo_hi is None else lo_hi
    if lo_hi is None or not (lo_hi[0] >= 0 and 1 < lo_hi[1] <= 255):
        return
    flat = x.reshape(-1) if hasattr(x, "reshape") else np.asarray(x).reshape(-1)
    sample = np.asarray(flat[: 1 << 16])  # the first 65,536 values (a jax array stays where it is)
    if np.array_equal(sample, np.round(sample)):
        warnings.warn(f"{fn}: {name} holds whole numbers up to {lo_hi[1]:g}: raw pixels 0..255? fnn's image "
                      f"models expect values in [0, 1] and train to chance on raw pixels (load with "
                      f"normalize=True, or divide by 255)", InputWarning, stacklevel=3)


def check_set(fn: str, name: str, x, t, scores=None, *, ids: bool = False) -> bool:
    """Everything `fit`-like drivers check about one data set (x, t), once, on the host, before any
    cast: `check_data`, finite x (`check_finite`), raw pixels (`warn_if_pixels`), and, given the
    model's `scores` (a shape/dtype struct), the labels (`check_labels`). Returns True for one-hot t.
    ``ids=True``: x holds integer ids (`check_data`), neither finite-checked nor pixels."""
    check_data(fn, name, x, t, ids=ids)
    if ids:
        return check_labels(f"{fn} ({name} data)" if name else fn, t, scores) if scores is not None else False
    warn_if_pixels(fn, _arg(name, "x"), x, check_finite(fn, _arg(name, "x"), x))
    if scores is None:
        return False
    return check_labels(f"{fn} ({name} data)" if name else fn, t, scores)

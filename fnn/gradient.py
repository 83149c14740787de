"""Numerical differentiation and the three-way gradient check (DLFS1 §4.3–4.4, §5.7.3).

* `numerical_diff` — the central difference (f(x+h) - f(x-h)) / 2h of a scalar function (§4.3.1).
* `numerical_gradient` — the same for every element (or a random sample) of a pytree of arrays (§4.4).
* `gradient_descent` — x <- x - lr * grad f(x), repeated (§4.4.1).
* `gradient_check` — the hand-written gradient vs `jax.grad` vs the numerical gradient, per leaf,
  as a `GradientCheck` table (§5.7.3); `model_gradient_check` does it for a `fnn.models.Model`.

How the numerical gradient runs: one compiled loop (`lax.scan`) walks over the coordinates, each
step one loss evaluation at params with one element moved by +h or -h, so nothing goes back to
Python between coordinates and memory stays that of one evaluation. A leaf with many coordinates
to check gets its own loop, in which only that leaf changes: XLA then computes the layers before
it once, not at every step. ``chunk=k`` evaluates k perturbed copies at a time with `vmap` instead
(the default on GPU, where one small evaluation cannot fill the device). The loops live in
`fnn._central_differences`, the result table in `fnn._gradcheck_result`.

Precision (DLFS1 §4.3.1, §5.7.3): the central difference has a truncation error of about
h^2 |f'''| / 6 and a rounding error of about eps |f| / h, eps the machine epsilon of the dtype.
In float64 (eps = 2.2e-16) with h = 1e-5 both are near 1e-10, so a correct backward agrees with
it to ~1e-8 relative; in float32 (eps = 1.2e-7) with the book's h = 1e-4 the rounding alone is
~1e-3 |f|, as large as many gradient entries, and a correct backward looks 5-40 % wrong. Hence
`gradient_check` runs in float64 by default.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from fnn._central_differences import RECHECK_STEP, RECHECK_TOL, Loops, Progress, compile_cpu, recheck
from fnn._gradcheck_result import PAIRS, GradientCheck, _leaf_name, max_error

__all__ = ["PAIRS", "RECHECK_STEP", "RECHECK_TOL", "GradientCheck", "PrecisionWarning", "gradient_check",
           "gradient_descent", "max_error", "model_gradient_check", "numerical_diff", "numerical_gradient",
           "relative_error", "sample_indices", "to_float64"]

PyTree = Any

class PrecisionWarning(UserWarning):
    """The numerical gradient runs in a precision too low to judge a backward pass (float32)."""


def numerical_diff(f: Callable[[Array], Array], x: Array, h: float = 1e-4) -> Array:
    """df/dx ~ (f(x + h) - f(x - h)) / (2h), the central difference (DLFS1 §4.3.1, equation 4.4)."""
    _check_h("numerical_diff", h)
    return (f(x + h) - f(x - h)) / (2 * h)


def sample_indices(params: PyTree, sample: int | float | None = None, key: Array | int = 0
                   ) -> list[np.ndarray]:
    """The coordinates a (sampled) numerical gradient perturbs: per leaf of `params`
    (``jax.tree_util.tree_leaves`` order), the sorted flat indices.

    `sample`: None, every coordinate; an int k >= 1, k coordinates of every leaf (all of a leaf
    with fewer); a float in (0, 1], that fraction of every leaf, rounded up. Drawn without
    replacement by NumPy's generator seeded with `key` (an int, or a ``jax.random`` key's data),
    leaf after leaf.
    """
    leaves = jax.tree_util.tree_leaves(params)
    if sample is None:
        return [np.arange(math.prod(np.shape(leaf))) for leaf in leaves]
    if isinstance(sample, bool) or not isinstance(sample, (int, float)):
        raise TypeError(f"sample_indices: sample is {sample!r}, expected None, a count (int) or a "
                        f"fraction (float)")
    if isinstance(sample, int) and sample < 1:
        raise ValueError(f"sample_indices: sample is {sample}, expected a count >= 1")
    if isinstance(sample, float) and not 0 < sample <= 1:
        raise ValueError(f"sample_indices: sample is {sample}, expected a fraction in (0, 1]")
    seed = key if isinstance(key, int) else np.asarray(jax.random.key_data(key)).ravel().tolist()
    rng = np.random.default_rng(seed)
    out = []
    for leaf in leaves:
        size = math.prod(np.shape(leaf))
        k = min(size, sample if isinstance(sample, int) else math.ceil(sample * size))
        out.append(np.sort(rng.choice(size, k, replace=False)) if k < size else np.arange(size))
    return out


def numerical_gradient(f: Callable[[PyTree], Array], params: PyTree, h: float = 1e-4, *,
                       sample: int | float | None = None, sample_key: Array | int = 0,
                       chunk: int | None = None, progress: bool = True) -> PyTree:
    """The gradient of scalar `f` at `params` by central differences, element by element (DLFS1 §4.4).

    `params` is any pytree of floating arrays; the result has its structure and dtypes. Each
    element x_i is set to x_i + h and to x_i - h, all others kept, and (f(+) - f(-)) / 2h taken,
    as the book's loop does, inside one compiled loop (see the module doc).

    `sample` (a count or a fraction per leaf, drawn with `sample_key`; `sample_indices`) checks only
    some coordinates; the others are NaN in the result. `chunk`: perturbed evaluations per step
    of the loop, vmapped; default 1 on CPU (fastest there), 128 on GPU/TPU. `progress`: a tqdm bar
    (plain lines when stderr is not a terminal) once a call has run 2 s. Under `jit` or `vmap`
    the loop is traced into the caller's program (no bar). `f` must be a JAX function.
    """
    _check_h("numerical_gradient", h)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    indices = sample_indices(params, sample, sample_key)
    _check_scalar(f, params, "numerical_gradient")
    loops = _loops(f, leaves, treedef, indices, chunk, "numerical_gradient")
    grads = _numerical(loops, leaves, indices, h, progress, "numerical_gradient")
    return treedef.unflatten([jnp.asarray(g) for g in grads])


def gradient_descent(grad_f: Callable[[Array], Array], init_x: Array, lr: float = 0.01,
                     step_num: int = 100) -> tuple[Array, Array]:
    """x <- x - lr * grad f(x), `step_num` times (DLFS1 §4.4.1, equation 4.7).

    `grad_f` gives the gradient: the book passes ``numerical_gradient``; ``jax.grad(f)`` is exact.
    Returns the final x and the path, an array (step_num + 1, *x.shape) that starts at `init_x`.
    The loop is one `lax.scan`.
    """
    def step(x, _):
        x_new = x - lr * grad_f(x)
        return x_new, x_new

    x, path = jax.lax.scan(step, init_x, None, length=step_num)
    return x, jnp.concatenate([init_x[None], path])


def relative_error(a: PyTree, b: PyTree) -> PyTree:
    """Per leaf: max |a - b| / max(max |a|, max |b|), 0 where both are 0.

    Scaled by the leaf's largest magnitude, not element by element, so gradient entries that are
    (nearly) zero do not make a correct gradient look wrong.
    """
    def leaf(x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        scale = max(np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0))
        return 0.0 if scale == 0 else float(np.max(np.abs(x - y)) / scale)

    return jax.tree_util.tree_map(leaf, a, b)


def gradient_check(grad_manual: Callable[[PyTree], PyTree], f: Callable[[PyTree], Array],
                   params: PyTree, h: float = 1e-5, *, sample: int | float | None = None,
                   sample_key: Array | int = 0, numerical: bool = True, dtype: str | None = "float64",
                   chunk: int | None = None, progress: bool = True) -> GradientCheck:
    """Compare three gradients of scalar `f` at `params` (DLFS1 §5.7.3 "gradient check").

    `grad_manual(params)` is the hand-written (backprop) gradient, a pytree like `params`; the
    others are ``jax.grad(f)`` and the central-difference `numerical_gradient` with step `h`.
    For a `fnn.models.Model`, `model_gradient_check` builds `f` and `grad_manual` for you.

    Returns a `GradientCheck`. ``print(result)`` is a table, one row per leaf (layer parameter),
    with the mean and max absolute difference and the max relative difference of every pair:
    hand vs autodiff, hand vs numerical, autodiff vs numerical (the book's ch05/ch07
    ``gradient_check.py`` prints the mean absolute one, ``W1:2.2e-13``; so does the table's last
    line). ``result.ok()`` says whether every leaf agrees; ``result["manual_vs_numerical"]`` is the
    pytree of per-leaf relative errors, for `max_error`.

    The step h and the rounding (DLFS1 §4.3.1): the central difference (f(x+h) - f(x-h)) / 2h
    is off from f'(x) by about h^2 |f'''(x)| / 6 (truncation, smaller for smaller h) plus
    eps |f| / h (rounding: f is known only to about eps |f|, eps the dtype's machine epsilon,
    and the difference is divided by 2h; larger for smaller h). In float64, eps = 2.2e-16 and
    h = 1e-5 (the default) make both ~1e-10: a correct backward agrees with the numerical
    gradient to ~1e-8 relative and with ``jax.grad`` to ~1e-15. In float32, eps = 1.2e-7: even at
    the book's h = 1e-4 the rounding is ~1e-3 |f|, as large as many gradient entries, so a correct
    backward looks 5-40 % wrong (and h = 1e-50 rounds x + h back to x, §4.3.1). Hence float64:

    * ``dtype="float64"`` (default): the check runs under ``jax.enable_x64`` with the floating
      leaves of `params` cast to float64, whatever the global setting. Arrays that `f` closes
      over (inputs) keep their dtype; float32 inputs promote to float64 where they meet the
      params (`model_gradient_check` casts them too). ``dtype=None`` keeps the dtypes given.
      Either way, if the loss comes out in float32 (or lower) a `PrecisionWarning` gives the
      expected size of the rounding error, eps |f| / h, against the gradient's size.
    * ``sample``: check only some coordinates numerically, a count (int) or a fraction (float)
      of every leaf, drawn with `sample_key` (`sample_indices`); hand vs autodiff compares all.
    * ``numerical=False``: hand vs ``jax.grad`` only, no numerical column (one compiled program).
    * ``chunk``, ``progress``: as in `numerical_gradient` (a bar once the check has run 2 s).

    Relative errors divide the max absolute difference by the leaf's largest gradient entry, so
    near-zero entries do not make a correct gradient look wrong. A leaf whose gradient is zero
    up to rounding (a bias right before a batch norm) is named under the table and judged by its
    absolute differences. A ReLU or max-pool kink within h of a coordinate spoils that
    coordinate's central difference (it averages the slopes on both sides): in float64, the
    coordinates more than `RECHECK_TOL` (relative) from jax.grad are evaluated again with step
    h / `RECHECK_STEP`, and where that agrees (and the error shrank tenfold) the new value is
    used; the table says how many. A wrong backward is not forgiven: its numerical gradient
    agrees with jax.grad, not with it. `f` and `grad_manual` must be JAX functions; the
    numerical gradient costs 2 evaluations of `f` per checked coordinate.
    """
    _check_h("gradient_check", h)
    if dtype not in ("float64", None) and dtype is not jnp.float64:
        raise ValueError(f"gradient_check: dtype is {dtype!r}, expected 'float64' or None")
    leaves, treedef = jax.tree_util.tree_flatten(params)
    traced = any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)
    x64 = dtype is not None and not traced
    with jax.enable_x64(True) if x64 else contextlib.nullcontext():
        if x64:
            params = to_float64(params)
            leaves = treedef.flatten_up_to(params)
        _check_scalar(f, params, "gradient_check")
        indices = sample_indices(params, sample, sample_key) if numerical else None
        loops = _loops(f, leaves, treedef, indices, chunk, "gradient_check") if numerical else None
        with ThreadPoolExecutor(1) as pool:  # the loops compile while the exact gradients do
            if numerical and not traced:
                loops.prepare(indices, h, pool)
            t0 = time.perf_counter()
            value, g_auto, g_manual = _exact_gradients(grad_manual, f, params, traced)
            _same_structure(g_manual, g_auto)
            seconds = {"gradients": time.perf_counter() - t0}
        _warn_precision(value, g_auto, h, numerical)
        g_num, rechecked = None, (0,) * len(leaves)
        if numerical:
            t0 = time.perf_counter()
            g_num = _numerical(loops, leaves, indices, h, progress, "gradient_check")
            if not traced:
                rechecked = recheck(loops, g_num, jax.device_get(treedef.flatten_up_to(g_auto)),
                                     jax.device_get(treedef.flatten_up_to(g_manual)), indices, h,
                                     float(value), jnp.result_type(value))
            seconds["numerical"] = time.perf_counter() - t0
        if traced:
            return _traced_errors(g_manual, g_auto, g_num, treedef)
        as_numpy = jax.device_get
        return GradientCheck.compare(
            treedef, as_numpy(treedef.flatten_up_to(g_manual)), as_numpy(treedef.flatten_up_to(g_auto)),
            g_num, indices, h=h, value=float(value), dtype=str(jnp.result_type(value)), seconds=seconds,
            rechecked=rechecked, h_recheck=h / RECHECK_STEP)


def model_gradient_check(model, params: PyTree, state: PyTree, x: Array, t: Array, *,
                         key: Array | None = None, **options) -> GradientCheck:
    """`gradient_check` of a model in the `fnn.models.Model` form (DLFS1 §5.7.3): its
    ``manual_grad(params, state, x, t, key=key)`` against ``jax.grad`` of its
    ``loss(params, state, x, t, key=key)``, both in training mode with the same `key` (the same
    dropout masks), at `params`. With the default ``dtype="float64"`` floating `x`, `t` and
    `state` are cast to float64 as well. `options` go to `gradient_check` (``sample``,
    ``numerical``, ``h``, ...)."""
    x64 = options.get("dtype", "float64") is not None
    with jax.enable_x64(True) if x64 else contextlib.nullcontext():
        if x64:
            state, x, t = to_float64((state, x, t))

        def loss(p):
            return model.loss(p, state, x, t, key=key)[0]

        def manual(p):
            return model.manual_grad(p, state, x, t, key=key)[1]

        return gradient_check(manual, loss, params, **options)


def to_float64(tree: PyTree) -> PyTree:
    """Every floating leaf of `tree` as float64 (call it under ``jax.enable_x64``); others unchanged."""
    def leaf(a):
        if not jnp.issubdtype(jnp.result_type(a), jnp.floating):
            return a
        if isinstance(a, jax.core.Tracer):
            return a.astype(jnp.float64)
        return jnp.asarray(np.asarray(a, np.float64))  # on the host: no program to compile

    return jax.tree_util.tree_map(leaf, tree)


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


def _exact_gradients(grad_manual, f, params, traced: bool):
    """f(params), jax.grad(f)(params) and grad_manual(params), as one compiled program."""
    def both(p):
        value, g_auto = jax.value_and_grad(f)(p)
        return value, g_auto, grad_manual(p)

    if traced:
        return both(params)
    return compile_cpu(both, (params,), level=0)(params)  # run once: compile fast


def _check_scalar(f, params, caller: str) -> None:
    out = jax.eval_shape(f, params)
    if not hasattr(out, "shape") or out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
        what = f"shape {tuple(out.shape)} and dtype {out.dtype}" if hasattr(out, "shape") else repr(out)
        raise ValueError(f"{caller}: f returned {what}, expected a floating scalar (the loss)")


def _loops(f, leaves, treedef, indices, chunk, caller: str) -> Loops:
    """The central-difference loops of f at `leaves` for the coordinates `indices` (planned, not
    yet compiled), after checking `chunk` and that every leaf is floating."""
    if chunk is None:
        chunk = 1 if jax.default_backend() == "cpu" else 128
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"{caller}: chunk is {chunk!r}, expected a positive integer")
    for leaf, path in zip(leaves, jax.tree_util.tree_flatten_with_path(treedef.unflatten(leaves))[0],
                          strict=True):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(f"{caller}: params leaf {_leaf_name(path[0])} has dtype "
                            f"{jnp.result_type(leaf)}, expected a floating dtype")
    traced = any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)
    return Loops(f, leaves, treedef, [len(i) for i in indices], chunk=chunk, traced=traced)


def _numerical(loops: Loops, leaves, indices, h, progress, caller) -> list:
    """Central differences at the coordinates `indices` (per leaf), NaN at the others, as NumPy
    arrays (traced arrays under an outer transformation)."""
    traced = loops.traced
    total = sum(len(idx) for idx in indices)
    bar = Progress(total, f"{caller}: {total:,} coordinates", enabled=progress and not traced)
    try:
        values = loops.differences(indices, h, bar)
    finally:
        bar.close()
    out = []
    for i, leaf in enumerate(leaves):
        shape, dtype = jnp.shape(leaf), jnp.result_type(leaf)
        size = math.prod(shape)
        if len(indices[i]) == size:
            out.append(values[i].reshape(shape).astype(dtype) if size else np.zeros(shape, dtype))
        elif traced:
            out.append(jnp.full(size, jnp.nan, dtype).at[indices[i]].set(values[i].astype(dtype)).reshape(shape))
        else:
            full = np.full(size, np.nan, dtype)
            full[indices[i]] = values[i]
            out.append(full.reshape(shape))
    return out


def _traced_errors(g_manual, g_auto, g_num, treedef) -> dict:
    """Under an outer `jit`/`vmap` nothing is concrete: the relative errors as traced scalars."""
    def rel(a, b):
        d = jnp.max(jnp.abs(a - b), where=~jnp.isnan(b), initial=0.0)
        scale = jnp.maximum(jnp.max(jnp.abs(a), initial=0.0), jnp.max(jnp.abs(b), where=~jnp.isnan(b), initial=0.0))
        return jnp.where(scale == 0, 0.0, d / jnp.where(scale == 0, 1.0, scale))

    out = {"manual_vs_autodiff": jax.tree_util.tree_map(rel, g_manual, g_auto)}
    if g_num is not None:
        num = treedef.unflatten(g_num)
        out["manual_vs_numerical"] = jax.tree_util.tree_map(rel, g_manual, num)
        out["autodiff_vs_numerical"] = jax.tree_util.tree_map(rel, g_auto, num)
    return out


def _warn_precision(value, g_auto, h: float, numerical: bool) -> None:
    dtype = jnp.result_type(value)
    if not numerical or jnp.finfo(dtype).bits >= 64 or isinstance(value, jax.core.Tracer):
        return
    eps = float(jnp.finfo(dtype).eps)
    rounding = eps * abs(float(value)) / h
    typical = float(np.mean([np.mean(np.abs(np.asarray(g))) for g in jax.tree_util.tree_leaves(g_auto)]))
    warnings.warn(
        f"gradient_check: the loss is computed in {dtype}, so the numerical gradient's rounding error "
        f"is about eps*|f|/h = {eps:.1e} * {abs(float(value)):.3g} / {h:g} = {rounding:.1e} per "
        f"coordinate, against a mean gradient magnitude of {typical:.1e}: a correct backward pass "
        f"will look wrong. Run in float64: dtype='float64' (the default) casts params, "
        f"model_gradient_check casts the inputs too; or cast what f closes over to float64.",
        PrecisionWarning, stacklevel=3)


def _check_h(fn: str, h: float) -> None:
    if not (isinstance(h, (int, float)) and 0 < h < float("inf")):
        raise ValueError(f"{fn}: h is {h!r}, expected a step > 0 such as 1e-4")


def _same_structure(manual: PyTree, auto: PyTree) -> None:
    s_manual, s_auto = jax.tree_util.tree_structure(manual), jax.tree_util.tree_structure(auto)
    if s_manual != s_auto:
        raise ValueError(f"gradient_check: grad_manual returned a tree of structure {s_manual}, "
                         f"expected the structure of params {s_auto}")

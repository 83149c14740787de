"""Numerical differentiation and the three-way gradient check (DLFS1 §4.3–4.4, §5.7.3).

* `numerical_diff` — the central difference (f(x+h) - f(x-h)) / 2h of a scalar function (§4.3.1).
* `numerical_gradient` — the same for every element of a pytree of arrays (§4.4).
* `gradient_descent` — x <- x - lr * grad f(x), repeated (§4.4.1).
* `gradient_check` — the hand-written gradient vs `jax.grad` vs the numerical gradient, per leaf (§5.7.3).

The numerical gradient perturbs one element at a time, as the book does; here all 2n perturbed
evaluations run as one `vmap`, so a check on a few thousand parameters takes milliseconds. Use it
in float64 (``jax.config.update("jax_enable_x64", True)``): with h = 1e-5 its truncation error is
about h^2 = 1e-10 and its rounding error about eps / h = 1e-11.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

PyTree = Any


def numerical_diff(f: Callable[[Array], Array], x: Array, h: float = 1e-4) -> Array:
    """df/dx ~ (f(x + h) - f(x - h)) / (2h), the central difference (DLFS1 §4.3.1, equation 4.4)."""
    _check_h("numerical_diff", h)
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f: Callable[[PyTree], Array], params: PyTree, h: float = 1e-4,
                       *, chunk: int = 256) -> PyTree:
    """The gradient of scalar `f` at `params` by central differences, element by element (DLFS1 §4.4).

    `params` is any pytree of floating arrays; the result has its structure. Evaluations are
    batched with `vmap`, `chunk` perturbed copies at a time: memory grows with `chunk` times one
    evaluation of `f` (its parameters and activations), so keep it small for big networks, and call
    this function outside `jit`. `f` must be a JAX function.
    """
    _check_h("numerical_gradient", h)
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"numerical_gradient: chunk is {chunk!r}, expected a positive integer")
    flat, unravel = ravel_pytree(params)
    n = flat.shape[0]
    f_flat = jax.vmap(lambda v: f(unravel(v)))

    def diff_chunk(idx: Array) -> Array:
        e = jax.nn.one_hot(idx, n, dtype=flat.dtype) * h  # (k, n) one perturbation a row
        return (f_flat(flat[None, :] + e) - f_flat(flat[None, :] - e)) / (2 * h)

    diff_chunk = jax.jit(diff_chunk)
    parts = [diff_chunk(jnp.arange(i, min(i + chunk, n))) for i in range(0, n, chunk)]
    return unravel(jnp.concatenate(parts) if parts else flat)


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
                   params: PyTree, h: float = 1e-5) -> dict[str, PyTree]:
    """Compare three gradients of scalar `f` at `params` (DLFS1 §5.7.3 "gradient check").

    `grad_manual(params)` is the hand-written (backprop) gradient; the others are ``jax.grad(f)``
    and `numerical_gradient`. Returns ``{"manual_vs_autodiff", "manual_vs_numerical",
    "autodiff_vs_numerical"}``, each a pytree of per-leaf `relative_error`.
    """
    g_manual = grad_manual(params)
    g_auto = jax.grad(f)(params)
    g_num = numerical_gradient(f, params, h)
    _same_structure(g_manual, g_auto)
    return {"manual_vs_autodiff": relative_error(g_manual, g_auto),
            "manual_vs_numerical": relative_error(g_manual, g_num),
            "autodiff_vs_numerical": relative_error(g_auto, g_num)}


def _check_h(fn: str, h: float) -> None:
    if not (isinstance(h, (int, float)) and 0 < h < float("inf")):
        raise ValueError(f"{fn}: h is {h!r}, expected a step > 0 such as 1e-4")


def max_error(errors: PyTree) -> float:
    """The largest per-leaf error of a `relative_error` pytree."""
    return max(jax.tree_util.tree_leaves(errors), default=0.0)


def _same_structure(manual: PyTree, auto: PyTree) -> None:
    s_manual, s_auto = jax.tree_util.tree_structure(manual), jax.tree_util.tree_structure(auto)
    if s_manual != s_auto:
        raise ValueError(f"gradient_check: grad_manual returned a tree of structure {s_manual}, "
                         f"expected the structure of params {s_auto}")

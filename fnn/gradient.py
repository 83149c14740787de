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
(the default on GPU, where one small evaluation cannot fill the device).

Precision (DLFS1 §4.3.1, §5.7.3): the central difference has a truncation error of about
h^2 |f'''| / 6 and a rounding error of about eps |f| / h, eps the machine epsilon of the dtype.
In float64 (eps = 2.2e-16) with h = 1e-5 both are near 1e-10, so a correct backward agrees with
it to ~1e-8 relative; in float32 (eps = 1.2e-7) with the book's h = 1e-4 the rounding alone is
~1e-3 |f|, as large as many gradient entries, and a correct backward looks 5-40 % wrong. Hence
`gradient_check` runs in float64 by default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = ["GradientCheck", "PAIRS", "PrecisionWarning", "gradient_check", "gradient_descent",
           "max_error", "model_gradient_check", "numerical_diff", "numerical_gradient",
           "relative_error", "sample_indices"]

PyTree = Any

PAIRS = ("manual_vs_autodiff", "manual_vs_numerical", "autodiff_vs_numerical")
"""The comparisons of a `GradientCheck`, its keys: manual = the hand-written backward (backprop)."""

OWN_LOOP = 4096
"""A leaf with at least this many coordinates to check gets its own compiled loop (see the module doc)."""

BLOCKS = 16
"""A loop runs in up to this many calls, for the progress bar; every call has the same length."""


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
    grads = _numerical(f, leaves, treedef, indices, h, chunk, progress, "numerical_gradient")
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


def max_error(errors: PyTree) -> float:
    """The largest per-leaf error of a `relative_error` pytree (NaN leaves, unchecked, are skipped)."""
    return max((e for e in jax.tree_util.tree_leaves(errors) if not math.isnan(e)), default=0.0)


def gradient_check(grad_manual: Callable[[PyTree], PyTree], f: Callable[[PyTree], Array],
                   params: PyTree, h: float = 1e-5, *, sample: int | float | None = None,
                   sample_key: Array | int = 0, numerical: bool = True, dtype: str | None = "float64",
                   chunk: int | None = None, progress: bool = True) -> GradientCheck:
    """Compare three gradients of scalar `f` at `params` (DLFS1 §5.7.3 "gradient check").

    `grad_manual(params)` is the hand-written (backprop) gradient, a pytree like `params`; the
    others are ``jax.grad(f)`` and the central-difference `numerical_gradient` with step `h`.
    Returns a `GradientCheck`: ``print(result)`` shows per leaf the mean and max absolute and
    the max relative difference of every pair (the book's ch05/ch07 ``gradient_check.py`` prints
    the mean absolute one, ``W1:2.2e-13``); ``result["manual_vs_numerical"]`` is the pytree of
    per-leaf relative errors (`relative_error`), for `max_error`.

    Options:

    * ``dtype="float64"`` (default): the check runs under ``jax.enable_x64`` with the floating
      leaves of `params` cast to float64, whatever the global setting. Arrays that `f` closes
      over (inputs) keep their dtype; float32 inputs promote to float64 where they meet the
      params. ``dtype=None`` keeps the dtypes given. Either way, if the loss comes out in
      float32 (or lower) a `PrecisionWarning` gives the expected size of the numerical
      gradient's rounding error, eps |f| / h (see the module doc: ~1e-3 |f| for float32 and
      h = 1e-4, against ~1e-11 |f| for float64 and h = 1e-5).
    * ``sample``: check only some coordinates numerically, a count (int) or a fraction (float)
      of every leaf, drawn with `sample_key` (`sample_indices`); hand vs autodiff compares all.
    * ``numerical=False``: hand vs ``jax.grad`` only, no numerical column (instant).
    * ``chunk``, ``progress``: as in `numerical_gradient`.

    The two exact gradients are one compiled program; the numerical one runs 2 evaluations of
    `f` per checked coordinate. `f` and `grad_manual` must be JAX functions. Expect, in float64,
    hand vs autodiff ~1e-15 and either vs numerical ~1e-8 relative; a ReLU or max-pool kink
    within h of a coordinate can spoil that coordinate's numerical value.
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
        t0 = time.perf_counter()
        value, g_auto, g_manual = _exact_gradients(grad_manual, f, params, traced)
        _same_structure(g_manual, g_auto)
        seconds = {"gradients": time.perf_counter() - t0}
        _warn_precision(value, g_auto, h, numerical)
        indices = sample_indices(params, sample, sample_key) if numerical else None
        g_num = None
        if numerical:
            t0 = time.perf_counter()
            g_num = _numerical(f, leaves, treedef, indices, h, chunk, progress, "gradient_check",
                               checked_scalar=True)
            seconds["numerical"] = time.perf_counter() - t0
        if traced:
            return _traced_errors(g_manual, g_auto, g_num, treedef)
        as_numpy = jax.device_get
        return GradientCheck.compare(
            treedef, as_numpy(treedef.flatten_up_to(g_manual)), as_numpy(treedef.flatten_up_to(g_auto)),
            None if g_num is None else as_numpy(g_num), indices, h=h, value=float(value),
            dtype=str(jnp.result_type(value)), seconds=seconds)


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
# The result
# --------------------------------------------------------------------------------------------

_TITLES = {"manual_vs_autodiff": "hand vs autodiff", "manual_vs_numerical": "hand vs numerical",
           "autodiff_vs_numerical": "autodiff vs numerical"}


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class GradientCheck(Mapping):
    """The result of `gradient_check`: per leaf, how far apart the three gradients are.

    As a mapping (the form tests use): ``result[pair]`` for pair in `PAIRS` (without the
    numerical ones when ``numerical=False``) is a pytree like params of per-leaf relative errors:
    max |a - b| over the coordinates checked, divided by the leaf's largest gradient entry (of
    any of the three gradients, over all its coordinates), so that sampled or (nearly) zero
    entries do not make a correct gradient look wrong; ``max_error(result[pair])`` is the worst.
    ``str(result)`` is the table. `manual`, `autodiff` and `numerical` hold the gradients as
    pytrees of NumPy arrays (`numerical` is NaN at unchecked coordinates, or None).
    """

    names: tuple[str, ...]                    # one per leaf: "W1", "lstm.Wx", "0.b" ...
    shapes: tuple[tuple[int, ...], ...]
    checked: tuple[int, ...]                  # coordinates checked numerically, per leaf
    stats: dict                               # pair -> per leaf (mean abs, max abs, max relative)
    manual: PyTree
    autodiff: PyTree
    numerical: PyTree | None
    h: float
    value: float                              # f(params)
    dtype: str                                # the dtype the loss was computed in
    seconds: dict                             # "gradients", "numerical": wall-clock seconds
    noise: float                              # eps * |f| / h, the numerical gradient's rounding error
    treedef: Any
    relative: dict = dataclasses.field(default_factory=dict)  # pair -> pytree of max relative errors

    @classmethod
    def compare(cls, treedef, manual: list, auto: list, num: list | None, indices: list | None,
                **kw) -> GradientCheck:
        """Build the result from the gradients' leaves (NumPy) and the checked coordinates."""
        grads = {"manual": manual, "autodiff": auto, "numerical": num}
        scales = [max(np.max(np.abs(g), initial=0.0, where=~np.isnan(g)) for g in leaf if g is not None)
                  for leaf in zip(manual, auto, num or [None] * len(manual), strict=True)]
        stats = {}
        for pair in PAIRS if num is not None else PAIRS[:1]:
            a_name, b_name = pair.split("_vs_")
            rows = []
            for i, (a, b) in enumerate(zip(grads[a_name], grads[b_name], strict=True)):
                a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
                if "numerical" in pair:
                    a, b = a[indices[i]], b[indices[i]]
                rows.append(_differences(a, b, scales[i]))
            stats[pair] = tuple(rows)
        checked = tuple(len(i) for i in indices) if num is not None else (0,) * len(manual)
        paths = jax.tree_util.tree_flatten_with_path(treedef.unflatten(manual))[0]
        relative = {pair: treedef.unflatten([rel for _, _, rel in rows]) for pair, rows in stats.items()}
        eps = float(np.finfo(np.dtype(kw["dtype"])).eps)
        return cls(names=tuple(_leaf_name(path) for path, _ in paths), relative=relative,
                   shapes=tuple(np.shape(a) for a in manual), checked=checked, stats=stats,
                   manual=treedef.unflatten(manual), autodiff=treedef.unflatten(auto),
                   numerical=None if num is None else treedef.unflatten(num), treedef=treedef,
                   noise=eps * abs(kw["value"]) / kw["h"], **kw)

    def __getitem__(self, pair: str) -> PyTree:
        if pair not in self.relative:
            raise KeyError(f"GradientCheck: no {pair!r}; expected one of {list(self.relative)}")
        return self.relative[pair]

    def __iter__(self) -> Iterator[str]:
        return iter(self.stats)

    def __len__(self) -> int:
        return len(self.stats)

    def noise_level_leaves(self) -> list[str]:
        """The leaves whose hand-written and jax.grad gradients are both below 10x the numerical
        noise (`noise`): ~0, such as a bias right before a batch norm, whose true gradient is 0.
        Their relative errors compare rounding noise with rounding noise; judge them by max abs."""
        leaves = zip(jax.tree_util.tree_leaves(self.manual), jax.tree_util.tree_leaves(self.autodiff),
                     strict=True)
        return [name for name, (a, b) in zip(self.names, leaves, strict=True)
                if max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0)) < 10 * self.noise]

    def largest(self, pair: str) -> float:
        """The largest relative error of `pair` over the leaves, those at the noise level excepted."""
        noisy = set(self.noise_level_leaves())
        return max((rel for name, (_, _, rel) in zip(self.names, self.stats[pair], strict=True)
                    if name not in noisy and not math.isnan(rel)), default=0.0)

    def ok(self, autodiff_tol: float = 1e-6, numerical_tol: float = 1e-4) -> bool:
        """Whether every leaf agrees: hand vs autodiff below `autodiff_tol` relative, the pairs with
        the numerical gradient below `numerical_tol`; a leaf at the noise level (`noise_level_leaves`)
        passes when its max abs difference is below 10x the noise instead."""
        noisy = set(self.noise_level_leaves())
        for pair, rows in self.stats.items():
            tol = autodiff_tol if pair == "manual_vs_autodiff" else numerical_tol
            for name, (_, max_abs, rel) in zip(self.names, rows, strict=True):
                if (max_abs >= 10 * self.noise) if name in noisy else (rel >= tol):
                    return False
        return True

    def __repr__(self) -> str:
        worst = ", ".join(f"{pair} {max_error(self[pair]):.1e}" for pair in self)
        return f"GradientCheck({len(self.names)} leaves; largest relative error: {worst})"

    def __str__(self) -> str:
        pairs = list(self.stats)
        n = sum(math.prod(s) for s in self.shapes)
        head = [f"gradient check: {n:,} parameters in {len(self.names)} leaves, {self.dtype}, "
                f"h = {self.h:g}, loss {self.value:.6g}"]
        timing = f"hand-written and jax.grad gradients {self.seconds['gradients']:.1f} s"
        if "numerical" in self.seconds:
            k = sum(self.checked)
            timing = (f"numerical gradient at {k:,} of {n:,} coordinates ({2 * k:,} loss evaluations) "
                      f"{self.seconds['numerical']:.1f} s; " + timing)
        head.append(timing)
        name_w = max(4, *(len(s) for s in self.names))
        shape_w = max(5, *(len(str(s)) for s in self.shapes))
        cols = "mean abs  max abs   max rel"
        group = max(len(cols), *(len(_TITLES[p]) for p in pairs))
        left = f"{'':<{name_w}}  {'':<{shape_w}}  {'':>8}"
        lines = [*head, "",
                 (left + "".join(f"   {_TITLES[p]:<{group}}" for p in pairs)).rstrip(),
                 f"{'leaf':<{name_w}}  {'shape':<{shape_w}}  {'checked':>8}"
                 + "".join(f"   {cols:<{group}}" for _ in pairs)]
        for i, name in enumerate(self.names):
            checked = f"{self.checked[i]:>8}" if "manual_vs_numerical" in self.stats else f"{'-':>8}"
            row = f"{name:<{name_w}}  {str(self.shapes[i]):<{shape_w}}  {checked}"
            for p in pairs:
                cells = "  ".join(_fmt(v) for v in self.stats[p][i])
                row += f"   {cells:<{group}}"
            lines.append(row.rstrip())
        lines.append("")
        noisy = self.noise_level_leaves()
        lines.append("largest relative error" + (" (leaves at ~0 aside)" if noisy else "") + ": " + ", ".join(
            f"{_TITLES[p]} {_fmt(self.largest(p)).strip()}" for p in pairs))
        if noisy:
            lines.append(f"{', '.join(noisy)}: gradient ~0, below 10x the numerical noise eps*|f|/h = "
                         f"{self.noise:.1e}; their relative errors compare rounding noise (see max abs)")
        if "manual_vs_numerical" in self.stats:
            book = " ".join(f"{name}:{self.stats['manual_vs_numerical'][i][0]:.1e}"
                            for i, name in enumerate(self.names))
            lines.append(f"the book's print, mean |hand - numerical|: {book}")
        return "\n".join(lines)


def _differences(a: np.ndarray, b: np.ndarray, scale: float) -> tuple[float, float, float]:
    """(mean |a - b|, max |a - b|, max |a - b| / scale); NaN when empty."""
    if a.size == 0:
        return (math.nan,) * 3
    d = np.abs(a - b)
    return float(np.mean(d)), float(np.max(d)), 0.0 if scale == 0 else float(np.max(d) / scale)


def _fmt(v: float) -> str:
    return f"{'-':>7}" if math.isnan(v) else f"{v:7.1e}"


def _leaf_name(path) -> str:
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    return ".".join(parts) or "params"


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


def _exact_gradients(grad_manual, f, params, traced: bool):
    """f(params), jax.grad(f)(params) and grad_manual(params), as one compiled program."""
    def both(p):
        value, g_auto = jax.value_and_grad(f)(p)
        return value, g_auto, grad_manual(p)

    _check_scalar(f, params)
    if traced:
        return both(params)
    return _compile(both, (params,), level=0)(params)  # run once: compile fast


def _check_scalar(f, params) -> None:
    out = jax.eval_shape(f, params)
    if not hasattr(out, "shape") or out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"gradient_check: f returned {out}, expected a floating scalar (the loss)")


def _numerical(f, leaves, treedef, indices, h, chunk, progress, caller, *, checked_scalar=False) -> list:
    """Central differences of f at the coordinates `indices` (per leaf); NaN at the others.
    NumPy arrays, or traced arrays under an outer transformation."""
    if chunk is None:
        chunk = 1 if jax.default_backend() == "cpu" else 128
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"{caller}: chunk is {chunk!r}, expected a positive integer")
    for leaf, path in zip(leaves, jax.tree_util.tree_flatten_with_path(treedef.unflatten(leaves))[0],
                          strict=True):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(f"{caller}: params leaf {_leaf_name(path[0])} has dtype "
                            f"{jnp.result_type(leaf)}, expected a floating dtype")
    if not checked_scalar:
        _check_scalar(f, treedef.unflatten(leaves))
    traced = any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)
    big = [i for i, idx in enumerate(indices) if len(idx) >= OWN_LOOP]
    rest = [i for i, idx in enumerate(indices) if 0 < len(idx) < OWN_LOOP]
    groups = [[i] for i in big] + ([rest] if rest else [])
    total = sum(len(idx) for idx in indices)
    bar = _Progress(total, f"{caller}: {total:,} coordinates", enabled=progress and not traced)
    values = {}
    try:
        for group in groups:
            values.update(_group_differences(f, leaves, treedef, group, indices, h, chunk, traced, bar))
    finally:
        bar.close()
    xp = jnp if traced else np  # bookkeeping on the host when nothing is traced: nothing to compile
    out = []
    for i, leaf in enumerate(leaves):
        shape, dtype = jnp.shape(leaf), jnp.result_type(leaf)
        size = math.prod(shape)
        if len(indices[i]) == size:
            out.append(values[i].reshape(shape).astype(dtype) if size else xp.zeros(shape, dtype))
        elif traced:
            out.append(jnp.full(size, jnp.nan, dtype).at[indices[i]].set(values[i].astype(dtype)).reshape(shape))
        else:
            full = np.full(size, np.nan, dtype)
            full[indices[i]] = values[i]
            out.append(full.reshape(shape))
    return out


def _group_differences(f, leaves, treedef, group, indices, h, chunk, traced, bar) -> dict:
    """One compiled loop over the coordinates of the leaves `group`: only they are perturbed."""
    sizes = [math.prod(jnp.shape(leaves[i])) for i in group]
    offsets = np.cumsum([0, *sizes])[:-1]
    coords = np.concatenate([indices[i] + o for i, o in zip(group, offsets, strict=True)])
    xp = jnp if traced else np  # bookkeeping on the host when nothing is traced: nothing to compile
    flat = xp.concatenate([xp.ravel(xp.asarray(leaves[i])) for i in group])
    others = [leaf for i, leaf in enumerate(leaves) if i not in group]

    def evaluate(flat_, others_, idx, sign):  # f with element idx of the group moved by sign * h
        moved = flat_.at[idx].set(flat_[idx] + sign * h)
        parts = iter(others_)
        new = []
        for i in range(len(leaves)):
            if i in group:
                k = group.index(i)
                new.append(moved[offsets[k]:offsets[k] + sizes[k]].reshape(jnp.shape(leaves[i])))
            else:
                new.append(next(parts))
        return f(treedef.unflatten(new))

    def loop(flat_, others_, idx, sign):  # (2B,) losses, one per (coordinate, sign)
        if chunk == 1:
            return jax.lax.scan(lambda _, a: (None, evaluate(flat_, others_, *a)), None, (idx, sign))[1]
        return jax.lax.map(lambda a: evaluate(flat_, others_, *a), (idx, sign), batch_size=chunk)

    n = len(coords)
    n_calls = 1 if traced else min(BLOCKS, max(1, n // 128))
    block = -(-n // n_calls)
    padded = np.zeros(block * n_calls, np.int32)
    padded[:n] = coords
    flat, signs = jnp.asarray(flat), jnp.asarray(np.tile(np.array([1.0, -1.0], flat.dtype), block))
    blocks = [jnp.asarray(np.repeat(padded[c * block:(c + 1) * block], 2)) for c in range(n_calls)]
    run = loop if traced else _compile(loop, (flat, others, blocks[0], signs), level=1)
    losses = []
    for c in range(n_calls):
        y = run(flat, others, blocks[c], signs)
        if bar.enabled:
            y.block_until_ready()
            bar.update(min(block, n - c * block))
        losses.append(y)
    y = (jnp.concatenate(losses) if traced else np.concatenate(jax.device_get(losses)))[:2 * n].reshape(n, 2)
    diff = (y[:, 0] - y[:, 1]) / (2 * h)
    splits = np.cumsum([len(indices[i]) for i in group])[:-1]
    return dict(zip(group, xp.split(diff, splits), strict=True))


def _compile(fn, args, level: int):
    """`fn` jitted and compiled for `args`; on CPU at LLVM optimisation `level` (0 or 1), which
    compiles a big network 2-3x faster than the default with the same speed for these programs
    (their time is in matmuls and convolutions, library calls that the level does not touch)."""
    lowered = jax.jit(fn).lower(*args)
    if jax.default_backend() == "cpu":
        with contextlib.suppress(Exception):  # an XLA without this option: compile as usual
            return lowered.compile(compiler_options={"xla_backend_optimization_level": level})
    return lowered.compile()


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


class _Progress:
    """A tqdm bar on a terminal; elsewhere (a log, a pipe) a few plain lines at 25/50/75/100 %.
    Silent for the first `delay` seconds, so a short check prints nothing."""

    def __init__(self, total: int, desc: str, *, enabled: bool, delay: float = 2.0, stream=None):
        self.enabled, self.total, self.desc, self.delay = enabled and total > 0, total, desc, delay
        self.stream = stream or sys.stderr
        self.done, self.start, self.next_mark, self.bar = 0, time.perf_counter(), 0.25, None
        if self.enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="coord", delay=delay, file=self.stream,
                            leave=False)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        elapsed = time.perf_counter() - self.start
        if self.enabled and self.done >= self.next_mark * self.total:
            if elapsed >= self.delay:
                print(f"{self.desc}: {self.done:,} done ({self.done / self.total:.0%}), {elapsed:.1f} s",
                      file=self.stream, flush=True)
            while self.next_mark <= self.done / self.total:
                self.next_mark += 0.25

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_h(fn: str, h: float) -> None:
    if not (isinstance(h, (int, float)) and 0 < h < float("inf")):
        raise ValueError(f"{fn}: h is {h!r}, expected a step > 0 such as 1e-4")


def _same_structure(manual: PyTree, auto: PyTree) -> None:
    s_manual, s_auto = jax.tree_util.tree_structure(manual), jax.tree_util.tree_structure(auto)
    if s_manual != s_auto:
        raise ValueError(f"gradient_check: grad_manual returned a tree of structure {s_manual}, "
                         f"expected the structure of params {s_auto}")

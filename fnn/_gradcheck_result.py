"""`GradientCheck`, the result of `fnn.gradient.gradient_check`: per leaf, how far apart the
hand-written, jax.grad and numerical gradients are, as a table (DLFS1 §5.7.3)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

PyTree = Any

# The comparisons of a `GradientCheck`, its keys: manual = the hand-written backward (backprop).
PAIRS = ("manual_vs_autodiff", "manual_vs_numerical", "autodiff_vs_numerical")

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
    rechecked: tuple[int, ...]                # coordinates taken from the recheck at step h_recheck
    h_recheck: float
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
        if any(self.rechecked):
            which = ", ".join(f"{name} {k}" for name, k in zip(self.names, self.rechecked, strict=True) if k)
            lines.append(f"rechecked with h = {self.h_recheck:g}, where they agree with jax.grad (a ReLU or "
                         f"max-pool kink within h, or curvature): {which} coordinates; the table uses those values")
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


def max_error(errors: PyTree) -> float:
    """The largest per-leaf error of a `relative_error` pytree (NaN leaves, unchecked, are skipped)."""
    return max((e for e in jax.tree_util.tree_leaves(errors) if not math.isnan(e)), default=0.0)

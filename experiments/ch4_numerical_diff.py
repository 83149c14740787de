"""Numerical derivative, tangent line (DLFS1 §4.3, Fig. 4-7; book: f'(5) = 0.1999999999990898).
Book: f'(5) = 0.1999999999990898, f'(10) = 0.2999999999986347.

The central difference (f(x+h) - f(x-h)) / 2h with h = 1e-4 (§4.3.1) at x = 5 and x = 10, against
the true derivatives 0.2 and 0.3 (§4.3.2), and the two partial derivatives of
f(x0, x1) = x0^2 + x1^2 at (3, 4) (§4.3.3; book: 6.00000000000378 and 7.999999999999119), all in
float64 as the book's NumPy computes them. A second panel shows why h = 1e-4 (§4.3.1): the error of the
forward and the central difference of exp at x = 1 against h, from rounding (h tiny; the book's
1e-50 rounds to 0.0 in float32) to truncation (h large). (For function_1 the central difference has
no truncation error at all: its third derivative is 0.)

Writes ``numerical_diff.png`` and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.gradient import numerical_diff
from fnn_experiments import _common as ex

NAME = "ch4_numerical_diff"
BOOK = {"diff_at_5": 0.1999999999990898, "diff_at_10": 0.2999999999986347,
        "partial_x0": 6.00000000000378, "partial_x1": 7.999999999999119}


def function_1(x):
    """f(x) = 0.01 x^2 + 0.1 x (DLFS1 §4.3.2, equation 4.5)."""
    return 0.01 * x ** 2 + 0.1 * x


def tangent_line(f, x):
    """The line through (x, f(x)) with slope `numerical_diff(f, x)` (DLFS1 §4.3.2, Fig. 4-7)."""
    d = numerical_diff(f, x)
    return d, lambda s: d * s + (f(x) - d * x)


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer, jax.enable_x64(True):
        d5, tangent5 = tangent_line(function_1, jnp.float64(5.0))
        d10, tangent10 = tangent_line(function_1, jnp.float64(10.0))
        px0 = numerical_diff(lambda x0: x0 * x0 + 4.0 ** 2.0, jnp.float64(3.0))  # function_tmp1
        px1 = numerical_diff(lambda x1: 3.0 ** 2.0 + x1 * x1, jnp.float64(4.0))  # function_tmp2
        hs = 10.0 ** np.arange(-16, 0.01, 0.25)
        x0 = jnp.float64(1.0)  # exp: f' = f, and its 3rd derivative is not 0 (function_1's is)
        central = np.array([abs(float(numerical_diff(jnp.exp, x0, h)) - np.e) for h in hs])
        forward = np.array([abs(float((jnp.exp(x0 + h) - jnp.exp(x0)) / h) - np.e) for h in hs])
        book_h32 = float(np.float32(1e-50))
        x = np.arange(0.0, 20.0, 0.1)
        y, y5, y10 = (np.asarray(f(jnp.asarray(x))) for f in (function_1, tangent5, tangent10))

    values = {"diff_at_5": float(d5), "diff_at_10": float(d10), "partial_x0": float(px0),
              "partial_x1": float(px1)}
    fig, (ax, ax_h) = plt.subplots(1, 2, figsize=(12, 4.3), layout="constrained")
    ax.plot(x, y, label="f(x) = 0.01x² + 0.1x")
    ax.plot(x, y5, "--", label=f"tangent at x = 5 (slope {float(d5):.6f})")
    ax.plot(x, y10, ":", label=f"tangent at x = 10 (slope {float(d10):.6f})")
    ax.set(xlabel="x", ylabel="f(x)", title="tangent lines by numerical differentiation (Fig. 4-7)")
    ax.legend()
    ax_h.loglog(hs, np.maximum(forward, 1e-17), label="forward (f(x+h) - f(x)) / h")
    ax_h.loglog(hs, np.maximum(central, 1e-17), label="central (f(x+h) - f(x-h)) / 2h")
    ax_h.axvline(1e-4, color="k", ls=":", label="h = 1e-4 (the book's choice)")
    ax_h.set(xlabel="h", ylabel="|error| of d/dx exp(x) at x = 1",
             title="rounding error (small h) vs truncation error (large h)")
    ax_h.legend(fontsize=8)
    ex.save_figure(fig, out / "numerical_diff.png")

    errors = {k: abs(values[k] - BOOK[k]) for k in BOOK}
    best = int(np.argmin(central))
    metrics = {**values, "abs_diff_vs_book": errors, "true": {"diff_at_5": 0.2,
               "diff_at_10": 0.3, "partial_x0": 6.0, "partial_x1": 8.0},
               "float32_of_1e-50": book_h32, "best_h_central": float(hs[best]),
               "best_error_central": float(central[best])}
    path = ex.save_result(out, NAME, args, config={"h": 1e-4, "dtype": "float64"}, metrics=metrics,
                          seconds=timer.seconds, book=BOOK,
                          book_ref={"section": "DLFS1 §4.3", "figures": ["Fig. 4-7"],
                                    "script": "ch04/gradient_1d.py"})
    ex.report([f"{k:>10}: {values[k]!r:<20} book {BOOK[k]!r}" for k in BOOK] +
               [f"np.float32(1e-50) = {book_h32} (why h must not be tiny); the central difference's "
                f"error is smallest near h = {hs[best]:.0e}",
                f"wrote {out / 'numerical_diff.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

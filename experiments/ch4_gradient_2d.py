"""The gradient of x0² + x1² as arrows (DLFS1 §4.4, Fig. 4-8, 4-9; book: grad at (3, 4) = [6. 8.]).
Book: grad at (3, 4) = [6. 8.], (0, 2) = [0. 4.], (3, 0) = [6. 0.].

`fnn.gradient.numerical_gradient` (central differences, h = 1e-4) at the three points the book
prints, and over the book's grid x0, x1 in [-2, 2.25] step 0.25, drawn as the quiver plot of
-grad f (Fig. 4-9) next to the surface of f (Fig. 4-8). The numerical gradients are compared with
the exact ``jax.grad``. Computed in float64.

Writes ``gradient_2d.png`` and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.gradient import numerical_gradient
from fnn_experiments import _common as ex

NAME = "ch4_gradient_2d"
BOOK = {"(3, 4)": [6.0, 8.0], "(0, 2)": [0.0, 4.0], "(3, 0)": [6.0, 0.0]}


def function_2(x):
    """f(x0, x1) = x0^2 + x1^2 (DLFS1 §4.3.3, equation 4.6); x (2,) -> ()."""
    return jnp.sum(x ** 2)


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer, jax.enable_x64(True):
        points = {k: numerical_gradient(function_2, jnp.array(x)) for k, x in
                  (("(3, 4)", [3.0, 4.0]), ("(0, 2)", [0.0, 2.0]), ("(3, 0)", [3.0, 0.0]))}
        g = np.arange(-2, 2.5, 0.25)
        X, Y = np.meshgrid(g, g)
        grid = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=1))  # (G, 2)
        grads = jax.vmap(lambda x: numerical_gradient(function_2, x))(grid)  # (G, 2)
        exact = jax.vmap(jax.grad(function_2))(grid)
        max_err = float(jnp.max(jnp.abs(grads - exact)))
    grads = np.asarray(grads)

    fig = plt.figure(figsize=(12, 5), layout="constrained")
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    s = np.linspace(-3, 3, 61)
    SX, SY = np.meshgrid(s, s)
    ax3.plot_surface(SX, SY, SX ** 2 + SY ** 2, cmap="viridis", alpha=0.85, linewidth=0)
    ax3.set(xlabel="x0", ylabel="x1", zlabel="f(x)", title="f(x0, x1) = x0² + x1² (Fig. 4-8)")
    ax = fig.add_subplot(1, 2, 2)
    ax.quiver(X.ravel(), Y.ravel(), -grads[:, 0], -grads[:, 1], angles="xy", color="#666666")
    ax.set(xlim=(-2, 2), ylim=(-2, 2), xlabel="x0", ylabel="x1", aspect="equal",
           title="-grad f by numerical_gradient (Fig. 4-9)")
    ax.grid()
    ex.save_figure(fig, out / "gradient_2d.png")

    values = {k: np.asarray(v).tolist() for k, v in points.items()}
    metrics = {"gradients": values,
               "max_abs_diff_vs_book": max(float(np.max(np.abs(np.subtract(values[k], BOOK[k]))))
                                           for k in BOOK),
               "grid_points": int(grid.shape[0]), "grid_max_abs_error_vs_jax_grad": max_err}
    path = ex.save_result(out, NAME, args, config={"h": 1e-4, "grid": [-2, 2.25, 0.25],
                                                   "dtype": "float64"}, metrics=metrics,
                          seconds=timer.seconds, book={"gradients": BOOK},
                          book_ref={"section": "DLFS1 §4.4", "figures": ["Fig. 4-8", "Fig. 4-9"],
                                    "script": "ch04/gradient_2d.py",
                                    "note": "the book prints the gradients rounded: [6. 8.]"})
    ex.report([f"numerical_gradient at {k}: {values[k]} (book {BOOK[k]})" for k in BOOK] +
              [f"over the {grid.shape[0]}-point grid, |numerical - jax.grad| <= {max_err:.1e}",
               f"wrote {out / 'gradient_2d.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

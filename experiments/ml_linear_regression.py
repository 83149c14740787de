"""Linear regression by gradient descent on the squared loss (ML basics; reference: least squares).

Data: 100 points x ~ U(0, 2), y = 3x + 2 + N(0, 0.5^2) (seeded). Model y = w x + b, loss
E(w, b) = 1/(2n) sum_i (w x_i + b - y_i)^2 (`fnn.functions.squared_loss`), minimised by
`fnn.gradient.gradient_descent` (x <- x - lr grad E, DLFS1 §4.4.1) with ``jax.grad`` from (w, b) =
(0, 0), lr 0.5, 200 steps. The least-squares solution (``numpy.polyfit``) is the number to reach.

Writes ``linear_regression.png`` (data and line, the loss surface over (w, b) with the path, loss per
step) and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import functions as F
from fnn.gradient import gradient_descent
from fnn_experiments import _common as ex

NAME = "ml_linear_regression"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--lr": {"type": "float", "default": 0.5, "help": "learning rate (default 0.5)"},
    "--steps": {"type": "count", "default": 200, "help": "gradient steps (default 200)"},
}


def predict(theta, x):
    """y = w x + b with theta = (w, b); x (n,) -> (n,)."""
    return theta[0] * x + theta[1]


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    kx, kn = jax.random.split(jax.random.key(args.seed))
    with ex.Timer() as timer, jax.enable_x64(True):
        x = jax.random.uniform(kx, (100,), jnp.float64, 0.0, 2.0)
        y = 3.0 * x + 2.0 + 0.5 * jax.random.normal(kn, (100,), jnp.float64)

        def loss(theta):
            return F.squared_loss(predict(theta, x), y)

        theta, path = gradient_descent(jax.grad(loss), jnp.zeros(2), lr=args.lr, step_num=args.steps)
        losses = jax.vmap(loss)(path)
        w_ls, b_ls = np.polyfit(np.asarray(x), np.asarray(y), 1)
        best = float(loss(jnp.array([w_ls, b_ls])))
        W, B = np.meshgrid(np.linspace(-0.5, 6, 121), np.linspace(-1.5, 5, 121))
        grid = jnp.asarray(np.stack([W.ravel(), B.ravel()], axis=1))
        surface = np.asarray(jax.vmap(loss)(grid)).reshape(W.shape)
    x, y, path, losses, theta = (np.asarray(a) for a in (x, y, path, losses, theta))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), layout="constrained")
    axes[0].scatter(x, y, s=12, alpha=0.7, label="data")
    g = np.linspace(0, 2, 10)
    axes[0].plot(g, float(theta[0]) * g + float(theta[1]), "r", label=f"gradient descent: "
                 f"y = {float(theta[0]):.3f} x + {float(theta[1]):.3f}")
    axes[0].plot(g, w_ls * g + b_ls, "k:", label=f"least squares: y = {w_ls:.3f} x + {b_ls:.3f}")
    axes[0].set(xlabel="x", ylabel="y", title="the fitted line")
    axes[0].legend(fontsize=8)
    cs = axes[1].contour(W, B, surface, levels=np.geomspace(best * 1.02, surface.max(), 18),
                         cmap="viridis", linewidths=0.8)
    axes[1].clabel(cs, fontsize=6, fmt="%.2g")
    axes[1].plot(path[:, 0], path[:, 1], "r.-", ms=3, lw=0.8, label=f"descent path, lr {args.lr}")
    axes[1].plot(w_ls, b_ls, "k*", ms=12, label="least squares")
    axes[1].set(xlabel="w", ylabel="b", title="loss surface E(w, b) and the descent path")
    axes[1].legend(fontsize=8)
    axes[2].semilogy(losses - best + 1e-16)
    axes[2].set(xlabel="step", ylabel="E(w, b) - E(least squares)", title="loss above the optimum")
    fig.suptitle("Linear regression by gradient descent on the squared loss")
    ex.save_figure(fig, out / "linear_regression.png")

    metrics = {"w": float(theta[0]), "b": float(theta[1]), "w_least_squares": float(w_ls),
               "b_least_squares": float(b_ls), "true": {"w": 3.0, "b": 2.0},
               "final_loss": float(losses[-1]), "least_squares_loss": best,
               "max_abs_diff_vs_least_squares": float(max(abs(theta[0] - w_ls), abs(theta[1] - b_ls)))}
    path_json = ex.save_result(out, NAME, args, config={"n": 100, "lr": args.lr, "steps": args.steps,
                                                        "init": [0.0, 0.0], "dtype": "float64"},
                               metrics=metrics, seconds=timer.seconds)
    ex.report([f"gradient descent: w = {metrics['w']:.6f}, b = {metrics['b']:.6f}, loss "
               f"{metrics['final_loss']:.6f}",
               f"least squares:    w = {w_ls:.6f}, b = {b_ls:.6f}, loss {best:.6f} (true w 3, b 2)",
               f"wrote {out / 'linear_regression.png'} and {path_json}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

"""Optimizer paths on f(x, y) = x^2/20 + y^2 from (-7, 2) (DLFS1 §6.1.7, Figure 6-8).

The book's ch06/optimizer_compare_naive.py.

The book's four panels: 30 steps of SGD (lr 0.95), Momentum (lr 0.1), AdaGrad (lr 1.5) and Adam
(lr 0.3) with `fnn.optim`'s hand-written rules, drawn over the contours of f. SGD zig-zags along
y, Momentum rolls like a ball around the minimum, AdaGrad's steps in y shrink fast, and Adam
rolls more gently. The function has no data, so ``--quick`` and the full mode are the same run;
every path is one `lax.scan` and all four take milliseconds.

Writes ``optimizer_compare_naive.png`` and ``result.json`` (the final point and f there per
optimizer; the book prints nothing, its figure ends SGD still zig-zagging near (-0.3, 0), the
others close to (0, 0)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from fnn import optim
from fnn_experiments import _common as ex

NAME = "ch6_optimizer_compare_naive"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
INIT = (-7.0, 2.0)
STEPS = 30
OPTIMIZERS = {"SGD": ("sgd", 0.95), "Momentum": ("momentum", 0.1), "AdaGrad": ("adagrad", 1.5),
              "Adam": ("adam", 0.3)}


def f(p: dict) -> jax.Array:
    """f(x, y) = x^2 / 20 + y^2 (DLFS1 equation 6.2)."""
    return p["x"] ** 2 / 20.0 + p["y"] ** 2


def path(optimizer: optax.GradientTransformation, steps: int = STEPS) -> np.ndarray:
    """The (steps + 1, 2) points visited from INIT, the start included."""
    p0 = {"x": jnp.asarray(INIT[0]), "y": jnp.asarray(INIT[1])}

    def body(carry, _):
        p, s = carry
        updates, s = optimizer.update(jax.grad(f)(p), s, p)
        p = optax.apply_updates(p, updates)
        return (p, s), jnp.stack([p["x"], p["y"]])

    _, pts = jax.lax.scan(body, (p0, optimizer.init(p0)), None, length=steps)
    return np.concatenate([np.array([INIT]), np.asarray(pts)])


def main(argv=None) -> dict:
    args = ex.parser(NAME, __doc__, OPTIONS).parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        paths = {name: path(optim.get(opt, learning_rate=lr)) for name, (opt, lr) in OPTIMIZERS.items()}

    X, Y = np.meshgrid(np.arange(-10, 10, 0.01), np.arange(-5, 5, 0.01))
    Z = X ** 2 / 20.0 + Y ** 2
    Z[Z > 7] = 0  # the book's trick: hide the outer contours
    fig, axes = plt.subplots(2, 2, figsize=(9, 8))
    for ax, (name, pts) in zip(axes.flat, paths.items(), strict=True):
        ax.contour(X, Y, Z)
        ax.plot(pts[:, 0], pts[:, 1], "o-", color="red", ms=3)
        ax.plot(0, 0, "+", color="k", ms=10)
        ax.set(xlim=(-10, 10), ylim=(-10, 10), xlabel="x", ylabel="y",
               title=f"{name} (lr {OPTIMIZERS[name][1]})")
    fig.suptitle(f"f(x, y) = x²/20 + y², {STEPS} steps from {INIT}")
    fig.tight_layout()
    ex.save_figure(fig, out / "optimizer_compare_naive.png")

    metrics = {name: {"final_x": float(p[-1, 0]), "final_y": float(p[-1, 1]),
                      "final_f": float(p[-1, 0] ** 2 / 20 + p[-1, 1] ** 2)} for name, p in paths.items()}
    config = {"init": INIT, "steps": STEPS,
              "optimizers": {k: {"rule": v[0], "learning_rate": v[1]} for k, v in OPTIMIZERS.items()}}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            paths={k: v.tolist() for k, v in paths.items()})
    ex.report([f"{k:9s} ends at ({m['final_x']:+.3f}, {m['final_y']:+.3f}), f = {m['final_f']:.4f}"
               for k, m in metrics.items()] + [f"wrote {out / 'optimizer_compare_naive.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

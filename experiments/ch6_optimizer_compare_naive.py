"""Optimizer paths on f(x, y) = x^2/20 + y^2 from (-7, 2), all seven optimizers (DLFS1 §6.1.7, Fig. 6-8).

The book's ch06/optimizer_compare_naive.py.

The book's four panels: 30 steps of SGD (lr 0.95), Momentum (lr 0.1), AdaGrad (lr 1.5) and Adam
(lr 0.3) with `fnn.optim`'s hand-written rules, drawn over the contours of f. SGD zig-zags along
y, Momentum rolls like a ball around the minimum, AdaGrad's steps in y shrink fast, and Adam
rolls more gently; "from this figure alone AdaGrad looks best" (§6.1.7), though the best method
depends on the problem. Three more panels show the optimizers `fnn.optim` has beyond the book's
four (learning rates chosen here, not by the book): Nesterov (§6.1.8's pointer; lr 0.1, as
Momentum), RMSprop (§6.1.5; lr 0.1) and AdaDelta (Zeiler 2012; its paper has no learning rate:
lr 1, eps 1e-6, which makes its first steps about sqrt(eps) long, so in 30 steps it barely
moves). The eighth panel is f along every path, on a log scale. The function has no data, so
``--quick`` and the full mode are the same run; every path is one `lax.scan`.

Measured: SGD ends at (-0.350, +0.085), its y changing sign at every one of the 30 steps;
Momentum swings across y = 0 and past x = 0, ending at (+0.896, +0.088); AdaGrad ends closest
of the book's four, f = 0.0007; Adam at f = 0.102; Nesterov f = 0.024, RMSprop f = 0.024,
AdaDelta f = 5.8 (from 6.45).

Writes ``optimizer_compare_naive.png`` and ``result.json`` (the final point, f there, the number
of sign changes of y and the largest x per optimizer; the book prints nothing).
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
INIT = (-7.0, 2.0)
STEPS = 30
OPTIMIZERS = {"SGD": ("sgd", 0.95), "Momentum": ("momentum", 0.1), "AdaGrad": ("adagrad", 1.5),
              "Adam": ("adam", 0.3), "Nesterov": ("nesterov", 0.1), "RMSprop": ("rmsprop", 0.1),
              "AdaDelta": ("adadelta", 1.0)}
BOOK = ("SGD", "Momentum", "AdaGrad", "Adam")  # the book's four; the others are fnn's additions


def LESSON(result: dict) -> None:
    """What the book's figure shows, asserted on a run's result.json (tests/test_experiments.py)."""
    m = result["metrics"]
    assert m["SGD"]["y_sign_changes"] >= 25, "SGD should zig-zag in y (Fig. 6-8)"
    assert m["Momentum"]["max_x"] > 0.5, "Momentum should roll past the minimum like a ball"
    assert min(BOOK, key=lambda k: m[k]["final_f"]) == "AdaGrad", "AdaGrad should end closest (§6.1.7)"


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
    args = ex.parser(NAME, __doc__).parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        paths = {name: path(optim.get(opt, learning_rate=lr)) for name, (opt, lr) in OPTIMIZERS.items()}

    X, Y = np.meshgrid(np.arange(-10, 10, 0.01), np.arange(-5, 5, 0.01))
    Z = X ** 2 / 20.0 + Y ** 2
    Z[Z > 7] = 0  # the book's trick: hide the outer contours
    fig, axes = plt.subplots(2, 4, figsize=(16, 8), layout="constrained")
    for ax, (name, pts) in zip(axes.flat, paths.items(), strict=False):
        ax.contour(X, Y, Z)
        ax.plot(pts[:, 0], pts[:, 1], "o-", color="red", ms=3)
        ax.plot(0, 0, "+", color="k", ms=10)
        extra = "" if name in BOOK else ", not in the book's figure"
        ax.set(xlim=(-10, 10), ylim=(-10, 10), xlabel="x", ylabel="y",
               title=f"{name} (lr {OPTIMIZERS[name][1]}{extra})")
    ax = axes.flat[-1]
    for i, (name, pts) in enumerate(paths.items()):
        ax.semilogy(np.arange(STEPS + 1), f({"x": pts[:, 0], "y": pts[:, 1]}), color=f"C{i}",
                    ls="-" if name in BOOK else "--", label=name)
    ax.set(xlabel="step", ylabel="f(x, y)", title="f along each path (dashed: not in the book)")
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    fig.suptitle(f"f(x, y) = x²/20 + y², {STEPS} steps from {INIT} (DLFS1 Fig. 6-8, plus three)")
    ex.save_figure(fig, out / "optimizer_compare_naive.png")

    metrics = {name: {"final_x": float(p[-1, 0]), "final_y": float(p[-1, 1]),
                      "final_f": float(p[-1, 0] ** 2 / 20 + p[-1, 1] ** 2),
                      "y_sign_changes": int(np.sum(np.sign(p[1:, 1]) * np.sign(p[:-1, 1]) < 0)),
                      "max_x": float(p[:, 0].max())} for name, p in paths.items()}
    config = {"init": INIT, "steps": STEPS,
              "optimizers": {k: {"rule": v[0], "learning_rate": v[1]} for k, v in OPTIMIZERS.items()}}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            book_ref={"section": "DLFS1 §6.1.7", "figures": ["Fig. 6-8"],
                                      "script": "ch06/optimizer_compare_naive.py",
                                      "note": "the book draws the paths and states no number"},
                            paths={k: v.tolist() for k, v in paths.items()})
    ex.report([f"{k:9s} ends at ({m['final_x']:+.3f}, {m['final_y']:+.3f}), f = {m['final_f']:.4g}, "
               f"y changes sign {m['y_sign_changes']} times, largest x {m['max_x']:+.3f}"
               for k, m in metrics.items()] + [f"wrote {out / 'optimizer_compare_naive.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

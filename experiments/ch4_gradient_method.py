"""Gradient descent on x0² + x1², lr too large/small (DLFS1 §4.4.1, Fig. 4-10; book: x ~ 1e-10).
Book: lr 0.1 -> [-6.11110793e-10, 8.14814391e-10], lr 10 -> [-2.58983747e+13, -1.29524862e+12],
lr 1e-10 -> [-2.99999994, 3.99999992].

x <- x - lr * grad f(x) (equation 4.7) with the book's numerical gradient (h = 1e-4), run by
`fnn.gradient.gradient_descent` as one `lax.scan`, in float64. The book's three runs of 100 steps:
lr = 0.1 reaches the minimum (0, 0); lr = 10 diverges; lr = 1e-10 hardly moves. The figure shows
the first 20 steps of lr = 0.1 (Fig. 4-10) beside a zig-zagging lr = 0.95 and a slow lr = 0.01,
and f(x) per step for each learning rate.

The lr = 10 run diverges to a value that depends on rounding: the exact update x <- -19 x would
reach about 1e128, but once x is large, x + h == x in float64 and the numerical gradient breaks
down (the book's 2.6e13 shows the same breakdown); we report the value we get.

Writes ``gradient_method.png`` and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.gradient import gradient_descent, numerical_gradient
from fnn_experiments import _common as ex

NAME = "ch4_gradient_method"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
BOOK = {"0.1": [-6.11110793e-10, 8.14814391e-10], "10.0": [-2.58983747e+13, -1.29524862e+12],
        "1e-10": [-2.99999994, 3.99999992]}


def function_2(x):
    """f(x0, x1) = x0^2 + x1^2 (DLFS1 §4.3.3, equation 4.6)."""
    return jnp.sum(x ** 2)


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    def grad_f(x):
        return numerical_gradient(function_2, x)

    with ex.Timer() as timer, jax.enable_x64(True):
        init_x = jnp.array([-3.0, 4.0])
        finals = {k: np.asarray(gradient_descent(grad_f, init_x, lr=float(k), step_num=100)[0])
                  for k in BOOK}
        exact = {k: np.asarray(gradient_descent(jax.grad(function_2), init_x, lr=float(k),
                                                step_num=100)[0]) for k in BOOK}
        paths = {lr: np.asarray(gradient_descent(grad_f, init_x, lr=lr, step_num=20)[1])
                 for lr in (0.1, 0.95, 0.01)}
        lrs = (10.0, 1.0, 0.95, 0.5, 0.1, 0.01, 1e-10)
        f_hist = {lr: np.sum(np.asarray(gradient_descent(grad_f, init_x, lr=lr, step_num=100)[1]) ** 2,
                             axis=1) for lr in lrs}

    fig, (ax, ax_f) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    ax.plot([-5, 5], [0, 0], "--b", lw=0.8)
    ax.plot([0, 0], [-5, 5], "--b", lw=0.8)
    for lr, style in ((0.1, "o"), (0.95, "s-"), (0.01, "^")):
        path = paths[lr]
        ax.plot(path[:, 0], path[:, 1], style, ms=4, lw=0.6, label=f"lr = {lr}")
    ax.set(xlim=(-3.5, 3.5), ylim=(-4.5, 4.5), xlabel="X0", ylabel="X1",
           title="20 steps from (-3, 4) (lr 0.1: Fig. 4-10)")
    ax.legend()
    for lr in lrs:
        ax_f.semilogy(np.maximum(f_hist[lr], 1e-300), label=f"lr = {lr:g}")
    ax_f.set(xlabel="step", ylabel="f(x) = x0² + x1²", title="too large diverges, too small stalls",
             ylim=(1e-30, 1e40))
    ax_f.legend(fontsize=8, ncol=2)
    ex.save_figure(fig, out / "gradient_method.png")

    metrics = {"final_x": {k: v.tolist() for k, v in finals.items()}, "book": BOOK,
               "final_x_exact_gradient": {k: v.tolist() for k, v in exact.items()},
               "final_f": {f"{lr:g}": float(f_hist[lr][-1]) for lr in lrs}}
    path = ex.save_result(out, NAME, args, config={"init_x": [-3.0, 4.0], "step_num": 100, "h": 1e-4,
                                                   "dtype": "float64"}, metrics=metrics,
                          seconds=timer.seconds)
    ex.report([f"lr = {k:>5}: x = {np.array2string(finals[k], precision=8)}  (book "
               f"{np.array2string(np.array(BOOK[k]), precision=8)}; exact gradient "
               f" {np.array2string(exact[k], precision=8)})" for k in BOOK] +
              [f"wrote {out / 'gradient_method.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

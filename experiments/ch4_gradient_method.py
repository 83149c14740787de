"""Gradient descent on x0² + x1², lr too large/small (DLFS1 §4.4.1, Fig. 4-10; book: x ~ 1e-10).
Book: lr 0.1 -> [-6.11110793e-10, 8.14814391e-10], lr 10 -> [-2.58983747e+13, -1.29524862e+12],
lr 1e-10 -> [-2.99999994, 3.99999992].

x <- x - lr * grad f(x) (equation 4.7) with the book's numerical gradient (h = 1e-4), run by
`fnn.gradient.gradient_descent` as one `lax.scan`, in float64. The book's three runs of 100 steps:
lr = 0.1 reaches the minimum (0, 0); lr = 10 diverges; lr = 1e-10 hardly moves. The figure shows
the first 20 steps of lr = 0.1 (Fig. 4-10) beside a zig-zagging lr = 0.95 and a slow lr = 0.01.

The lr = 10 run diverges, and where it stops is rounding: the exact update x <- x - 10 · 2x = -19 x
reaches about 1e128 after 100 steps, but once |x| >= 2^40 (about 1.1e12) the spacing of float64
numbers near x is larger than 2h, so x + h and x - h round to x, the numerical gradient is
exactly 0 and x stops moving: at step 10, at [-2.59e13, -1.30e12] (f about 6.7e26), as the book's
2.6e13. Where exactly is rounding: from step 2 on, XLA's compiled f rounds some perturbed values one
unit differently from NumPy's, so fnn's x1 stops 2e-3 (relative) away from the book's. The third
panel draws this, with the exact-gradient run beside it. The second panel draws
f per step for lr = 1 (x <- -x: f stays 25, as with lr = 1e-10, but jumping between (-3, 4) and
(3, -4)), 0.95 (zig-zags in), 0.5 (the minimum in one step, up to rounding), 0.1, 0.01 and 1e-10.

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
BOOK = {"0.1": [-6.11110793e-10, 8.14814391e-10], "10.0": [-2.58983747e+13, -1.29524862e+12],
        "1e-10": [-2.99999994, 3.99999992]}


def function_2(x):
    """f(x0, x1) = x0^2 + x1^2 (DLFS1 §4.3.3, equation 4.6)."""
    return jnp.sum(x ** 2)


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
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
                 for lr in (0.1, 0.95, 0.01, 1.0)}
        lrs = (1.0, 0.95, 0.5, 0.1, 0.01, 1e-10)
        f_hist = {lr: np.sum(np.asarray(gradient_descent(grad_f, init_x, lr=lr, step_num=100)[1]) ** 2,
                             axis=1) for lr in lrs}
        big = {"numerical gradient (the book's)": grad_f, "exact gradient (jax.grad)": jax.grad(function_2)}
        big = {name: np.abs(np.asarray(gradient_descent(g, init_x, lr=10.0, step_num=100)[1])).max(axis=1)
               for name, g in big.items()}
    frozen = int(np.argmax(big["numerical gradient (the book's)"] == big["numerical gradient (the book's)"][-1]))
    # x + h rounds to x once the spacing of float64 numbers near x, 2^(floor(log2 |x|) - 52), exceeds 2h
    limit = 2.0 ** np.ceil(52 + np.log2(2 * 1e-4))  # 2^40

    colours = {1.0: "tab:purple", 0.95: "tab:orange", 0.5: "tab:pink", 0.1: "tab:blue", 0.01: "tab:green",
               1e-10: "tab:brown"}  # one colour per learning rate in the first two panels
    fig, (ax, ax_f, ax_big) = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
    ax.plot([-5, 5], [0, 0], "--b", lw=0.8)
    ax.plot([0, 0], [-5, 5], "--b", lw=0.8)
    for lr, style in ((0.1, "o"), (0.95, "s-"), (0.01, "^")):
        path = paths[lr]
        ax.plot(path[:, 0], path[:, 1], style, ms=4, lw=0.6, color=colours[lr], label=f"lr = {lr}")
    ax.plot(paths[1.0][:, 0], paths[1.0][:, 1], "D:", ms=9, mfc="none", lw=0.8, color="tab:purple",
            label="lr = 1: (-3, 4) <-> (3, -4)")
    ax.set(xlim=(-3.5, 3.5), ylim=(-4.5, 4.5), xlabel="$x_0$", ylabel="$x_1$",
           title="20 steps from (-3, 4) (lr 0.1: Fig. 4-10)")
    ax.legend()
    styles = {1.0: dict(ls="none", marker="D", mfc="none", ms=7, markevery=10), 1e-10: dict(lw=2)}
    for lr in lrs:
        ax_f.semilogy(np.maximum(f_hist[lr], 1e-300), label=f"lr = {lr:g}", color=colours[lr], **styles.get(lr, {}))
    ax_f.annotate("f stays 25: lr = 1 (x -> -x) and\nlr = 1e-10 (x hardly moves)", (55, 25),
                  xytext=(30, 1e6), fontsize=8, arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax_f.annotate("lr = 0.5: the minimum in one step, then\nx + h and x - h round alike (f ~ 1e-42)",
                  (2, 1.5e-42), xytext=(12, 1e-34), fontsize=8, arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax_f.set(xlabel="step", ylabel="f(x) = $x_0^2 + x_1^2$", title="too small stalls, 0.5 < lr < 1 zig-zags",
             ylim=(1e-45, 1e12))
    ex.legend_below(ax_f, ncol=3)
    for name, norm in big.items():
        ax_big.semilogy(norm, ".-" if name.startswith("numerical") else "--", ms=3, label=name,
                        color="k" if name.startswith("numerical") else "0.5")  # not the lr colours
    ax_big.axhline(limit, color="0.5", lw=0.8, ls=":")
    ax_big.text(98, 1e20, f"dotted: |x| = 2^{np.log2(limit):.0f} = {limit:.1e}; beyond it the float64\n"
                "spacing exceeds 2h, x ± h == x, the numerical\ngradient is 0 and x stops",
                ha="right", va="bottom", fontsize=8)
    ax_big.set(xlabel="step", ylabel="max |$x_i$|", ylim=(1, 1e140),
               title=f"lr = 10 diverges (x *= -19 each step); the\nnumerical path freezes at step {frozen} "
                     f"(the book's 2.6e13)")
    ax_big.legend(fontsize=8, loc="upper left")
    fig.suptitle("Gradient descent on f(x) = $x_0^2 + x_1^2$ from (-3, 4), numerical gradient with h = 1e-4 "
                 "(DLFS1 §4.4.1)")
    ex.save_figure(fig, out / "gradient_method.png")

    metrics = {"final_x": {k: v.tolist() for k, v in finals.items()},
               "final_x_exact_gradient": {k: v.tolist() for k, v in exact.items()},
               "final_f": {f"{lr:g}": float(f_hist[lr][-1]) for lr in lrs},
               "lr10_frozen_from_step": frozen,
               "lr10_exact_final_max_abs_x": float(big["exact gradient (jax.grad)"][-1])}
    path = ex.save_result(out, NAME, args, config={"init_x": [-3.0, 4.0], "step_num": 100, "h": 1e-4,
                                                   "dtype": "float64"}, metrics=metrics,
                          seconds=timer.seconds, book={"final_x": BOOK},
                          book_ref={"section": "DLFS1 §4.4.1", "figures": ["Fig. 4-10"],
                                    "script": "ch04/gradient_method.py", "approx": ["final_x.10.0"],
                                    "note": "lr = 10: where x freezes is decided by rounding once |x| > 2^40; "
                                            "XLA's compiled arithmetic rounds some steps differently from "
                                            "NumPy's (it may fuse a multiply and an add into one rounding), "
                                            "so x1 stops 2e-3 (relative) away from the book's"})
    ex.report([f"lr = {k:>5}: x = {np.array2string(finals[k], precision=8)}  (book "
               f"{np.array2string(np.array(BOOK[k]), precision=8)}; exact gradient "
               f" {np.array2string(exact[k], precision=8)})" for k in BOOK] +
              [f"wrote {out / 'gradient_method.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

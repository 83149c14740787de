"""The perceptron rule learns AND, NAND, OR, never XOR (DLFS1 §2.3–2.4 + Rosenblatt; book: 0001, 1110, 0111).
The book sets the weights by hand; the learned gates must give its truth tables.

The book chooses the gates' weights by hand and notes that a machine should find them (§2.3.1).
Rosenblatt's rule does: for each input, y = [w · x + b > 0], then w += lr (t - y) x, b += lr (t - y)
(`fnn.perceptron.perceptron_learn`, one `lax.scan`). Starting from zero weights with lr 0.1, it
reaches zero errors on AND (epoch 6, w = (0.1, 0.2), b = -0.2), NAND (epoch 6, w = (-0.1, -0.2),
b = 0.3) and OR (epoch 4, w = (0.1, 0.1), b = 0); on XOR the error count never reaches zero because
no line separates XOR (§2.4). A fifth panel learns a random linearly separable cloud of 200 points
(kept 0.05 away from the true line, so the rule provably converges).

The arithmetic is exact. From zero weights every update adds ±lr times a 0/1 input, so after any
number of steps w = lr · (integers) and b = lr · (an integer), and y = [w · x + b > 0] does not
depend on lr. The run therefore learns the gates with lr = 1 in integers (exact in float32) and
reports w = lr · those integers. Summing 0.1 in float32 instead rounds: the learned lines pass
through inputs (w · x + b = 0, so y = 0), and a rounding error of 1e-8 can decide such a point.

Writes ``perceptron_learning.png`` (decision lines, errors per epoch) and ``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from fnn import perceptron as P
from fnn_experiments import _common as ex

NAME = "ch2_perceptron_learning"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--lr": {"type": "float", "default": 0.1, "help": "learning rate of the rule (default 0.1)"},
    "--epochs": {"type": "count", "default": 20, "help": "passes over the four inputs (default 20)"},
}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    x = P.INPUTS.astype(jnp.float32)
    kx, kw = jax.random.split(jax.random.key(args.seed))
    cloud = jax.random.uniform(kx, (400, 2), minval=-1.0, maxval=1.0)
    w_true = jax.random.normal(kw, (2,))
    margin = (cloud @ w_true + 0.2) / jnp.linalg.norm(w_true)  # signed distance to the true line
    cloud = cloud[jnp.abs(margin) > 0.05][:200]  # a margin: the rule provably converges (Novikoff)
    t_cloud = (cloud @ w_true + 0.2 > 0).astype(jnp.int32)
    with ex.Timer() as timer:
        learned, steps = {}, {}
        for name in ("AND", "NAND", "OR", "XOR"):
            # lr = 1 from zeros: integer weights, exact; the weights for lr are lr times these
            steps[name], errors = P.perceptron_learn(x, P.truth_table(name), lr=1.0, epochs=args.epochs)
            learned[name] = (P.Perceptron(args.lr * np.asarray(steps[name].w, np.float64),
                                          args.lr * np.float64(steps[name].b)), np.asarray(errors))
        params_c, errors_c = P.perceptron_learn(cloud, t_cloud, lr=args.lr, epochs=max(args.epochs, 100))

    fig, axes = plt.subplots(2, 3, figsize=(14, 9), layout="constrained")
    for ax, name in zip(axes.ravel()[:4], learned, strict=True):
        params, errors = learned[name]
        ex.plot_gate(ax, params, P.truth_table(name), f"{name}: {int(errors[-1])} errors in the last epoch",
                     color="tab:red" if name == "XOR" else "tab:blue")
        on_line = np.asarray(P.INPUTS)[np.asarray(P.INPUTS @ steps[name].w.astype(jnp.int32)
                                                  + steps[name].b.astype(jnp.int32)) == 0]
        if on_line.size:
            ax.scatter(on_line[:, 0], on_line[:, 1], s=360, facecolors="none", edgecolors="tab:purple",
                       lw=1.5, zorder=4, label="on the line: w·x + b = 0, so y = 0")
        handles, labels = ax.get_legend_handles_labels()
        order = [0, 3, 1, 2] if on_line.size else [0, 1, 2]  # line and ring, then the two classes
        ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False, markerscale=0.6)
    ax = axes[1, 1]
    c, tc = np.asarray(cloud), np.asarray(t_cloud)
    ax.scatter(c[tc == 0, 0], c[tc == 0, 1], marker="o", s=14, facecolors="white", edgecolors="k")
    ax.scatter(c[tc == 1, 0], c[tc == 1, 1], marker="^", s=14, color="tab:gray")
    g = np.linspace(-1, 1, 50)
    w, b = np.asarray(params_c.w), float(params_c.b)
    ax.plot(g, -(w[0] * g + b) / w[1], "tab:blue", label="learned")
    ax.plot(g, -(float(w_true[0]) * g + 0.2) / float(w_true[1]), "k:", label="true")
    ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title=f"{c.shape[0]} separable points: {int(errors_c[-1])} errors at the end")
    ex.legend_below(ax, ncol=2)
    ax = axes[1, 2]
    styles = {"AND": "o-", "NAND": "s--", "OR": "^:", "XOR": "D-"}
    for name, (_, errors) in learned.items():
        ax.plot(np.arange(1, errors.size + 1), errors, styles[name], ms=5, mfc="none", label=name)
    ax.set(xlabel="epoch", ylabel="misclassified inputs in the epoch", title="errors per epoch (of 4)",
           yticks=range(5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.suptitle(f"The perceptron rule, w += lr (t - y) x, from zero weights (lr {args.lr}, exact arithmetic)")
    ex.save_figure(fig, out / "perceptron_learning.png")

    def first_zero(errors):
        zero = np.flatnonzero(np.asarray(errors) == 0)
        return int(zero[0]) + 1 if zero.size else None

    metrics = {name: {"w": np.asarray(prm.w).tolist(), "b": float(prm.b),
                      "w_over_lr": np.asarray(steps[name].w).astype(int).tolist(),
                      "b_over_lr": int(steps[name].b), "errors_per_epoch": err.tolist(),
                      "converged_epoch": first_zero(err),
                      "truth_table": np.asarray(P.perceptron(steps[name], x)).tolist()}
               for name, (prm, err) in learned.items()}
    metrics["cloud"] = {"final_errors": int(errors_c[-1]), "converged_epoch": first_zero(errors_c)}
    path = ex.save_result(out, NAME, args, config={"lr": args.lr, "epochs": args.epochs,
                                                   "init": "zeros", "arithmetic": "exact (lr = 1 in "
                                                   "integers, scaled by lr)", "cloud_points": int(cloud.shape[0]),
                                                   "cloud_margin": 0.05,
                                                   "cloud_epochs": max(args.epochs, 100)},
                          metrics=metrics, seconds=timer.seconds,
                          book={name: {"truth_table": np.asarray(P.truth_table(name)).tolist()}
                                for name in ("AND", "NAND", "OR")},
                          book_ref={"section": "DLFS1 §2.3–2.4", "figures": ["Fig. 2-6", "Fig. 2-7"],
                                    "note": "the book sets the weights by hand; the learned gates must "
                                            "give its truth tables"})
    lines = [f"{name:>4}: w = {np.round(m['w'], 12).tolist()}, b = {m['b']:+.3g}, table "
             f"{m['truth_table']}, zero errors from epoch {m['converged_epoch']}"
             for name, m in metrics.items() if name != "cloud"]
    lines += [f"cloud: {metrics['cloud']['final_errors']} errors in the last epoch "
              f"(zero from epoch {metrics['cloud']['converged_epoch']})",
              f"wrote {out / 'perceptron_learning.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

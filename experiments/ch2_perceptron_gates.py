"""AND, NAND, OR perceptrons with the book's weights (DLFS1 §2.3, Fig. 2-6; book: AND 0001, OR 0111).
Book: the truth tables AND 0 0 0 1, NAND 1 1 1 0, OR 0 1 1 1 (§2.2).

Each gate is one perceptron y = 1 if w · x + b > 0 else 0 with the weights the book sets by hand
(AND 0.5, 0.5, -0.7; NAND -0.5, -0.5, 0.7; OR 0.5, 0.5, -0.2). The run prints each truth table
(book: AND 0 0 0 1, NAND 1 1 1 0, OR 0 1 1 1) and draws each gate's line w · x + b = 0 with the
region where it outputs 1 shaded, as the book's Fig. 2-6 draws OR.

Writes ``perceptron_gates.png`` and ``result.json``. ``--quick`` is the same run (it takes a second).
"""

from __future__ import annotations

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import experiment as ex
from fnn import perceptron as P

NAME = "ch2_perceptron_gates"
BOOK_TABLES = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


def plot_points(ax, targets, title: str) -> None:
    """The four inputs, 0 as circles and 1 as triangles (the book's markers), on the unit square."""
    x = np.asarray(P.INPUTS)
    targets = np.asarray(targets)
    for value, marker, label in ((0, "o", "y = 0"), (1, "^", "y = 1")):
        sel = targets == value
        ax.scatter(x[sel, 0], x[sel, 1], marker=marker, s=110, facecolors="white" if value == 0
                   else "tab:gray", edgecolors="k", zorder=3, label=label)
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xlabel="$x_1$", ylabel="$x_2$", title=title,
           aspect="equal")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)


def plot_gate(ax, params: P.Perceptron, targets, title: str, color: str = "tab:blue") -> None:
    """A perceptron's line w · x + b = 0 and the half-plane where it outputs 1, with the four inputs."""
    g = np.linspace(-0.5, 1.5, 201)
    X1, X2 = np.meshgrid(g, g)
    grid = jnp.asarray(np.stack([X1.ravel(), X2.ravel()], axis=1), jnp.float32)  # (G, 2)
    Y = np.asarray(P.perceptron(params, grid)).reshape(X1.shape)
    ax.contourf(X1, X2, Y, levels=[0.5, 1.5], colors=[color], alpha=0.18)
    w1, w2 = (float(v) for v in params.w)
    b = float(params.b)
    if abs(w2) > 1e-12:
        ax.plot(g, -(w1 * g + b) / w2, color=color, lw=1.8,
                label=f"{w1:+.2g} x1 {w2:+.2g} x2 {b:+.2g} = 0")
    plot_points(ax, targets, title)


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        tables = {name: np.asarray(P.truth_table(name)).tolist() for name in ("AND", "NAND", "OR")}
        params = {name: P.gate_params(name) for name in tables}

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax, name in zip(axes, tables, strict=True):
        plot_gate(ax, params[name], tables[name], f"{name} (DLFS1 §2.3.3)")
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle("Perceptron gates with the book's weights: the line w·x + b = 0 and where y = 1")
    ex.save_figure(fig, out / "perceptron_gates.png")

    metrics = {"truth_tables": tables,
               "matches_book": all(tables[k] == BOOK_TABLES[k] for k in tables),
               "weights": {k: {"w": np.asarray(v.w).tolist(), "b": float(v.b)}
                           for k, v in params.items()}}
    path = ex.save_result(out, NAME, args, config={"inputs": np.asarray(P.INPUTS).tolist()},
                          metrics=metrics, seconds=timer.seconds)
    lines = ["x1 x2 | " + " ".join(f"{k:>4}" for k in tables)]
    for i, (x1, x2) in enumerate(np.asarray(P.INPUTS)):
        lines.append(f" {x1}  {x2} | " + " ".join(f"{tables[k][i]:>4}" for k in tables))
    lines += [f"matches the book's truth tables: {metrics['matches_book']}",
              f"wrote {out / 'perceptron_gates.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

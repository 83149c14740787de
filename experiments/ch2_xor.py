"""XOR: no line separates it, two perceptron layers compute it (DLFS1 §2.4–2.5, Fig. 2-8; book: 0110).
Book: XOR 0 1 1 0 on (0, 0), (1, 0), (0, 1), (1, 1) (Fig. 2-12).

Left: the XOR points with OR's line — one side still holds both classes (Fig. 2-7). Middle: the
region a two-layer perceptron carves out, s1 = NAND(x1, x2), s2 = OR(x1, x2), y = AND(s1, s2)
(§2.5.2): the band between the NAND and OR lines, a region no single line bounds (Fig. 2-8).
Right: the hidden layer's view — in (s1, s2) the four inputs become AND's problem, which one line
solves. The run prints the book's table of x1, x2, s1, s2, y (Fig. 2-12).

Writes ``xor.png`` and ``result.json``. ``--quick`` is the same run (it takes a second).
"""

from __future__ import annotations

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import perceptron as P
from fnn_experiments import _common as ex

NAME = "ch2_xor"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
# The book's truth table of the two-layer XOR (Fig. 2-12): x1, x2, s1, s2, y.
BOOK_TABLE = [[0, 0, 1, 0, 0], [1, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 0, 1, 0]]


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        x1, x2 = P.INPUTS[:, 0], P.INPUTS[:, 1]
        s1, s2 = P.NAND(x1, x2), P.OR(x1, x2)
        y = P.AND(s1, s2)
        xor = P.truth_table("XOR")
        table = np.stack([np.asarray(a) for a in (x1, x2, s1, s2, y)], axis=1)  # (4, 5)

    fig, axes = plt.subplots(1, 3, figsize=(13, 5), layout="constrained")
    ex.plot_gate(axes[0], P.gate_params("OR"), xor, "XOR with OR's line: one side\nholds both classes "
              "(Fig. 2-7)", color="tab:orange")
    g = np.linspace(-0.5, 1.5, 301)
    G1, G2 = np.meshgrid(g, g)
    Y = np.asarray(P.XOR(jnp.asarray(G1.ravel()), jnp.asarray(G2.ravel()))).reshape(G1.shape)
    axes[1].contourf(G1, G2, Y, levels=[0.5, 1.5], colors=["tab:green"], alpha=0.2)
    for name, color in (("NAND", "tab:red"), ("OR", "tab:orange")):
        w, b = P.gate_params(name)
        axes[1].plot(g, -(float(w[0]) * g + float(b)) / float(w[1]), color=color, lw=1.5,
                     label=f"{name} line")
    ex.plot_points(axes[1], xor, "two layers: y = AND(NAND, OR)\nis 1 between the lines (Fig. 2-8)")
    ex.legend_below(axes[1], ncol=4)
    hidden = np.stack([np.asarray(s1), np.asarray(s2)], axis=1)
    ex.plot_gate(axes[2], P.gate_params("AND"), P.truth_table("AND"), "the hidden layer (s1, s2):\n"
              "AND separates it with one line", color="tab:green", names=("s1", "s2"))
    for (u, v) in {tuple(h) for h in hidden.tolist()}:
        xs = ", ".join(f"({a},{b})" for (a, b), h in zip(np.asarray(P.INPUTS), hidden, strict=True)
                       if tuple(h) == (u, v))
        axes[2].annotate(f"from x = {xs}", (u, v), textcoords="offset points", xytext=(0, -22),
                         ha="center", fontsize=8)
    axes[2].annotate("no input lands here", (0, 0), textcoords="offset points", xytext=(0, -22),
                     ha="center", fontsize=8, color="0.4")
    axes[2].set(xlabel="$s_1$ = NAND($x_1$, $x_2$)", ylabel="$s_2$ = OR($x_1$, $x_2$)")
    ex.legend_below(axes[0], ncol=3)
    ex.legend_below(axes[2], ncol=3)
    fig.suptitle("XOR is not linearly separable; a two-layer perceptron computes it (DLFS1 §2.4–2.5)")
    ex.save_figure(fig, out / "xor.png")

    metrics = {"table": {"columns": ["x1", "x2", "s1", "s2", "y"], "rows": table.tolist()},
               "xor": np.asarray(xor).tolist(),
               "matches_book": np.asarray(xor).tolist() == [0, 1, 1, 0]
               and np.array_equal(np.asarray(y), np.asarray(xor)) and table.tolist() == BOOK_TABLE}
    path = ex.save_result(out, NAME, args, config={"layers": "s1 = NAND, s2 = OR, y = AND(s1, s2)"},
                          metrics=metrics, seconds=timer.seconds,
                          book={"xor": [0, 1, 1, 0], "table": {"rows": BOOK_TABLE}},
                          book_ref={"section": "DLFS1 §2.4–2.5", "figures": ["Fig. 2-7", "Fig. 2-8",
                                                                               "Fig. 2-12"],
                                    "script": "ch02/xor_gate.py"})
    lines = ["x1 x2 | s1 s2 | y   (DLFS1 Fig. 2-12)"]
    lines += [f" {r[0]}  {r[1]} |  {r[2]}  {r[3]} | {r[4]}" for r in table]
    lines += [f"matches the book's XOR (0 1 1 0) and table: {metrics['matches_book']}",
              f"wrote {out / 'xor.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

"""AND, NAND, OR perceptrons with the book's weights (DLFS1 §2.3, Fig. 2-6; book: AND 0001, OR 0111).
Book: the truth tables AND 0 0 0 1, NAND 1 1 1 0, OR 0 1 1 1 (§2.2).

Each gate is one perceptron y = 1 if w · x + b > 0 else 0 with the weights the book sets by hand
(AND 0.5, 0.5, -0.7; NAND -0.5, -0.5, 0.7; OR 0.5, 0.5, -0.2). The run prints each truth table
(book: AND 0 0 0 1, NAND 1 1 1 0, OR 0 1 1 1) and draws each gate's line w · x + b = 0 with the
region where it outputs 1 shaded, as the book's Fig. 2-6 draws OR.

Writes ``perceptron_gates.png`` and ``result.json``. ``--quick`` is the same run (it takes a second).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from fnn import perceptron as P
from fnn_experiments import _common as ex

NAME = "ch2_perceptron_gates"
BOOK_TABLES = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        tables = {name: np.asarray(P.truth_table(name)).tolist() for name in ("AND", "NAND", "OR")}
        params = {name: P.gate_params(name) for name in tables}

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), layout="constrained")
    for ax, name in zip(axes, tables, strict=True):
        ex.plot_gate(ax, params[name], tables[name], f"{name} (DLFS1 §2.3.3)")
        ex.legend_below(ax, ncol=3)
    fig.suptitle("Perceptron gates with the book's weights: the line w·x + b = 0; shaded where y = 1")
    ex.save_figure(fig, out / "perceptron_gates.png")

    metrics = {"truth_tables": tables,
               "matches_book": all(tables[k] == BOOK_TABLES[k] for k in tables),
               "weights": {k: {"w": np.asarray(v.w).tolist(), "b": float(v.b)}
                           for k, v in params.items()}}
    path = ex.save_result(out, NAME, args, config={"inputs": np.asarray(P.INPUTS).tolist()},
                          metrics=metrics, seconds=timer.seconds,
                          book={"truth_tables": {k: BOOK_TABLES[k] for k in tables}},
                          book_ref={"section": "DLFS1 §2.3", "figures": ["Fig. 2-6"],
                                    "script": "ch02/and_gate.py, nand_gate.py, or_gate.py"})
    lines = ["x1 x2 | " + " ".join(f"{k:>4}" for k in tables)]
    for i, (x1, x2) in enumerate(np.asarray(P.INPUTS)):
        lines.append(f" {x1}  {x2} | " + " ".join(f"{tables[k][i]:>4}" for k in tables))
    lines += [f"matches the book's truth tables: {metrics['matches_book']}",
              f"wrote {out / 'perceptron_gates.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

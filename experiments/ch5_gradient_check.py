"""Gradient check: backprop vs numerical vs jax.grad (DLFS1 §5.7.3; book: |diff| 1e-13 to 1e-10).
Book: mean absolute differences W1 2.2e-13, b1 9.7e-13, W2 8.4e-13, b2 1.2e-10.

The book's chapter-5 TwoLayerNet (784-50-10, ReLU, weights N(0, 0.01^2)) on the first three
training images: `fnn.gradient.gradient_check` compares the hand-written backprop
(`fnn.models.mlp.manual_grad`), ``jax.grad`` of the same loss, and the numerical gradient (central
differences, h = 1e-4 as the book: 79,520 loss evaluations, in one compiled loop). The table gives,
per parameter, the book's measure — the mean absolute difference — for each pair, and the largest
relative error (`fnn.gradient.relative_error`). Float64, as the book's NumPy; backprop and
``jax.grad`` agree to rounding (about 1e-16), and the numerical gradient to its truncation error.

Full mode: MNIST's first three training images and the book's 784-50-10 net, 39,760 parameters:
every one of the 79,520 loss evaluations recomputes the network (§4.5's "numerical gradients are
slow"), seconds here. ``--quick``: the first three 8x8 embedded digits and a 64-50-10 net (3,760
parameters). Writes ``gradient_check.png`` (a table and a bar chart) and ``result.json``; prints
`fnn.gradient.GradientCheck`'s table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.gradient import gradient_check
from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch5_gradient_check"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--samples": {"type": "count", "default": 3, "help": "training images in the batch (book: 3)"},
}
PAIRS = (("backprop", "numerical"), ("backprop", "jax.grad"), ("jax.grad", "numerical"))


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    (x_train, t_train), _ = ex.load_data(args, quick="digits")
    D = x_train.shape[1]  # 784 (MNIST) or 64 (the 8x8 digits)
    with ex.Timer() as timer, jax.enable_x64(True):
        x = jnp.asarray(x_train[: args.samples], jnp.float64)
        t = jnp.asarray(t_train[: args.samples])
        params = mlp.init(jax.random.key(args.seed), D, [50], 10, weight_init=0.01,
                          dtype=jnp.float64)

        def loss(p):
            return mlp.loss(p, x, t, activation="relu")

        check = gradient_check(lambda p: mlp.manual_grad(p, x, t, activation="relu")[1], loss, params,
                               h=1e-4, progress=args.progress)
    grads = {"backprop": check.manual, "jax.grad": check.autodiff, "numerical": check.numerical}
    names = ["W1", "b1", "W2", "b2"]
    table = {f"{a} vs {b}": {k: float(np.mean(np.abs(grads[a][k] - grads[b][k]))) for k in names}
             for a, b in PAIRS}
    keys = {"backprop": "manual", "jax.grad": "autodiff", "numerical": "numerical"}
    rel = {f"{a} vs {b}": {k: check[f"{keys[a]}_vs_{keys[b]}"][k] for k in names} for a, b in PAIRS}

    fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(14, 3.8), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.3, 1]})
    ax_t.axis("off")
    cells = [[f"{table[pair][k]:.2e}" for pair in table] + [f"{rel['backprop vs numerical'][k]:.1e}"]
             for k in names]
    tab = ax_t.table(cellText=cells, rowLabels=names, colLabels=[*table, "rel. error\nbackprop vs num."],
                     loc="center", cellLoc="center")
    tab.scale(1, 1.8)
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    ax_t.set_title("mean |difference| per parameter (the book's measure)")
    width = 0.25
    for i, pair in enumerate(table):
        ax_b.bar(np.arange(4) + (i - 1) * width, [max(table[pair][k], 1e-20) for k in names], width,
                 label=pair)
    ax_b.set(yscale="log", xticks=range(4), xticklabels=names, ylabel="mean |difference|",
             title="backprop = jax.grad to rounding; numerical to ~h²")
    ax_b.legend(fontsize=8)
    data = "8x8 embedded digits" if args.quick else "MNIST"
    fig.suptitle(f"Gradient check of TwoLayerNet {D}-50-10 on {args.samples} {data} images, "
                 f"float64, h = 1e-4 (DLFS1 §5.7.3)")
    ex.save_figure(fig, out / "gradient_check.png")

    metrics = {"mean_abs_diff": table, "max_relative_error": rel,
               "max_mean_abs_diff_backprop_vs_numerical": max(table["backprop vs numerical"].values())}
    config = {"data": "digits" if args.quick else "mnist", "samples": args.samples,
              "model": f"TwoLayerNet {D}-50-10 ReLU", "weight_init_std": 0.01, "h": 1e-4,
              "parameters": int(sum(v.size for v in params.values())),
              "dtype": "float64"}
    book = {"W1": 2.2e-13, "b1": 9.7e-13, "W2": 8.4e-13, "b2": 1.2e-10}
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          book={"mean_abs_diff": {"backprop vs numerical": book}},
                          book_ref={"section": "DLFS1 §5.7.3", "script": "ch05/gradient_check.py",
                                    "approx": [f"mean_abs_diff.backprop vs numerical.{k}" for k in book],
                                    "quick_differs": True,
                                    "note": "the book's own random weights: the same orders of magnitude "
                                            "are the point, not the digits"})
    lines = [str(check), "", f"{'':>3} " + "".join(f"{pair:>24}" for pair in table)]
    lines += [f"{k:>3} " + "".join(f"{table[pair][k]:>24.3e}" for pair in table) for k in names]
    lines += [f"largest relative error, backprop vs numerical: "
              f"{max(rel['backprop vs numerical'].values()):.1e}; backprop vs jax.grad: "
              f"{max(rel['backprop vs jax.grad'].values()):.1e}",
              f"wrote {out / 'gradient_check.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

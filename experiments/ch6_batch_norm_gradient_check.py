"""Gradient check of the batch-norm network: backprop vs numerical vs jax.grad (DLFS1 §6.3; book: beta2 0.056).

The book's ch06/batch_norm_gradient_check.py: MultiLayerNetExtend 784-100-100-10 with batch
norm (ReLU, He weights) and the first training image; for every parameter the mean absolute
difference between the backprop gradient and the numerical one (central differences, h = 1e-4),
in float64. fnn adds the third gradient, ``jax.grad`` of the same loss, and two more columns.

The book's printout (its notebooks/ch06.ipynb): 0.0 for every parameter but b3 (1.8e-7) and
beta2 (0.056). The batch of ONE image explains both. Batch norm over one sample subtracts the
sample from itself: every normalised value is 0, every batch-norm output is its beta, so nothing
before the second batch norm affects the loss (their gradients are exactly 0 by every method)
and the second hidden layer computes ReLU(beta2) = ReLU(0): exactly on ReLU's kink. There the
numerical gradient averages the slopes of both sides (half the true right-hand one), while
backprop, like ``jax.grad``, takes ReLU's derivative at 0 to be 0: a disagreement of the method,
not a bug. So fnn also runs the check on a batch of ``--samples`` images (default 10), where
batch norm normalises something and no value sits on a kink: there all three gradients agree,
backprop and ``jax.grad`` to rounding (~1e-17), the numerical gradient to its truncation error.

Full mode: MNIST's first images and the book's 784-100-100-10. ``--quick``: the first 8x8
embedded digits and a 64-100-100-10 net (same layers, 18,000 parameters instead of 90,000).
The book perturbs every parameter; fnn's `fnn.gradient.numerical_gradient` perturbs ``--coordinates``
coordinates of every parameter (default 300, drawn with seed 0; all 100 of a bias, gamma or beta),
and the numerical columns are means over those: 1,510 coordinates (two losses each) instead of
18,000 in quick mode, 90,000 in full mode; ``--coordinates 0`` perturbs every one, as the book does.
Measured in quick mode (seed 0), batch of 1: beta2 0.051, b3 1.2e-10, everything else exactly 0
(as the book's); batch of 10: at most 1.5e-10 between backprop and numerical, 1.7e-17 between
backprop and jax.grad. Measured in full mode (MNIST, seed 0; 10 CPU-seconds): beta2 0.054, b3
1.2e-10, the rest exactly 0; batch of 10: at most 1.7e-10 and 1.7e-17.

Writes ``batch_norm_gradient_check.png`` (bars per parameter, log scale, the book's printout as
diamonds) and ``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch6_batch_norm_gradient_check"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--samples": {"type": "count", "default": 10, "help": "the second check's batch (default 10)"},
    "--coordinates": {"type": "count", "default": 300,  # per parameter, perturbed by the numerical gradient
                      "help": "coordinates of every parameter the numerical gradient perturbs (default 300; "
                              "0: all, as the book)"},
}
H = 1e-4  # the book's numerical_gradient step
NAMES = ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]  # the book's order
BOOK = {"W1": 0.0, "b1": 0.0, "gamma1": 0.0, "beta1": 0.0, "W2": 0.0, "b2": 0.0, "gamma2": 0.0,
        "beta2": 0.05629097639991976, "W3": 0.0, "b3": 1.7990357854824612e-07}  # notebooks/ch06.ipynb


def LESSON(result: dict) -> None:
    """What the book's check shows, and why, asserted on a run's result.json."""
    one, many = result["metrics"]["batch_of_1"], result["metrics"]["batch_of_n"]
    before_bn2 = ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2"]
    assert all(one["backprop vs numerical"][k] == 0.0 for k in before_bn2), \
        "a batch of one: nothing before the second batch norm affects the loss"
    assert one["backprop vs numerical"]["beta2"] > 1e-3 > one["backprop vs jax.grad"]["beta2"], \
        "a batch of one: beta2 sits on ReLU's kink, where the numerical gradient differs (the book's 0.056)"
    assert max(many["backprop vs numerical"].values()) < 1e-7, "a real batch: backprop = numerical"
    assert max(many["backprop vs jax.grad"].values()) < 1e-12, "backprop = jax.grad to rounding"


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    (x_train, t_train), _ = ex.load_data(args, quick="digits")
    D = x_train.shape[1]  # 784 (MNIST) or 64 (the 8x8 digits)
    tables = {}
    with ex.Timer() as timer, jax.enable_x64(True):
        model = mlp.model(D, [100, 100], 10, use_batchnorm=True, dtype=jnp.float64)
        params = model.init(jax.random.key(args.seed))[0]
        for label, n in (("batch_of_1", 1), ("batch_of_n", args.samples)):
            x, t = jnp.asarray(x_train[:n], jnp.float64), jnp.asarray(t_train[:n])
            tables[label] = ex.gradient_table(ex.three_gradients(model, params, x, t, H, args.progress,
                                                                 sample=args.coordinates or None), NAMES)

    fig, axes = plt.subplots(1, 2, figsize=(15, 4.6), layout="constrained", sharey=True)
    ex.plot_gradient_check(axes[0], tables["batch_of_1"], NAMES, "the book's check: a batch of 1 image",
                           book=BOOK)
    ex.plot_gradient_check(axes[1], tables["batch_of_n"], NAMES, f"a batch of {args.samples} images")
    data = "8x8 embedded digits" if args.quick else "MNIST"
    fig.suptitle(f"Gradient check of MultiLayerNetExtend {D}-100-100-10 with batch norm on {data}, float64, "
                 f"h = {H}\nnumerical gradient: {args.coordinates or 'all'} coordinates per parameter "
                 f"(DLFS1 §6.3; 0: exactly 0)")
    ex.save_figure(fig, out / "batch_norm_gradient_check.png")

    metrics = tables
    config = {"data": "digits" if args.quick else "mnist", "samples": [1, args.samples],
              "model": f"MultiLayerNetExtend {D}-100-100-10, batch norm, ReLU, He", "h": H,
              "parameters": int(sum(v.size for v in params.values())), "dtype": "float64",
              "numerical_coordinates_per_parameter": args.coordinates or "all"}
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          book={"batch_of_1": {"backprop vs numerical": BOOK}},
                          book_ref={"section": "DLFS1 §6.3", "figures": [],
                                    "script": "ch06/batch_norm_gradient_check.py",
                                    # the book's errors come from its own random image and He weights
                                    "approx": [f"batch_of_1.backprop vs numerical.{k}" for k in BOOK],
                                    "quick_differs": bool(args.quick)})
    lines = []
    for label, table in tables.items():
        lines.append(f"{label}: " + "  ".join(f"{pair:>22}" for pair in table))
        lines += [f"{k:>8}: " + "  ".join(f"{table[pair][k]:>22.3e}" for pair in table) for k in NAMES]
    ex.report(lines + [f"book (batch of 1, backprop vs numerical): beta2 {BOOK['beta2']:.3g}, b3 {BOOK['b3']:.3g}, "
                       f"the rest 0", f"wrote {out / 'batch_norm_gradient_check.png'} and {path}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

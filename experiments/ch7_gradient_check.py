"""Gradient check of SimpleConvNet: backprop vs numerical vs jax.grad (DLFS1 §7.5; book: W1 1.6e-6).

The book's ch07/gradient_check.py: a small SimpleConvNet (a 1x10x10 input, conv 10@3x3 - ReLU -
pool 2x2 - affine 10 - ReLU - affine 10, weights N(0, 0.01^2)), one random image (uniform in
[0, 1)) with label 1; for every parameter the mean absolute difference between the backprop
gradient and the numerical one (central differences, h = 1e-4), in float64. fnn adds the third
gradient, ``jax.grad`` of the same loss, and its two columns.

The book's printout (its notebooks/ch07.ipynb): W1 1.6e-6, b1 2.9e-6, W2 5.0e-11, b2 3.7e-9,
W3 9.7e-11, b3 1.8e-7. Differences of 1e-6 are not a bug: with weights of 0.01 the layers'
outputs are tiny (the hidden affine layer's about 1e-4), and a step of h = 1e-4 moves some of
them across ReLU's kink at 0 or swaps the winner of a 2x2 max pool; there the central difference
averages two slopes, which backprop never does. Which parameter shows it depends on the random
draw. So the check runs twice: with the book's h = 1e-4 and with h = 1e-6, where far fewer values
lie within h of a kink. Backprop and ``jax.grad`` agree to rounding (~1e-18) either way.

No data set: ``--quick`` and the full mode are the same run (a different random image per
``--seed``). Measured (seed 0), backprop vs numerical at h = 1e-4: 5.2e-5 for b2 (a hidden unit
within 1e-4 of the kink), 1.2e-10 for b3, below 1e-12 for the rest; at h = 1e-6 the kink is
gone and what is left, at most 1.3e-10, is rounding (eps |f| / h, DLFS1 §4.3.1). Backprop vs
jax.grad: at most 1.3e-18.

Writes ``gradient_check.png`` (bars per parameter, log scale, the book's printout as diamonds) and
``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from fnn.models import cnn
from fnn_experiments import _common as ex

NAME = "ch7_gradient_check"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
NAMES = ["W1", "b1", "W2", "b2", "W3", "b3"]
BOOK = {"W1": 1.6044497179764736e-06, "b1": 2.939873711587367e-06, "W2": 5.008540813417003e-11,
        "b2": 3.7115586000446842e-09, "W3": 9.675087890977053e-11, "b3": 1.799112866823771e-07}
CONV_PARAM = {"filter_num": 10, "filter_size": 3, "pad": 0, "stride": 1}


STEPS = (1e-4, 1e-6)  # the book's h, and a smaller one that meets fewer kinks


def LESSON(result: dict) -> None:
    """What the book's check shows, asserted on a run's result.json."""
    book_h, small_h = (result["metrics"][f"h={h:g}"] for h in STEPS)
    for m in (book_h, small_h):
        assert max(m["backprop vs jax.grad"].values()) < 1e-12, "backprop should equal jax.grad to rounding"
    assert max(small_h["backprop vs numerical"].values()) < 1e-7, "away from kinks backprop = numerical"
    assert max(small_h["backprop vs numerical"].values()) < max(book_h["backprop vs numerical"].values()), \
        "a smaller step should meet fewer of ReLU's and max pooling's kinks"


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer, jax.enable_x64(True):
        model = cnn.simple_convnet(input_dim=(1, 10, 10), conv_param=CONV_PARAM, hidden_size=10,
                                   output_size=10, weight_init_std=0.01, dtype=jnp.float64)
        k_init, k_x = jax.random.split(jax.random.key(args.seed))
        params = model.init(k_init)[0]
        x = jax.random.uniform(k_x, (1, 1, 10, 10), jnp.float64)  # the book's np.random.rand
        t = jnp.array([1])
        tables = {f"h={h:g}": ex.gradient_table(ex.three_gradients(model, params, x, t, h, args.progress), NAMES)
                  for h in STEPS}

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained", sharey=True)
    for ax, (label, table) in zip(axes, tables.items(), strict=True):
        ex.plot_gradient_check(ax, table, NAMES, f"{label}" + (" (the book's)" if label == "h=0.0001" else ""),
                               book=BOOK if label == "h=0.0001" else None)
    fig.suptitle("Gradient check of SimpleConvNet (1x10x10 input, conv 10@3x3, affine 10) on a random image, "
                 "float64 (DLFS1 §7.5; 0: exactly 0)")
    ex.save_figure(fig, out / "gradient_check.png")

    config = {"input": "uniform random (1, 1, 10, 10), label 1", "model": "SimpleConvNet 1x10x10, conv 10@3x3, "
              "hidden 10, weight_init_std 0.01", "h": list(STEPS), "dtype": "float64",
              "parameters": int(sum(v.size for v in params.values()))}
    path = ex.save_result(out, NAME, args, config=config, metrics=tables, seconds=timer.seconds,
                          book={"h=0.0001": {"backprop vs numerical": BOOK}},
                          book_ref={"section": "DLFS1 §7.5", "figures": [], "script": "ch07/gradient_check.py",
                                    # the book's errors come from its own NumPy random image and weights
                                    "approx": [f"h=0.0001.backprop vs numerical.{k}" for k in BOOK],
                                    "note": "other random draws than the book's: errors of the same kind, "
                                            "not the same digits"})
    lines = []
    for label, table in tables.items():
        lines.append(f"{label:>6}" + "  ".join(f"{pair:>22}" for pair in table))
        lines += [f"{k:>4}: " + "  ".join(f"{table[pair][k]:>22.3e}" for pair in table) for k in NAMES]
    ex.report(lines + ["book (backprop vs numerical): " + ", ".join(f"{k} {v:.2g}" for k, v in BOOK.items()),
                       f"wrote {out / 'gradient_check.png'} and {path}"])
    return {"config": config, "metrics": tables}


if __name__ == "__main__":
    main()

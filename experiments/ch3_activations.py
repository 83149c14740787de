"""Step, sigmoid, ReLU, softmax, 3-layer forward (DLFS1 §3.2–3.5; book: y = [0.31682708 0.69627909]).
Book: sigmoid(-1, 1, 2) = 0.26894142 0.73105858 0.88079708; forward y = 0.31682708 0.69627909.

Plots the step function (Fig. 3-6), the sigmoid (Fig. 3-7), both together (Fig. 3-8) and ReLU
(Fig. 3-9; with its variant Leaky ReLU dashed, `fnn.functions.leaky_relu`) over x in [-5, 5), and
checks the numbers the book prints:

* sigmoid([-1, 1, 2]) = [0.26894142, 0.73105858, 0.88079708] (§3.2.4)
* the 3-layer network of §3.4.3 (its fixed W1, b1, ..., W3, b3) on x = [1.0, 0.5]:
  y = [0.31682708, 0.69627909]
* softmax([0.3, 2.9, 4.0]) = [0.01821127, 0.24519181, 0.73659691] (§3.5.1)
* softmax([1010, 1000, 990]): the naive form overflows to nan, the max-subtracted form gives
  [9.99954600e-01, 4.53978686e-05, 2.06106005e-09] (§3.5.2)

Computed in float64. Writes ``activations.png`` and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import functions as F
from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch3_activations"
BOOK = {"sigmoid": [0.26894142, 0.73105858, 0.88079708],
        "forward": [0.31682708, 0.69627909],
        "softmax": [0.01821127, 0.24519181, 0.73659691],
        "softmax_large": [9.99954600e-01, 4.53978686e-05, 2.06106005e-09]}

LEAKY_ALPHA = 0.1  # Leaky ReLU's slope for x < 0 in the figure (fnn's default, 0.01, would not show)

# The book's hand-set 3-layer network (DLFS1 §3.4.3, init_network): 2 -> 3 -> 2 -> 2.
BOOK_NETWORK = {"W1": [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], "b1": [0.1, 0.2, 0.3],
                "W2": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "b2": [0.1, 0.2],
                "W3": [[0.1, 0.3], [0.2, 0.4]], "b3": [0.1, 0.2]}


def compute() -> dict:
    """The book's printed values, computed in float64."""
    with jax.enable_x64(True):
        net = {k: jnp.asarray(v, jnp.float64) for k, v in BOOK_NETWORK.items()}
        big = jnp.array([1010.0, 1000.0, 990.0])
        naive = jnp.exp(big) / jnp.sum(jnp.exp(big))  # the book's first softmax: inf / inf
        values = {"step": F.step_function(jnp.array([-1.0, 1.0, 2.0])),
                  "sigmoid": F.sigmoid(jnp.array([-1.0, 1.0, 2.0])),
                  "forward": mlp.apply(net, jnp.array([[1.0, 0.5]]), activation="sigmoid")[0],
                  "softmax": F.softmax(jnp.array([0.3, 2.9, 4.0])),
                  "softmax_naive_large": naive,
                  "softmax_large": F.softmax(big)}
        return {k: np.asarray(v).tolist() for k, v in values.items()}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        values = compute()
        x = jnp.arange(-5.0, 5.0, 0.1)
        curves = {name: np.asarray(f(x)) for name, f in
                  (("step", F.step_function), ("sigmoid", F.sigmoid), ("relu", F.relu),
                   ("leaky_relu", lambda v: F.leaky_relu(v, LEAKY_ALPHA)))}
    x = np.asarray(x)

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
    axes[0].plot(x, curves["step"])
    axes[0].set(title="step function (Fig. 3-6)", ylim=(-0.1, 1.1))
    axes[1].plot(x, curves["sigmoid"])
    axes[1].set(title="sigmoid (Fig. 3-7)", ylim=(-0.1, 1.1))
    axes[2].plot(x, curves["sigmoid"], label="sigmoid")
    axes[2].plot(x, curves["step"], "k--", label="step")
    axes[2].set(title="sigmoid and step (Fig. 3-8)", ylim=(-0.1, 1.1))
    axes[2].legend()
    axes[3].plot(x, curves["relu"], label="ReLU")
    axes[3].plot(x, curves["leaky_relu"], "--", label=f"Leaky ReLU (α = {LEAKY_ALPHA}: x < 0 keeps a slope)")
    axes[3].legend(loc="upper left", fontsize=8)
    axes[3].set(title="ReLU (Fig. 3-9)", ylim=(-1.0, 5.5))
    for ax in axes:
        ax.set(xlabel="x", ylabel="h(x)")
        ax.grid(alpha=0.3)
    fig.suptitle("Activation functions (DLFS1 §3.2)")
    ex.save_figure(fig, out / "activations.png")

    errors = {k: float(np.max(np.abs(np.asarray(values[k]) - np.asarray(BOOK[k])))) for k in BOOK}
    metrics = {**values, "max_abs_error_vs_book": errors,
               "naive_softmax_overflows": bool(np.all(np.isnan(values["softmax_naive_large"])))}
    path = ex.save_result(out, NAME, args, config={"x_range": [-5.0, 5.0, 0.1], "dtype": "float64"},
                          metrics=metrics, seconds=timer.seconds, book=BOOK,
                          book_ref={"section": "DLFS1 §3.2–3.5", "figures": ["Fig. 3-6", "Fig. 3-7",
                                                                               "Fig. 3-8", "Fig. 3-9"],
                                    "script": "ch03/step_function.py, sigmoid.py, sig_step_compare.py, "
                                              "relu.py",
                                    "note": "the book prints 8 digits; the naive softmax of [1010, 1000, "
                                            "990] is nan (null in this file)"})

    def fmt(v):
        return "[" + ", ".join(f"{a:.8g}" for a in v) + "]"

    ex.report([f"sigmoid([-1, 1, 2])       = {fmt(values['sigmoid'])}   book {fmt(BOOK['sigmoid'])}",
               f"3-layer net([1.0, 0.5])   = {fmt(values['forward'])}   book {fmt(BOOK['forward'])}",
               f"softmax([0.3, 2.9, 4.0])  = {fmt(values['softmax'])}   book {fmt(BOOK['softmax'])}",
               f"softmax([1010,1000,990])  = {fmt(values['softmax_large'])} (naive: "
               f"{fmt(values['softmax_naive_large'])})",
               f"largest difference from the book's printed digits: {max(errors.values()):.1e}",
               f"wrote {out / 'activations.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

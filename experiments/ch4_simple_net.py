"""simpleNet's numerical gradient dL/dW (DLFS1 §4.4.2; book: loss 0.92806853663411326).
Book: loss 0.92806853663411326, dW = [[0.21924763 0.14356247 -0.36281009]
[0.32887144 0.2153437 -0.54421514]].

simpleNet is one 2x3 weight matrix: z = x · W, y = softmax(z), loss = cross-entropy of y and t
(§4.2.2). The book's printed loss and dW match the exact cross-entropy (to 2e-9 and 1e-8, the
rounding of its printed W), not the form with log(y + 1e-7), which is 2.5e-7 lower; so `loss` is
the exact `cross_entropy`, and the delta form is reported beside it. The book draws W at random,
and prints the W it drew; we use that printed W so the numbers can be compared: with
x = [0.6, 0.9] and t = [0, 0, 1] it prints p = [1.05414809, 0.63071653, 1.1328074], argmax 2, the
loss and dW above.
dL/dW is computed three ways: `numerical_gradient` (h = 1e-4, as the book), ``jax.grad`` and the
closed form x^T (y - t) (§5.6.3, which ignores delta), all in float64.

Writes ``simple_net.png`` (W, dW, softmax output) and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import functions as F
from fnn.gradient import numerical_gradient
from fnn_experiments import _common as ex

NAME = "ch4_simple_net"
BOOK_W = [[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]]
BOOK = {"predict": [1.05414809, 0.63071653, 1.1328074], "argmax": 2, "loss": 0.92806853663411326,
        "dW": [[0.21924763, 0.14356247, -0.36281009], [0.32887144, 0.2153437, -0.54421514]]}


def predict(W, x):
    """z = x · W (DLFS1 §4.4.2, simpleNet.predict); W (2, 3), x (2,) -> (3,)."""
    return x @ W


def loss(W, x, t):
    """-sum_k t_k log softmax(x · W)_k (DLFS1 §4.4.2, simpleNet.loss; exact, without delta)."""
    return F.cross_entropy(predict(W, x)[None, :], t[None, :])


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer, jax.enable_x64(True):
        W = jnp.array(BOOK_W)
        x = jnp.array([0.6, 0.9])
        t = jnp.array([0.0, 0.0, 1.0])
        z = predict(W, x)
        y = F.softmax(z)
        value = loss(W, x, t)
        dW = numerical_gradient(lambda w: loss(w, x, t), W)
        dW_auto = jax.grad(loss)(W, x, t)
        dW_closed = jnp.outer(x, y - t)
        values = {"predict": np.asarray(z).tolist(), "argmax": int(jnp.argmax(z)),
                  "loss": float(value), "dW": np.asarray(dW).tolist(),
                  "loss_with_delta": float(F.cross_entropy_error(y, t))}
        diffs = {"numerical_vs_jax_grad": float(jnp.max(jnp.abs(dW - dW_auto))),
                 "numerical_vs_closed_form": float(jnp.max(jnp.abs(dW - dW_closed))),
                 "vs_book_dW": float(np.max(np.abs(np.asarray(dW) - np.asarray(BOOK["dW"])))),
                 "vs_book_loss": abs(float(value) - BOOK["loss"]),
                 "vs_book_predict": float(np.max(np.abs(np.asarray(z) - np.asarray(BOOK["predict"]))))}

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 0.8]})
    for ax, M, title, cmap in ((axes[0], np.asarray(W), "W (the book's printed draw)", "viridis"),
                               (axes[1], np.asarray(dW), "dL/dW by numerical_gradient", "coolwarm")):
        lim = np.max(np.abs(M))
        ax.imshow(M, cmap=cmap, vmin=-lim if cmap == "coolwarm" else None,
                  vmax=lim if cmap == "coolwarm" else None)
        for (i, j), v in np.ndenumerate(M):
            ax.text(j, i, f"{v:.8f}", ha="center", va="center", fontsize=9,
                    bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
        ax.set(xticks=range(3), yticks=range(2), xlabel="output j", ylabel="input i", title=title)
    axes[2].bar(range(3), np.asarray(y), color=["tab:gray", "tab:gray", "tab:green"])
    axes[2].set(xticks=range(3), xlabel="class (t = 2)", ylabel="probability", ylim=(0, 1),
                title=f"softmax(x · W); loss {float(value):.6f}")
    fig.suptitle("simpleNet (DLFS1 §4.4.2): x = [0.6, 0.9], t = [0, 0, 1]; a negative dW_ij means "
                 "increasing W_ij lowers the loss")
    ex.save_figure(fig, out / "simple_net.png")

    metrics = {**values, "abs_diff": diffs, "softmax": np.asarray(y).tolist()}
    path = ex.save_result(out, NAME, args, config={"W": BOOK_W, "x": [0.6, 0.9], "t": [0, 0, 1],
                                                   "h": 1e-4, "dtype": "float64"}, metrics=metrics,
                          seconds=timer.seconds, book=BOOK,
                          book_ref={"section": "DLFS1 §4.4.2", "script": "ch04/gradient_simplenet.py",
                                    "note": "the book's W is a random draw printed to 8 digits; fnn uses "
                                            "the printed W, so the last digits differ"})
    ex.report([f"predict {np.round(values['predict'], 8).tolist()} (book {BOOK['predict']}), "
               f"argmax {values['argmax']}",
               f"loss {values['loss']!r} (book {BOOK['loss']!r}; with log(y + 1e-7): "
               f"{values['loss_with_delta']!r})",
               f"dW {np.array2string(np.asarray(dW), precision=8)}",
               f"   book {BOOK['dW']}",
               f"|numerical - jax.grad| <= {diffs['numerical_vs_jax_grad']:.1e}, |numerical - book| "
               f"<= {diffs['vs_book_dW']:.1e}",
               f"wrote {out / 'simple_net.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

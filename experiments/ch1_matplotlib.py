"""NumPy and matplotlib warm-up: arrays, sin and cos, an image (DLFS1 §1.5–1.6, Fig. 1-3 to 1-5).
Book: x + y = [3. 6. 9.] for x = [1. 2. 3.], y = [2. 4. 6.]; X[X > 15] = [51 55 19].

The book's chapter 1 in fnn's array library, ``jax.numpy``:

* §1.5, NumPy: the arrays the book computes with and the values it prints — element-wise
  arithmetic of x = [1, 2, 3] and y = [2, 4, 6], a 2x2 matrix A with B and a scalar, broadcasting
  A * [10, 20], and indexing X = [[51, 55], [14, 19], [0, 4]] (a row, an element, flattening, an
  index array, a boolean mask). Each is checked against the book's printed value.
* §1.6.1, a simple graph (``simple_graph.py`` and ``sin_graph.py``, the same script in the book's
  repository): y = sin(x) for x = 0, 0.1, ..., 5.9 (Fig. 1-3).
* §1.6.2, pyplot's features (``sin_cos_graph.py``): sin and cos (dashed) with axis labels, a title
  and a legend (Fig. 1-4).
* §1.6.3, showing an image (``img_show.py``): the book shows a photo read with ``imread``; here
  ``imshow`` shows the first digit of the embedded data set (scikit-learn's digits, 28x28 as
  ``fnn.data.load("digits28")`` gives it), with a colour bar of its pixel values.

Writes ``simple_graph.png``, ``sin_cos_graph.png``, ``img_show.png`` and ``result.json``.
``--quick`` is the same run (no data to download).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import data
from fnn_experiments import _common as ex

NAME = "ch1_matplotlib"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
# The values the book prints in §1.5 (its inputs are in `numpy_tour`).
BOOK = {"x + y": [3.0, 6.0, 9.0], "x - y": [-1.0, -2.0, -3.0], "x * y": [2.0, 8.0, 18.0],
        "x / y": [0.5, 0.5, 0.5], "x / 2.0": [0.5, 1.0, 1.5],
        "A.shape": [2, 2], "A + B": [[4, 2], [3, 10]], "A * B": [[3, 0], [0, 24]],
        "A * 10": [[10, 20], [30, 40]], "A * [10, 20]": [[10, 40], [30, 80]],
        "X[0]": [51, 55], "X[0][1]": 55, "X.flatten()": [51, 55, 14, 19, 0, 4],
        "X.flatten()[[0, 2, 4]]": [51, 14, 0], "X.flatten() > 15": [1, 1, 0, 1, 0, 0],
        "X[X > 15]": [51, 55, 19]}


def numpy_tour() -> dict:
    """The book's §1.5 computations in ``jax.numpy`` (float64 and int), as plain lists."""
    # The book's broadcasting, (2, 2) * (2,), promotes a rank; fnn's tests forbid that by default.
    with jax.enable_x64(True), jax.numpy_rank_promotion("allow"):
        x, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([2.0, 4.0, 6.0])
        A, B = jnp.array([[1, 2], [3, 4]]), jnp.array([[3, 0], [0, 6]])
        X = jnp.array([[51, 55], [14, 19], [0, 4]])
        flat = X.flatten()
        values = {"x + y": x + y, "x - y": x - y, "x * y": x * y, "x / y": x / y, "x / 2.0": x / 2.0,
                  "A.shape": jnp.array(A.shape), "A + B": A + B, "A * B": A * B, "A * 10": A * 10,
                  "A * [10, 20]": A * jnp.array([10, 20]),  # broadcasting (DLFS1 §1.5)
                  "X[0]": X[0], "X[0][1]": X[0][1], "X.flatten()": flat,
                  "X.flatten()[[0, 2, 4]]": flat[jnp.array([0, 2, 4])],
                  "X.flatten() > 15": (flat > 15).astype(jnp.int32),
                  "X[X > 15]": flat[np.asarray(flat > 15)]}  # a boolean mask needs a concrete shape
        return {k: np.asarray(v).tolist() for k, v in values.items()}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        values = numpy_tour()
        x = np.asarray(jnp.arange(0, 6, 0.1))  # the book's grid: 0 to 6 in steps of 0.1, 60 points
        y1, y2 = np.asarray(jnp.sin(x)), np.asarray(jnp.cos(x))
        (images, labels), _ = data.load("digits28", normalize=False, flatten=False)
        image, label = np.asarray(images[0, 0]), int(labels[0])  # (28, 28) uint8

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(x, y1)
    ax.set_title("simple_graph.py / sin_graph.py: y = sin(x) (DLFS1 §1.6.1, Fig. 1-3)", fontsize=10)
    ex.save_figure(fig, out / "simple_graph.png")

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(x, y1, label="sin")
    ax.plot(x, y2, linestyle="--", label="cos")
    ax.set(xlabel="x", ylabel="y", title="sin & cos")
    ax.legend()
    fig.suptitle("sin_cos_graph.py: labels, title and legend (DLFS1 §1.6.2, Fig. 1-4)", fontsize=10)
    ex.save_figure(fig, out / "sin_cos_graph.png")

    fig, ax = plt.subplots(figsize=(4.6, 4), layout="constrained")
    im = ax.imshow(image, cmap="gray")
    fig.colorbar(im, ax=ax, label="pixel value")
    ax.set_title(f"img_show.py with the first embedded digit (label {label})\n"
                 f"instead of the book's photo (DLFS1 §1.6.3, Fig. 1-5)", fontsize=10)
    ex.save_figure(fig, out / "img_show.png")

    mismatches = [k for k in BOOK if values[k] != BOOK[k]]
    metrics = {**values, "matches_book": not mismatches, "grid_points": int(x.size),
               "grid_last": float(x[-1]), "sin_max": float(y1.max()), "image_shape": list(image.shape),
               "image_dtype": str(image.dtype), "image_label": label}
    path = ex.save_result(out, NAME, args, config={"grid": [0, 6, 0.1], "image": "digits28, first training image"},
                          metrics=metrics, seconds=timer.seconds, book=BOOK,
                          book_ref={"section": "DLFS1 §1.5–1.6", "figures": ["Fig. 1-3", "Fig. 1-4", "Fig. 1-5"],
                                    "script": "ch01/simple_graph.py, sin_graph.py, sin_cos_graph.py, img_show.py",
                                    "note": "the book's image is a photo; fnn shows a digit"})
    width = max(len(k) for k in BOOK)
    ex.report([f"{k:>{width}} = {values[k]}" for k in BOOK] +
              [f"matches the book's printed values: {not mismatches}" + (f" (not: {mismatches})" if mismatches
                                                                       else ""),
               f"sin over {x.size} points from 0 to {x[-1]:.1f}; image {image.shape} {image.dtype}, label {label}",
               f"wrote {out / 'simple_graph.png'}, sin_cos_graph.png, img_show.png and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

"""Apply convolution filters to a digit (DLFS1 §7.6.1, ch07/apply_filter.py, on a digit instead of a photo).

The book convolves a photograph with learned first-layer filters to show what they respond to:
vertical edges, horizontal edges, blobs. Here the image is a test digit, and the filters are
two hand-made edge detectors (Sobel, vertical and horizontal) and, when the book's trained
SimpleConvNet weights are available (``$FNN_DATA_DIR/book/simple_convnet_params.pkl``; full mode
may download them), four of its 30 learned 5x5 filters. The convolution is the book's
``Convolution`` layer (im2col, stride 1, pad 0 for 5x5 / pad 1 for 3x3).

Quick mode: a digit of the embedded set, Sobel filters only unless the book's weights are
already on disk. Full mode: an MNIST test digit.

The lesson (§7.6.1): a filter responds where the image has the pattern it is made of. The
vertical-edge Sobel filter's output follows the digit's left-right intensity changes (its vertical
strokes' edges), the horizontal one's the up-down changes. ``result.json`` measures it: the
correlation of each Sobel response's magnitude with the magnitude of the image's horizontal and
vertical differences (``np.gradient``). Measured in quick mode (test digit 0): 0.99 with its own
orientation, 0.33 with the other (vertical filter), 1.00 and 0.32 (horizontal filter).

Writes ``apply_filter.png`` (each filter above its response) and ``result.json``.
"""

from __future__ import annotations

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.layers.conv import convolution
from fnn_experiments import _common as ex

NAME = "ch7_apply_filter"

SOBEL = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
BOOK_FILTERS = (0, 1, 2, 3)  # which of the book's 30 learned filters to show


def LESSON(result: dict) -> None:
    """What §7.6.1 shows, asserted on a run's result.json: each edge filter follows its own edges."""
    corr = result["metrics"]["edge_correlation"]
    for name, own, other in (("Sobel vertical edges", "d/dx", "d/dy"), ("Sobel horizontal edges", "d/dy", "d/dx")):
        assert corr[name][own] > 0.8 and corr[name][own] > corr[name][other] + 0.2, \
            f"{name} should respond to the changes along its own direction: {corr[name]}"


def edge_correlation(image: np.ndarray, response: np.ndarray) -> dict:
    """Correlation of |response| with |d image / dx| (left-right changes: vertical edges) and
    with |d image / dy| (up-down changes: horizontal edges)."""
    dy, dx = np.gradient(np.asarray(image, np.float64))
    r = np.abs(response).ravel()
    return {name: float(np.corrcoef(r, np.abs(d).ravel())[0, 1]) for name, d in (("d/dx", dx), ("d/dy", dy))}


def book_filters(download: bool) -> np.ndarray | None:
    """The book's trained conv1 filters (30, 1, 5, 5), or None when they cannot be had."""
    from fnn.data.weights import load_book_weights

    try:
        return np.asarray(load_book_weights("simple_convnet_params.pkl", download=download)["W1"])
    except OSError:
        return None


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    p.add_argument("--index", type=int, default=0, help="which test image (default 0)")
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    with ex.Timer() as timer:
        (_, _), (x_test, t_test) = ex.load_data(args, flatten=False)
        x = jnp.asarray(x_test[args.index:args.index + 1])  # (1, 1, 28, 28)
        filters = [("Sobel vertical edges", SOBEL), ("Sobel horizontal edges", SOBEL.T)]
        learned = book_filters(download=not args.quick)
        if learned is not None:
            filters += [(f"book filter {i}", learned[i, 0]) for i in BOOK_FILTERS]
        responses = []
        for _, f in filters:
            W = jnp.asarray(f, x.dtype)[None, None]  # (FN=1, C=1, FH, FW)
            y, _ = convolution.forward({"W": W, "b": jnp.zeros(1, x.dtype)}, x,
                                       pad=(f.shape[0] - 1) // 2)
            responses.append(np.asarray(y[0, 0]))

    corr = {label: edge_correlation(x[0, 0], y) for (label, _), y in zip(filters[:2], responses, strict=False)}
    fig, axes = plt.subplots(2, len(filters) + 1, figsize=(2.2 * (len(filters) + 1), 4.6))
    axes[0, 0].imshow(np.asarray(x[0, 0]), cmap="gray_r")
    axes[0, 0].set_title(f"digit {int(t_test[args.index])}", fontsize=9)
    axes[1, 0].set_axis_off()
    for col, ((label, f), y) in enumerate(zip(filters, responses, strict=True), start=1):
        axes[0, col].imshow(f, cmap="gray_r", interpolation="nearest")
        axes[0, col].set_title(label, fontsize=8)
        axes[1, col].imshow(y, cmap="gray_r")
        c = corr.get(label)
        axes[1, col].set_title("response" if c is None else
                               f"response; corr. of |response|\nwith |d/dx| {c['d/dx']:.2f}, |d/dy| {c['d/dy']:.2f}",
                               fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Convolution filters applied to a digit (top: filter, bottom: output)")
    ex.save_figure(fig, out / "apply_filter.png")

    metrics = {"filters": [label for label, _ in filters], "book_filters": learned is not None,
               "response_abs_max": [float(np.abs(y).max()) for y in responses],
               "edge_correlation": corr}
    config = {"data": "digits28" if args.quick else "mnist", "index": args.index}
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          book_ref={"section": "DLFS1 §7.6.1", "figures": [], "script": "ch07/apply_filter.py",
                                    "quick_differs": True,
                                    "note": "the book filters a photograph and states no number"})
    ex.report([f"{len(filters)} filters applied to test digit {args.index} "
               f"(book's learned filters: {'yes' if learned is not None else 'not found'})",
               f"wrote {out / 'apply_filter.png'} and {path}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

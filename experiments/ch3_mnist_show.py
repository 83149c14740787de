"""The first MNIST training images and labels (DLFS1 §3.6.1, mnist_show.py; book: first label 5).
Book: the first label is 5, the image's shape (784,) -> (28, 28).

Loads the data as the book's ``load_mnist(flatten=True, normalize=False)`` does, prints the first
training label and the image's shape before and after ``reshape(28, 28)``, and draws the first 40
training images in a grid with their labels (the book shows the first one, a 5).

Full mode: MNIST (``$FNN_DATA_DIR/mnist`` or the cache). ``--quick``: the embedded digits upsampled
to 28x28 (first label differs: it is scikit-learn's order). Writes ``mnist_show.png`` and
``result.json``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from fnn_experiments import _common as ex

NAME = "ch3_mnist_show"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--count": {"type": "count", "default": 40, "help": "how many images to draw (default 40)"},
}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        (x_train, t_train), (x_test, t_test) = ex.load_data(args, flatten=True, normalize=False)
    img = x_train[0]
    metrics = {"first_label": int(t_train[0]), "flat_shape": list(img.shape),
               "image_shape": list(img.reshape(28, 28).shape), "dtype": str(x_train.dtype),
               "pixel_range": [int(x_train.min()), int(x_train.max())],
               "train_size": int(x_train.shape[0]), "test_size": int(x_test.shape[0]),
               "label_counts": np.bincount(t_train, minlength=10).tolist()}

    n = min(args.count, x_train.shape[0])
    cols = 10
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.25))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(x_train[i].reshape(28, 28), cmap="gray", vmin=0, vmax=255)
            ax.set_title(str(int(t_train[i])), fontsize=10)
    data = "embedded digits (28x28)" if args.quick else "MNIST"
    fig.suptitle(f"The first {n} training images of {data} and their labels (DLFS1 §3.6.1)")
    ex.save_figure(fig, out / "mnist_show.png")
    path = ex.save_result(out, NAME, args, config={"data": "digits28" if args.quick else "mnist",
                                                   "count": n}, metrics=metrics, seconds=timer.seconds,
                          book={"first_label": 5, "flat_shape": [784], "image_shape": [28, 28]},
                          book_ref={"section": "DLFS1 §3.6.1", "script": "ch03/mnist_show.py",
                                    "quick_differs": True, "note": "MNIST's training set"})
    ex.report([f"first label {metrics['first_label']} (book, MNIST: 5); image shape "
               f"{tuple(metrics['flat_shape'])} -> {tuple(metrics['image_shape'])}; "
               f"{metrics['train_size']} train / {metrics['test_size']} test images, pixels "
               f"{metrics['dtype']} in {metrics['pixel_range']}",
               f"wrote {out / 'mnist_show.png'} and {path}"])
    return {"metrics": metrics}


if __name__ == "__main__":
    main()

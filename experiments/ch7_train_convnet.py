"""Train SimpleConvNet; its first-layer filters before and after (DLFS1 §7.5–7.6; book: test acc ~0.99).

The book's SimpleConvNet (ch07/train_convnet.py): conv 30@5x5 - ReLU - pool 2x2 - affine 100 -
ReLU - affine 10, weights N(0, 0.01^2), trained with Adam (learning rate 0.001) on mini-batches
of 100 for 20 epochs. The gradient is the book's backprop (``--grad manual``, the default) or
``jax.grad`` (``--grad autodiff``); both run the model's default kernel, the book's im2col for its
one-channel input layer (`fnn.layers.conv.choose_impl`).

Full mode: full MNIST, 20 epochs; the book reaches a test accuracy of about 0.99 (0.985 or more
expected here). Quick mode (``--quick``): the embedded digits upsampled to 28x28, 15 epochs.

Figures: ``train_convnet.png`` (loss per iteration, accuracy per epoch) and
``filters.png``: the 30 first-layer filters before and after training (DLFS1 Figure 7-24: the
random filters turn into edge and blob detectors). Writes ``result.json`` and the trained
parameters ``params.npz`` (the book's names and shapes).
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from fnn.models import cnn
from fnn.optim import adam
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch7_train_convnet"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual",
               "help": "gradient path: the book's backprop (manual) or jax.grad (autodiff)"},
    "--epochs": {"type": "int", "help": "default 20, or 15 with --quick"},
}


def filter_grid(axes, W: np.ndarray) -> None:
    """Draw filters W (FN, 1, FH, FW) as grey images, one per axis (the book's filter_show)."""
    for ax, f in zip(axes.ravel(), W, strict=False):
        ax.imshow(f[0], cmap="gray_r", interpolation="nearest")
    for ax in axes.ravel():
        ax.set_axis_off()


def plot_filters(before: np.ndarray, after: np.ndarray, title: str) -> plt.Figure:
    """Two 3x10 grids: the first layer's filters (FN, 1, FH, FW) before and after training."""
    fig = plt.figure(figsize=(10, 6.4))
    for row, (W, label) in enumerate(((before, "before training"), (after, "after training"))):
        sub = fig.add_subfigure(plt.GridSpec(2, 1, figure=fig)[row])
        filter_grid(sub.subplots(3, 10), W)
        sub.suptitle(label)
    fig.suptitle(title, y=1.03)
    return fig


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    data = ex.load_data(args, flatten=False)
    (x_train, _), (x_test, _) = data
    config = {"data": "digits28" if args.quick else "mnist",
              "model": "SimpleConvNet conv30@5x5-pool-100-10", "weight_init_std": 0.01,
              "optimizer": "Adam", "learning_rate": 0.001, "batch_size": 100,
              "epochs": args.epochs or (15 if args.quick else 20), "grad": args.grad,
              "train_size": int(x_train.shape[0]), "test_size": int(x_test.shape[0])}

    model = cnn.simple_convnet()
    key = jax.random.key(args.seed)
    before = np.asarray(model.init(jax.random.split(key)[0])[0]["W1"])  # fit's init key
    with ex.Timer() as timer:
        ts, history = fit(model, adam(config["learning_rate"]), data, key=key,
                          epochs=config["epochs"], batch_size=config["batch_size"],
                          grad=args.grad, progress=args.progress, desc=NAME)
    params = jax.device_get(ts.params)

    steps = history["step"][-1]
    metrics = {"train_acc": history["train_acc"][-1], "test_acc": history["test_acc"][-1],
               "final_loss": history["train_loss"][-1], "train_seconds": history["seconds"],
               "eval_seconds": history["eval_seconds"],
               "steps_per_second": steps / history["seconds"]}
    ex.save_figure(ex.plot_history(history, f"SimpleConvNet on {config['data']}, Adam lr 0.001 "
                                            f"({args.grad} gradient)"), out / "train_convnet.png")
    ex.save_figure(plot_filters(before, params["W1"], "SimpleConvNet conv1 filters (30 x 5x5)"),
                   out / "filters.png")
    np.savez(out / "params.npz", **params)
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics,
                          seconds=timer.seconds, history=history)
    ex.report([f"train acc {metrics['train_acc']:.4f}, test acc {metrics['test_acc']:.4f} "
               f"(book: ~0.99) in {history['seconds']:.1f} s of training "
               f"({metrics['steps_per_second']:.0f} steps/s, compile included)",
               f"wrote {out / 'train_convnet.png'}, {out / 'filters.png'} and {path}"])
    return {"config": config, "metrics": metrics, "history": history}


if __name__ == "__main__":
    main()

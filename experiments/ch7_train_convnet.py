"""Train SimpleConvNet; its first-layer filters before and after (DLFS1 §7.5–7.6; book: test acc ~0.99).

The book's SimpleConvNet (ch07/train_convnet.py): conv 30@5x5 - ReLU - pool 2x2 - affine 100 -
ReLU - affine 10, weights N(0, 0.01^2), trained with Adam (learning rate 0.001) on mini-batches
of 100 for 20 epochs. The gradient is the book's backprop (``--grad manual``, the default) or
``jax.grad`` (``--grad autodiff``); both run the model's default kernel, the book's im2col for its
one-channel input layer (`fnn.layers.conv.choose_impl`).

The chapter's lesson is that a convolutional network beats the fully connected one of chapters
4-6 on images (§7.1: an affine layer ignores the image's shape; a convolution's filters look at
every place with the same weights). So beside the CNN, an MLP 784-100-10 (ReLU, He weights) trains
on the same data with the same optimizer, batches and epochs, and both test accuracies are drawn.

Full mode: full MNIST, 20 epochs; the book reaches a test accuracy of about 0.99 (0.985 or more
expected here), the MLP about 0.97-0.98. Quick mode (``--quick``): the embedded 8x8 digits
upsampled to 28x28. Those are blurred, centred blobs on which the MLP does as well as the CNN
(0.97 vs 0.94-0.96 after 15-20 epochs): nothing for the filters to find that the MLP cannot. Real
handwriting is not centred, so quick mode moves every digit (train and test) by up to
`QUICK_SHIFT` = 4 pixels each way (drawn once, seeded; each 28x28 frame has a 4-pixel margin): the
MLP must learn every digit at every place, the CNN's shared filters need not. Measured in quick
mode (seed 0, 20 epochs): test accuracy 0.856 for the CNN, 0.783 for the MLP.

Figures: ``train_convnet.png`` (loss per iteration, accuracy per epoch, the MLP's test accuracy) and
``filters.png``: the 30 first-layer filters before and after training (DLFS1 Figure 7-24: the
random filters turn into edge and blob detectors). Writes ``result.json`` and the trained
parameters ``params.npz`` (the book's names and shapes).
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from fnn.models import cnn, mlp
from fnn.optim import adam
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch7_train_convnet"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual",
               "help": "gradient path: the book's backprop (manual) or jax.grad (autodiff)"},
    "--epochs": {"type": "count", "default": None, "help": "default 20, or 15 with --quick"},
}
SLOW = True  # a CNN and an MLP, QUICK_EPOCHS epochs each: ~40 CPU-seconds in quick mode
QUICK_SHIFT, QUICK_EPOCHS = 4, 20


def LESSON(result: dict) -> None:
    """What §7.5 shows, asserted on a run's result.json: the CNN learns the digits better than the
    fully connected network trained alike (book: ~0.99 vs ~0.97 on MNIST)."""
    m = result["metrics"]
    assert m["test_acc"] > m["mlp_test_acc"] + (0.03 if result["quick"] else 0.005), \
        f"the CNN should beat the MLP: {m['test_acc']:.4f} vs {m['mlp_test_acc']:.4f}"


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
    if args.quick:
        rng = np.random.default_rng(args.seed)
        data = tuple((ex.moved_digits(x, QUICK_SHIFT, rng), t) for x, t in data)
    (x_train, _), (x_test, _) = data
    config = {"data": "digits28" if args.quick else "mnist",
              "model": "SimpleConvNet conv30@5x5-pool-100-10", "weight_init_std": 0.01,
              "optimizer": "Adam", "learning_rate": 0.001, "batch_size": 100,
              "epochs": args.epochs or (QUICK_EPOCHS if args.quick else 20), "grad": args.grad,
              "train_size": int(x_train.shape[0]), "test_size": int(x_test.shape[0]),
              "shift": QUICK_SHIFT if args.quick else 0, "mlp": "784-100-10, ReLU, He, same optimizer and batches"}

    model = cnn.simple_convnet()
    key = jax.random.key(args.seed)
    before = np.asarray(model.init(jax.random.split(key)[0])[0]["W1"])  # fit's init key
    with ex.Timer() as timer:
        ts, history = fit(model, adam(config["learning_rate"]), data, key=key,
                          epochs=config["epochs"], batch_size=config["batch_size"],
                          grad=args.grad, progress=args.progress, desc=NAME)
        flat = tuple((x.reshape(len(x), -1), t) for x, t in data)
        _, mlp_history = fit(mlp.model(flat[0][0].shape[1], 100, 10), adam(config["learning_rate"]), flat,
                             key=key, epochs=config["epochs"], batch_size=config["batch_size"],
                             progress=args.progress, desc=f"{NAME} (MLP)")
    params = jax.device_get(ts.params)

    steps = history["step"][-1]
    metrics = {"train_acc": history["train_acc"][-1], "test_acc": history["test_acc"][-1],
               "final_loss": history["train_loss"][-1], "train_seconds": history["seconds"],
               "eval_seconds": history["eval_seconds"],
               "steps_per_second": steps / history["seconds"],
               "mlp_train_acc": mlp_history["train_acc"][-1], "mlp_test_acc": mlp_history["test_acc"][-1]}
    data_name = config["data"] + (f", digits moved up to {QUICK_SHIFT} px" if args.quick else "")
    fig = ex.plot_history(history, f"SimpleConvNet on {data_name}, Adam lr 0.001 ({args.grad} gradient)")
    ax_acc = fig.axes[1]
    for line in ax_acc.get_lines():
        line.set_label(f"CNN: {line.get_label()}")
    ax_acc.plot(mlp_history["epoch"], mlp_history["test_acc"], "^:", ms=3, color="0.4",
                label="MLP 784-100-10: test acc")
    # zoom in on the curves (from a little below the lowest accuracy): on a 0-1 axis the CNN's ~0.99
    # and the MLP's ~0.97 on full MNIST lie on one line
    lowest = min(min(h[k]) for h in (history, mlp_history) for k in ("train_acc", "test_acc"))
    ax_acc.set_ylim(max(0.0, np.floor((lowest - 0.005) * 50) / 50), 1.0)
    ax_acc.legend(loc="lower right")
    ex.save_figure(fig, out / "train_convnet.png")
    ex.save_figure(plot_filters(before, params["W1"], "SimpleConvNet conv1 filters (30 x 5x5)"),
                   out / "filters.png")
    np.savez(out / "params.npz", **params)
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics,
                          seconds=timer.seconds, history=history, mlp_history=mlp_history,
                          book={"test_acc": 0.99},
                          book_ref={"section": "DLFS1 §7.5", "figures": ["Fig. 7-24"],
                                    "script": "ch07/train_convnet.py", "approx": ["test_acc"],
                                    "quick_differs": True})
    ex.report([f"train acc {metrics['train_acc']:.4f}, test acc {metrics['test_acc']:.4f} "
               f"(book: ~0.99; the MLP: test acc {metrics['mlp_test_acc']:.4f}) in {history['seconds']:.1f} s "
               f"of training "
               f"({metrics['steps_per_second']:.0f} steps/s, compile included)",
               f"wrote {out / 'train_convnet.png'}, {out / 'filters.png'} and {path}"])
    return {"config": config, "metrics": metrics, "history": history}


if __name__ == "__main__":
    main()

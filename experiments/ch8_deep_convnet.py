"""Train DeepConvNet and show the test digits it gets wrong (DLFS1 §8.1.1, Fig. 8-2; book: test acc 0.9938).

The book's DeepConvNet (ch08/deep_convnet.py, train_deepnet.py): six 3x3 convolutions
16-16-32-32-64-64 with ReLU and a 2x2 max pool after every second one, affine 50 - ReLU -
dropout 0.5 - affine 10 - dropout 0.5, He initialisation; Adam (learning rate 0.001), mini-batches
of 100, 20 epochs. The gradient is the book's backprop (``--grad manual``, the
default) or ``jax.grad`` (``--grad autodiff``), both on the model's default kernels
(``conv="auto"``: the book's im2col for the one-channel first layer, the same equations as XLA
convolutions for the 16-64-channel ones, `fnn.layers.conv.choose_impl`).

Full mode: full MNIST, 20 epochs (the book: test accuracy 0.9938, an error rate of 0.62 %; about
20–40 minutes on 2 CPU cores). Quick mode (``--quick``): the embedded digits upsampled to 28x28, 8 epochs.
``--pretrained`` skips training and uses the book's trained weights
(``deep_convnet_params.pkl``; on the MNIST test set exactly the 0.9797 that the book's own code
measures with them).

Figures: ``train_deepnet.png`` (loss, accuracy; not with --pretrained) and ``misclassified.png``:
the first 20 misclassified test images with predicted and true labels (DLFS1 Figure 8-2, which
writes the true label top left and the network's answer bottom right). Writes ``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.models import cnn
from fnn.optim import adam
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch8_deep_convnet"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual",
               "help": "gradient path: the book's backprop (manual) or jax.grad (autodiff)"},
    "--epochs": {"type": "count", "help": "default 20, or 8 with --quick"},
    "--pretrained": {"action": "store_true", "help": "no training: the book's trained weights (needs full MNIST)"},
}
SLOW = True  # its quick mode takes about a minute on 2 cores: tests/test_experiments.py runs it with -m slow


def LESSON(result: dict) -> None:
    """What §8.1 shows, asserted on a run's result.json: the deep network learns the digits
    (book: 0.9938 on MNIST; 0.9 or more on the small quick set after 8 epochs), and the figure's
    misclassified digits are exactly the test errors."""
    m, c = result["metrics"], result["config"]
    assert m["test_acc"] >= (0.9 if result["quick"] else 0.99), f"DeepConvNet should learn the digits: {m}"
    assert m["misclassified"] == round((1 - m["test_acc"]) * c["test_size"]), m


def predict(model, params, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Predicted labels (N,) of images x (N, C, H, W), evaluation mode, in jitted batches."""
    scores = jax.jit(lambda p, xb: jnp.argmax(model.apply(p, {}, xb)[0], axis=-1))
    return np.concatenate([np.asarray(scores(params, jnp.asarray(x[i:i + batch_size])))
                           for i in range(0, len(x), batch_size)])


def plot_misclassified(x: np.ndarray, t: np.ndarray, y: np.ndarray, title: str,
                       count: int = 20) -> plt.Figure:
    """The first `count` images with y != t, each titled "predicted (true)"."""
    wrong = np.flatnonzero(y != t)[:count]
    fig, axes = plt.subplots(4, 5, figsize=(7.5, 6.6))
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(x[i, 0], cmap="gray_r")
        ax.set_title(f"{y[i]} (true {t[i]})", fontsize=9, color="C3")
    fig.suptitle(title)
    return fig


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    data = ex.load_data(args, flatten=False)
    (x_train, _), (x_test, t_test) = data
    config = {"data": "digits28" if args.quick else "mnist", "model": "DeepConvNet (book, ch08)",
              "optimizer": "Adam", "learning_rate": 0.001, "batch_size": 100,
              "epochs": 0 if args.pretrained else args.epochs or (8 if args.quick else 20),
              "grad": args.grad, "pretrained": args.pretrained,
              "train_size": int(x_train.shape[0]), "test_size": int(x_test.shape[0])}
    history = None
    with ex.Timer() as timer:
        if args.pretrained:
            model, params = cnn.book_pretrained("deep_convnet")
        else:
            model = cnn.deep_convnet()
            ts, history = fit(model, adam(config["learning_rate"]), data,
                              key=jax.random.key(args.seed), epochs=config["epochs"],
                              batch_size=config["batch_size"], grad=args.grad,
                              progress=args.progress, desc=NAME)
            params = ts.params
        y = predict(model, params, x_test)

    t_test = np.asarray(t_test)
    test_acc = float(np.mean(y == t_test))
    metrics = {"test_acc": test_acc, "misclassified": int(np.sum(y != t_test))}
    if history is not None:
        metrics.update(train_acc=history["train_acc"][-1], final_loss=history["train_loss"][-1],
                       train_seconds=history["seconds"],
                       steps_per_second=history["step"][-1] / history["seconds"])
        ex.save_figure(ex.plot_history(history, f"DeepConvNet on {config['data']}, Adam lr 0.001 "
                                                f"({args.grad} gradient)"),
                       out / "train_deepnet.png")
    source = "the book's weights" if args.pretrained else f"{config['epochs']} epochs"
    ex.save_figure(plot_misclassified(np.asarray(x_test), t_test, y,
                                      f"DeepConvNet ({source}): misclassified test images, "
                                      f"predicted (true)\ntest acc {test_acc:.4f} (DLFS1 Fig. 8-2)"),
                   out / "misclassified.png")
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          book={"test_acc": 0.9938}, book_ref={"section": "DLFS1 §8.1.1", "figures": ["Fig. 8-2"],
                                                             "script": "ch08/train_deepnet.py", "quick_differs": True},
                          **({"history": history} if history is not None else {}))
    ex.report([f"test acc {test_acc:.4f} ({metrics['misclassified']} of {len(t_test)} wrong; "
               f"book: ~0.993-0.994 after 20 epochs on MNIST)",
               f"wrote {out / 'misclassified.png'} and {path}"])
    return {"config": config, "metrics": metrics, "history": history}


if __name__ == "__main__":
    main()

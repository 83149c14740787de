"""SGD, Momentum, AdaGrad and Adam on MNIST: training-loss curves (DLFS1 §6.1.8, Figure 6-9).

The book's ch06/optimizer_compare_mnist.py.

The book's MultiLayerNet 784-100-100-100-100-10 (ReLU, He weights) trained by each of `fnn.optim`'s
hand-written optimizers with the book's default settings (SGD lr 0.01, Momentum lr 0.01 / 0.9,
AdaGrad lr 0.01, Adam lr 0.001), mini-batches of 128, 2,000 iterations. The book's figure: SGD
learns slowest; AdaGrad, Adam and Momentum bring the loss well below SGD's (AdaGrad a little
fastest), i.e. near 0.1-0.2 after 2,000 iterations while SGD is still near 0.4-0.5.

Each optimizer trains ``--seeds`` networks (default 1, as the book) at once with
`fnn.multi.fit_many` (vmap over initialisation/shuffling keys); the curve is their mean, smoothed.
Full mode: full MNIST, 5 epochs of 400 batches = 2,000 iterations. Quick mode: the embedded
digits (28x28), 300 iterations.

Writes ``optimizer_compare_mnist.png`` and ``result.json`` (final smoothed loss and test accuracy
per optimizer).
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from fnn import experiment as ex
from fnn import optim
from fnn.models import mlp
from fnn.multi import fit_many

NAME = "ch6_optimizer_compare_mnist"
OPTIMIZERS = {"SGD": optim.sgd(0.01), "Momentum": optim.momentum(0.01, 0.9),
              "AdaGrad": optim.adagrad(0.01), "Adam": optim.adam(0.001)}
MARKERS = {"SGD": "o", "Momentum": "x", "AdaGrad": "s", "Adam": "D", "std=0.01": "o", "Xavier": "s",
           "He": "D"}


def smooth(losses: np.ndarray, window: int = 21) -> np.ndarray:
    """Centred moving average of a loss curve, edges padded by reflection (the book's
    ``common/util.smooth_curve`` uses an 11-point Kaiser window; the idea is the same)."""
    half = window // 2
    padded = np.pad(losses, half, mode="reflect")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def loss_figure(curves: dict[str, np.ndarray], title: str, ylim: float) -> plt.Figure:
    """Smoothed mean training loss per iteration, one line per entry (DLFS1 Figures 6-9, 6-15)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, loss in curves.items():
        ax.plot(np.arange(1, loss.size + 1), smooth(loss), marker=MARKERS.get(name),
                markevery=max(loss.size // 20, 1), ms=4, label=name)
    ax.set(xlabel="iterations", ylabel="loss", ylim=(0, ylim), title=title)
    ax.legend()
    return fig


def setup(args):
    """Data, network, batch/epoch settings shared with ch6_weight_init_compare."""
    data = ex.load_data(args)
    (x_train, _), _ = data
    if args.quick:  # 1,437 digits: 11 batches of 128 an epoch
        epochs, num_batches = 30, 10
    else:           # 2,000 iterations as the book: 5 epochs of 400 batches (51,200 of 60,000 samples)
        epochs, num_batches = 5, 400
    config = {"data": "digits28" if args.quick else "mnist", "hidden_sizes": [100] * 4,
              "activation": "relu", "batch_size": 128, "epochs": epochs, "num_batches": num_batches,
              "iterations": epochs * num_batches, "seeds": args.seeds,
              "train_size": int(x_train.shape[0])}
    return data, config


def train_curves(model, optimizer, data, config, key, *, hparams=None):
    """(M, iterations) step losses and (M,) final test accuracies of M = len(keys) networks."""
    (x_train, t_train), (x_test, t_test) = data
    M = config["seeds"] if hparams is None else len(jax.tree_util.tree_leaves(hparams)[0])
    _, h = fit_many(model, optimizer, (x_train, t_train), jax.random.split(key, M), hparams=hparams,
                    epochs=config["epochs"], batch_size=config["batch_size"],
                    num_batches=config["num_batches"], eval_data={"test": (x_test, t_test)})
    return np.asarray(h["step_loss"]), np.asarray(h["test_acc"][:, -1])


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    p.add_argument("--seeds", type=int, default=1, help="networks per optimizer, trained at once")
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    data, config = setup(args)
    config["optimizers"] = {"SGD": "sgd(0.01)", "Momentum": "momentum(0.01, 0.9)",
                            "AdaGrad": "adagrad(0.01)", "Adam": "adam(0.001)"}
    model = mlp.model(data[0][0].shape[1], config["hidden_sizes"], 10, activation="relu",
                      weight_init="he")
    curves, metrics = {}, {}
    with ex.Timer() as timer:
        for i, (name, opt) in enumerate(OPTIMIZERS.items()):
            losses, test_acc = train_curves(model, opt, data, config,
                                            jax.random.fold_in(jax.random.key(args.seed), i))
            curves[name] = losses.mean(0)
            metrics[name] = {"final_loss": float(smooth(curves[name])[-1]),
                             "test_acc": float(test_acc.mean()), "test_acc_per_seed": test_acc.tolist()}
            if args.progress:
                print(f"{name}: final loss {metrics[name]['final_loss']:.4f}, "
                      f"test acc {metrics[name]['test_acc']:.4f}", flush=True)

    fig = loss_figure(curves, f"optimizers on {config['data']}, 784-100x4-10 ReLU, batch 128 "
                              f"(mean of {args.seeds})", ylim=1.0 if not args.quick else 2.5)
    ex.save_figure(fig, out / "optimizer_compare_mnist.png")
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            step_loss={k: v.tolist() for k, v in curves.items()})
    ex.report([f"{k:9s} final smoothed loss {m['final_loss']:.4f}, test acc {m['test_acc']:.4f}"
               for k, m in metrics.items()]
              + [f"{timer.seconds:.1f} s; wrote {out / 'optimizer_compare_mnist.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

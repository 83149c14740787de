"""Data augmentation on a small training set, with and without (DLFS1 §8.1.2).

DLFS1 §8.1.2: enlarging the training set with slightly transformed copies of its images
(shifts, small rotations, crops) improves recognition, most when data are scarce. Two
SimpleConvNets (the book's, Adam lr 0.001, batch 100) are trained from the same initial weights on
the same small subset, one on the images as they are and one on a freshly augmented batch every
step (`fnn.data.augment`: shift up to 2 pixels, rotation up to 10 degrees, crop to 90–100 % of
the side, rescaled), and tested on the whole test set.

Full mode: 1,000 MNIST training images, 60 epochs, the 10,000 test images. Quick mode
(``--quick``): 300 of the embedded 28x28 digits, 40 epochs, their 360 test images. Measured in
quick mode (seed 0): test accuracy 0.939 without, 0.900 with augmentation, train accuracy 0.980
vs 0.917 — at 120 steps the augmented run is still underfitting; it needs more epochs
(``--epochs``) before the book's gain can show. The full mode has not been run yet.

Figures: ``augmentation.png`` (test accuracy per epoch, both runs) and ``augmented_examples.png``
(a few training images and augmented versions). Writes ``result.json``.
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from fnn.data.augment import augment
from fnn.models import cnn
from fnn.models.augment import augmented
from fnn.optim import adam
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch8_augmentation"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--train-size": {"type": "int", "help": "default 1000, or 300 with --quick"},
    "--epochs": {"type": "int", "help": "default 60, or 40 with --quick"},
}
SLOW = True  # its quick mode takes about 40 s on 2 cores: tests/test_experiments.py runs it with -m slow
AUGMENT = {"max_shift": 2, "max_degrees": 10.0, "crop_scale": (0.9, 1.0)}


def plot_examples(x: np.ndarray, key, n: int = 6, copies: int = 4) -> plt.Figure:
    """n training images (left column) and `copies` augmented versions of each."""
    fig, axes = plt.subplots(n, copies + 1, figsize=(1.3 * (copies + 1), 1.3 * n))
    versions = [x[:n]] + [np.asarray(augment(k, x[:n], **AUGMENT))
                          for k in jax.random.split(key, copies)]
    for col, xs in enumerate(versions):
        for row in range(n):
            axes[row, col].imshow(xs[row, 0], cmap="gray_r", vmin=0, vmax=1)
            axes[row, col].set_axis_off()
    axes[0, 0].set_title("original", fontsize=8)
    for col in range(1, copies + 1):
        axes[0, col].set_title("augmented", fontsize=8)
    return fig


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    (x_train, t_train), test = ex.load_data(args, flatten=False)
    n = args.train_size or (300 if args.quick else 1000)
    subset = np.random.default_rng(args.seed).permutation(len(x_train))[:n]
    data = ((x_train[subset], t_train[subset]), test)
    config = {"data": "digits28" if args.quick else "mnist", "model": "SimpleConvNet",
              "train_size": n, "test_size": int(test[0].shape[0]), "optimizer": "Adam",
              "learning_rate": 0.001, "batch_size": 100,
              "epochs": args.epochs or (40 if args.quick else 60), "augment": AUGMENT,
              "grad": "manual"}

    base = cnn.simple_convnet()
    runs = {}
    with ex.Timer() as timer:
        for label, model in (("plain", base), ("augmented", augmented(base, **AUGMENT))):
            _, runs[label] = fit(model, adam(config["learning_rate"]), data,
                                 key=jax.random.key(args.seed), epochs=config["epochs"],
                                 batch_size=config["batch_size"], grad="manual",
                                 progress=args.progress, desc=f"{NAME} ({label})")

    metrics = {f"{label}_{k}": h[k][-1] for label, h in runs.items()
               for k in ("train_acc", "test_acc")}
    metrics["test_acc_gain"] = metrics["augmented_test_acc"] - metrics["plain_test_acc"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, h in runs.items():
        ax.plot(h["epoch"], h["test_acc"], label=f"{label}: test")
        ax.plot(h["epoch"], h["train_acc"], "--", lw=0.8, label=f"{label}: train")
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0.5, 1.01),
           title=f"SimpleConvNet on {n} training images, with and without augmentation")
    ax.legend(loc="lower right")
    ex.save_figure(fig, out / "augmentation.png")
    ex.save_figure(plot_examples(np.asarray(data[0][0]), jax.random.key(args.seed + 1)),
                   out / "augmented_examples.png")
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          history=runs)
    ex.report([f"test acc without augmentation {metrics['plain_test_acc']:.4f}, with "
               f"{metrics['augmented_test_acc']:.4f} ({metrics['test_acc_gain']:+.4f}); train acc "
               f"{metrics['plain_train_acc']:.4f} vs {metrics['augmented_train_acc']:.4f}",
               f"wrote {out / 'augmentation.png'}, {out / 'augmented_examples.png'} and {path}"])
    return {"config": config, "metrics": metrics, "history": runs}


if __name__ == "__main__":
    main()

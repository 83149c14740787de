"""Data augmentation on a small training set, with and without (DLFS1 §8.1.2).

DLFS1 §8.1.2: enlarging the training set with slightly transformed copies of its images
(shifts, small rotations, crops) improves recognition, most when data are scarce. Two
SimpleConvNets (the book's, Adam lr 0.001, batch 100) are trained from the same initial weights on
the same small subset, one on the images as they are and one on a freshly augmented batch every
step (`fnn.data.augment`: shift up to 2 pixels, rotation up to 10 degrees, crop to 90–100 % of
the side, rescaled), and tested on the whole test set.

Full mode: 1,000 MNIST training images, 60 epochs, the 10,000 test images. Quick mode
(``--quick``): 300 of the embedded 28x28 digits, 40 epochs, their 360 test images. The embedded
digits are all centred, which leaves a shift nothing to teach; real handwriting is not, so quick
mode moves every digit, train and test, by up to `QUICK_SHIFT` = 4 pixels each way (drawn once,
seeded; `_common.moved_digits`), as ch7_train_convnet's quick mode does. Measured in quick mode
(seed 0): test accuracy 0.561 without, 0.672 with augmentation (+0.11), while the training
accuracy is lower with it (0.863 vs 0.777): the augmented network memorises less and generalises
more. (On the centred digits as they are, 40 epochs are too few for the gain to show: 0.939
without, 0.900 with.) The full mode has not been run yet.

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
    "--train-size": {"type": "count", "help": "default 1000, or 300 with --quick"},
    "--epochs": {"type": "count", "help": "default 60, or 40 with --quick"},
}
SLOW = True  # its quick mode takes about 40 s on 2 cores: tests/test_experiments.py runs it with -m slow
AUGMENT = {"max_shift": 2, "max_degrees": 10.0, "crop_scale": (0.9, 1.0)}
QUICK_SHIFT = 4  # quick mode: the digits moved by up to this many pixels each way


def LESSON(result: dict) -> None:
    """What §8.1.2 says, asserted on a run's result.json: on a small training set augmentation
    raises the test accuracy, and narrows the gap between training and test accuracy."""
    m = result["metrics"]
    assert m["test_acc_gain"] > 0.03, f"augmentation should help on a small set: {m}"
    assert (m["augmented_train_acc"] - m["augmented_test_acc"] < m["plain_train_acc"] - m["plain_test_acc"]), \
        f"augmentation should narrow the train/test gap: {m}"


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
    if args.quick:
        rng = np.random.default_rng(args.seed)
        x_train = ex.moved_digits(x_train, QUICK_SHIFT, rng)
        test = (ex.moved_digits(test[0], QUICK_SHIFT, rng), test[1])
    n = args.train_size or (300 if args.quick else 1000)
    subset = np.random.default_rng(args.seed).permutation(len(x_train))[:n]
    data = ((x_train[subset], t_train[subset]), test)
    config = {"data": "digits28" if args.quick else "mnist", "model": "SimpleConvNet",
              "train_size": n, "test_size": int(test[0].shape[0]), "optimizer": "Adam",
              "learning_rate": 0.001, "batch_size": 100,
              "epochs": args.epochs or (40 if args.quick else 60), "augment": AUGMENT,
              "grad": "manual", "shift": QUICK_SHIFT if args.quick else 0}

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
    for i, (label, h) in enumerate(runs.items()):
        ax.plot(h["epoch"], h["test_acc"], color=f"C{i}", label=f"{label}: test")
        ax.plot(h["epoch"], h["train_acc"], "--", color=f"C{i}", lw=0.8, label=f"{label}: train")
    moved = f" (digits moved up to {QUICK_SHIFT} px)" if args.quick else ""
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.01),
           title=f"SimpleConvNet on {n} training images{moved},\nwith and without augmentation")
    ax.legend(loc="lower right")
    ex.save_figure(fig, out / "augmentation.png")
    ex.save_figure(plot_examples(np.asarray(data[0][0]), jax.random.key(args.seed + 1)),
                   out / "augmented_examples.png")
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          book_ref={"section": "DLFS1 §8.1.2", "figures": [], "quick_differs": True,
                                    "note": "the book describes augmentation and has no script or number for it"},
                          history=runs)
    ex.report([f"test acc without augmentation {metrics['plain_test_acc']:.4f}, with "
               f"{metrics['augmented_test_acc']:.4f} ({metrics['test_acc_gain']:+.4f}); train acc "
               f"{metrics['plain_train_acc']:.4f} vs {metrics['augmented_train_acc']:.4f}",
               f"wrote {out / 'augmentation.png'}, {out / 'augmented_examples.png'} and {path}"])
    return {"config": config, "metrics": metrics, "history": runs}


if __name__ == "__main__":
    main()

"""Overfitting on 300 samples, and what weight decay and dropout do to it (DLFS1 §6.4.1–6.4.3).

The book's Figures 6-20, 6-21, 6-23; ch06/overfit_weight_decay.py and overfit_dropout.py.

The book's MultiLayerNet(Extend) 784-100x6-10 (ReLU, He weights) trained on the first 300 training
images by SGD lr 0.01, mini-batches of 100, with the train and test accuracy after every epoch:

* plain, 201 epochs: the training accuracy reaches 1.0 within ~100 epochs, the test accuracy
  stays far below (the book's Figure 6-20: a gap of about 0.25);
* weight decay lambda = 0.1, 201 epochs: the gap shrinks, the training accuracy no longer
  reaches 1.0 (Figure 6-21);
* dropout, drop_rate 0.2 (the book's ``dropout_ratio``), 301 epochs: the gap shrinks too
  (Figure 6-23).

The plain and weight-decay networks differ only in lambda, so they train together in one vmapped
program (`fnn.multi.fit_many`); the dropout network has its own. Full mode: MNIST (the 10,000 test
images). Quick mode: the first 300 embedded digits (28x28) and their 360 test images.

Writes ``overfit.png`` (three panels of train/test accuracy per epoch) and ``result.json`` (final
train and test accuracy and their gap per setting).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import optim
from fnn.models import mlp
from fnn.multi import fit_many, index
from fnn_experiments import _common as ex

NAME = "ch6_overfit"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--epochs": {"type": "int", "help": "epochs without / with dropout (default 201 / 301, the book's)"},
}
TRAIN_SIZE, BATCH, LR, WEIGHT_DECAY, DROP_RATE = 300, 100, 0.01, 0.1, 0.2


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    (x_train, t_train), test = ex.load_data(args)
    train = (x_train[:TRAIN_SIZE], t_train[:TRAIN_SIZE])
    epochs = (args.epochs, args.epochs) if args.epochs else (201, 301)
    config = {"data": "digits28" if args.quick else "mnist", "train_size": TRAIN_SIZE,
              "test_size": int(test[0].shape[0]), "hidden_sizes": [100] * 6, "activation": "relu",
              "weight_init": "he", "optimizer": f"sgd({LR})", "batch_size": BATCH,
              "weight_decay": WEIGHT_DECAY, "drop_rate": DROP_RATE,
              "epochs": {"plain": epochs[0], "weight_decay": epochs[0], "dropout": epochs[1]}}
    D = x_train.shape[1]
    key = jax.random.key(args.seed)
    evals = {"train": train, "test": test}
    with ex.Timer() as timer:
        _, h = fit_many(lambda wd: mlp.model(D, config["hidden_sizes"], 10, weight_decay=wd),
                        optim.sgd(LR), train, jax.random.split(key, 2),
                        hparams=jnp.array([0.0, WEIGHT_DECAY], x_train.dtype), epochs=epochs[0],
                        batch_size=BATCH, eval_data=evals, progress=args.progress,
                        desc=f"{NAME} (plain, weight decay)")
        _, hd = fit_many(mlp.model(D, config["hidden_sizes"], 10, drop_rate=DROP_RATE), optim.sgd(LR),
                         train, jax.random.split(jax.random.fold_in(key, 1), 1), epochs=epochs[1],
                         batch_size=BATCH, eval_data=evals, progress=args.progress, desc=f"{NAME} (dropout)")
    runs = {"plain": index(h, 0), "weight_decay": index(h, 1), "dropout": index(hd, 0)}
    titles = {"plain": "no regularisation (Fig. 6-20)",
              "weight_decay": f"weight decay λ = {WEIGHT_DECAY} (Fig. 6-21)",
              "dropout": f"dropout, drop_rate {DROP_RATE} (Fig. 6-23)"}

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    for ax, (name, r) in zip(axes, runs.items(), strict=True):
        e = np.arange(1, len(r["train_acc"]) + 1)
        mark = max(len(e) // 20, 1)
        ax.plot(e, r["train_acc"], marker="o", markevery=mark, ms=3, label="train")
        ax.plot(e, r["test_acc"], marker="s", markevery=mark, ms=3, label="test")
        ax.set(title=titles[name], xlabel="epochs", ylim=(0, 1.0))
        ax.legend(loc="lower right")
    axes[0].set_ylabel("accuracy")
    fig.suptitle(f"{TRAIN_SIZE} training samples of {config['data']}, 784-100x6-10 ReLU, SGD lr {LR}")
    fig.tight_layout()
    ex.save_figure(fig, out / "overfit.png")

    metrics = {name: {"train_acc": float(r["train_acc"][-1]), "test_acc": float(r["test_acc"][-1]),
                      "gap": float(r["train_acc"][-1] - r["test_acc"][-1])} for name, r in runs.items()}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            history={name: {k: np.asarray(r[k]).tolist() for k in
                                            ("train_acc", "test_acc", "train_loss", "test_loss")}
                                     for name, r in runs.items()})
    ex.report([f"{k:12s} train acc {m['train_acc']:.3f}, test acc {m['test_acc']:.3f}, gap {m['gap']:.3f}"
               for k, m in metrics.items()]
              + [f"{timer.seconds:.1f} s; wrote {out / 'overfit.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

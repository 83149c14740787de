"""Batch norm on/off for 16 weight scales: the 4x4 grid of accuracy curves (DLFS1 §6.3.2, Fig. 6-19).

The book's ch06/batch_norm_test.py.

The book's MultiLayerNetExtend 784-100x5-10 (ReLU) with and without batch norm, weights
N(0, w^2) for 16 scales w = logspace(0, -4, 16), SGD lr 0.01, mini-batches of 100, 20 epochs on
1,000 training samples; the training accuracy after every epoch. The book's figure: with batch
norm the accuracy rises fast for almost every scale; without it, learning fails for the small
scales (and is slower for the large ones).

All 32 networks train in two vmapped programs (`fnn.multi.fit_many`): 16 without batch norm and
16 with it (their parameters differ in shape: gamma/beta), the weight scale a traced
hyper-parameter. Full mode: the first 1,000 MNIST training images as in the book. Quick mode: the
first 1,000 embedded digits (28x28), same settings.

Measured in quick mode (seed 0): after the 20th epoch, 15 of the 16 scales have a training
accuracy of 0.5 or more with batch norm (all but the smallest, w = 1e-4, at 0.43), 2 without
(w = 0.29 and 0.16); the best epoch of every run is recorded too (16 and 2 reach 0.5 there).

Writes ``batch_norm_test.png`` and ``result.json`` (final training accuracy per scale, with and
without batch norm, and how many scales end the 20 epochs at 0.5 or more).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import optim
from fnn.models import mlp
from fnn.multi import fit_many
from fnn_experiments import _common as ex

NAME = "ch6_batch_norm_test"
SLOW = True  # two compiled programs of 16 vmapped networks: ~30 CPU-seconds in quick mode
EPOCHS, TRAIN_SIZE, BATCH, LR = 20, 1000, 100, 0.01
LEARNED = 0.5  # a network whose final training accuracy reaches this has learned (chance: 0.1)


def LESSON(result: dict) -> None:
    """What the book's figure shows, asserted on a run's result.json (tests/test_experiments.py)."""
    m = result["metrics"]
    assert m["scales_learned_bn"] > m["scales_learned_plain"] + 8, \
        f"batch norm should learn at many more weight scales than without (Fig. 6-19): {m}"
    small = [i for i, w in enumerate(result["config"]["weight_scales"]) if w < 0.05]
    assert all(m["final_train_acc_plain"][i] < 0.2 < m["final_train_acc_bn"][i] for i in small), \
        "with small weights the plain network should not learn and the batch-norm one should"


def main(argv=None) -> dict:
    args = ex.parser(NAME, __doc__).parse_args(argv)
    out = ex.output_dir(args, NAME)
    (x_train, t_train), _ = ex.load_data(args)
    x_train, t_train = x_train[:TRAIN_SIZE], t_train[:TRAIN_SIZE]
    scales = np.logspace(0, -4, num=16)
    config = {"data": "digits28" if args.quick else "mnist", "train_size": int(x_train.shape[0]),
              "hidden_sizes": [100] * 5, "activation": "relu", "optimizer": f"sgd({LR})",
              "batch_size": BATCH, "epochs": EPOCHS, "weight_scales": scales.tolist()}
    D = x_train.shape[1]
    acc = {}
    with ex.Timer() as timer:
        for bn in (False, True):
            def model_of(w, bn=bn):
                return mlp.model(D, config["hidden_sizes"], 10, activation="relu", weight_init=w,
                                 use_batchnorm=bn)

            keys = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), bn), len(scales))
            _, h = fit_many(model_of, optim.sgd(LR), (x_train, t_train), keys,
                            hparams=jnp.asarray(scales, x_train.dtype), epochs=EPOCHS,
                            batch_size=BATCH, eval_data={"train": (x_train, t_train)})
            acc[bn] = np.asarray(h["train_acc"])  # (16, EPOCHS)

    fig, axes = plt.subplots(4, 4, figsize=(11, 9.4), sharex=True, sharey=True, layout="constrained")
    epochs = np.arange(1, EPOCHS + 1)
    for i, (ax, w) in enumerate(zip(axes.flat, scales, strict=True)):
        ax.plot(epochs, acc[True][i], label="Batch Normalization")
        ax.plot(epochs, acc[False][i], "--", label="Normal (without BatchNorm)")
        ax.set(title=f"W: {w:.3g}", ylim=(0, 1.0))
        if i % 4 == 0:
            ax.set_ylabel("training accuracy")
        if i >= 12:
            ax.set_xlabel("epochs")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle(f"training accuracy with / without batch norm on {config['train_size']} "
                 f"{config['data']} samples, SGD lr {LR} (DLFS1 Fig. 6-19)")
    ex.save_figure(fig, out / "batch_norm_test.png")

    metrics = {"final_train_acc_bn": acc[True][:, -1].tolist(),
               "final_train_acc_plain": acc[False][:, -1].tolist(),
               "scales_learned_bn": int(np.sum(acc[True][:, -1] >= LEARNED)),
               "scales_learned_plain": int(np.sum(acc[False][:, -1] >= LEARNED)),
               "scales_reaching_0.5_at_best_epoch_bn": int(np.sum(acc[True].max(1) >= LEARNED)),
               "scales_reaching_0.5_at_best_epoch_plain": int(np.sum(acc[False].max(1) >= LEARNED)),
               "mean_final_acc_bn": float(acc[True][:, -1].mean()),
               "mean_final_acc_plain": float(acc[False][:, -1].mean())}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            book_ref={"section": "DLFS1 §6.3.2", "figures": ["Fig. 6-18", "Fig. 6-19"],
                                      "script": "ch06/batch_norm_test.py", "quick_differs": True,
                                      "note": "the book draws the curves and states no number"},
                            train_acc={"bn": acc[True].tolist(), "plain": acc[False].tolist()})
    ex.report([f"W {w:9.3g}: final train acc with BN {a:.3f}, without {b:.3f}"
               for w, a, b in zip(scales, acc[True][:, -1], acc[False][:, -1], strict=True)]
              + [f"scales whose final training accuracy is {LEARNED} or more: {metrics['scales_learned_bn']}/16 "
                 f"with batch norm, {metrics['scales_learned_plain']}/16 without (at the best epoch: "
                 f"{metrics['scales_reaching_0.5_at_best_epoch_bn']}/16 and "
                 f"{metrics['scales_reaching_0.5_at_best_epoch_plain']}/16)",
                 f"{timer.seconds:.1f} s; wrote {out / 'batch_norm_test.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

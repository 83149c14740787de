"""LSTM vs GRU reading digits row by row (the gated RNNs of DLFS2 ch6 / appendix C as classifiers).

Each image is a sequence: one row of pixels per time step; the last hidden state goes through an
Affine layer to 10 classes (`fnn.models.seqclf`). Both cells train with the same jitted step
(`fnn.train.fit`), Adam (lr 0.01), batch 100, the hand-written BPTT (``--grad manual``, default) or
``jax.grad``. No number in the book; the seeds' notes expect the two gated cells to perform alike
(GRU with 3/4 of the LSTM's recurrent parameters). A plain RNN is trained too for contrast.

Quick mode (``--quick``): scikit-learn's embedded 8x8 digits (T = 8 rows of D = 8), H = 64,
20 epochs (280 steps); test accuracy about 0.97-0.99 for all three cells (measured, seed 0: RNN
0.9750, LSTM 0.9833, GRU 0.9861; 5,322, 19,338 and 14,666 parameters).
Full mode: MNIST (T = 28 rows of D = 28), H = 128, 5 epochs (3,000 steps).

Writes ``seqclf.png`` (test accuracy per epoch for each cell) and ``result.json``.
"""

from __future__ import annotations

import jax
import numpy as np
import optax

from fnn.models import seqclf
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "dlfs2_ch6_seqclf"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual"},
    "--epochs": {"type": "count"},
}
FAMILIES = ("rnn", "lstm", "gru")


def main(argv=None) -> dict:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    data = ex.load_data(args, quick="digits", full="mnist")
    side = 8 if args.quick else 28
    cfg = {"data": "digits 8x8" if args.quick else "mnist", "rows": side, "row_size": side,
           "hidden_size": 64 if args.quick else 128, "optimizer": "Adam", "lr": 0.01,
           "batch_size": 100, "epochs": args.epochs or (20 if args.quick else 5), "grad": args.grad}
    histories, metrics = {}, {}
    with ex.Timer() as timer:
        for i, family in enumerate(FAMILIES):
            model = seqclf.model(side, cfg["hidden_size"], 10, family=family, rows=side)
            size = sum(np.size(v) for v in jax.tree_util.tree_leaves(model.init(jax.random.key(0))[0]))
            _, h = fit(model, optax.adam(cfg["lr"]), data, key=jax.random.key(args.seed + i),
                       epochs=cfg["epochs"], batch_size=cfg["batch_size"], grad=args.grad,
                       progress=args.progress, desc=f"{NAME}[{family}]")
            histories[family] = h
            metrics[family] = {"test_acc": h["test_acc"][-1], "best_test_acc": max(h["test_acc"]),
                               "train_acc": h["train_acc"][-1], "train_seconds": h["seconds"],
                               "parameters": int(size)}
    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    for (family, h), style in zip(histories.items(), ("o-", "s-", "^-"), strict=True):
        ax.plot(h["epoch"], h["test_acc"], style, ms=3,
                label=f"{family.upper()}, {metrics[family]['parameters']:,} parameters")
    low = min(min(h["test_acc"]) for h in histories.values())
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(max(0.0, np.floor(low * 10) / 10), 1),
           title=f"reading {cfg['data']} row by row: T = {side} steps of {side} pixels")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right")
    ex.save_figure(fig, out / "seqclf.png")
    path = ex.save_result(out, NAME, args, config=cfg, metrics=metrics, seconds=timer.seconds,
                          book_ref={"section": "DLFS2 §6.2, appendix C",
                                    "note": "not in the book: its RNN, LSTM and GRU cells as classifiers"},
                          history=histories)
    ex.report([*(f"{f.upper()}: test acc {m['test_acc']:.4f} (best {m['best_test_acc']:.4f}), "
                 f"{m['train_seconds']:.1f} s" for f, m in metrics.items()),
               f"wrote {out} ({path.name})"])
    return {"config": cfg, "metrics": metrics}


if __name__ == "__main__":
    main()

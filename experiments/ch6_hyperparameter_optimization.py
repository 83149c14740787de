"""Hyper-parameter random search, all trials trained at once in one vmapped program (DLFS1 §6.5.3).

The book's Figure 6-24 and ch06/hyperparameter_optimization.py.

The book's search: 100 trials of MultiLayerNet 784-100x6-10 (ReLU, He weights), SGD, learning rate
10^U(-6, -2) and weight decay 10^U(-8, -4), 50 epochs of mini-batches of 100 on the first 500
training images, 20% of them held out for validation (400 train / 100 validation); the 20 best
trials' validation (solid) and training (dashed) accuracy curves. The book's best trials reach a
validation accuracy of about 0.8 with lr between 0.001 and 0.01 and weight decay 1e-8 to 1e-6.

Here all trials are one `jax.jit(jax.vmap(...))` of a `lax.scan` over epochs (`fnn.multi.fit_many`):
the learning rate and the weight decay are traced hyper-parameters. Full mode also times the same
trials run one after another in a Python loop (the same compiled single-trial program called once
per trial, compilation excluded from both) and reports the ratio of wall-clock times and of process
CPU times (the fairer number on a shared machine: it counts the work, not the waiting).

Quick mode: 100 trials on the 8x8 embedded digits (64 inputs), 6 hidden layers of 50, 50 epochs,
so it takes seconds; no loop timing. Measured in quick mode (seed 0): the best trial reaches a
validation accuracy of 0.71 at lr 0.0092, and the 10 best all have lr between 0.0023 and 0.0092:
the search finds the book's band. (The book's notebooks/ch06.ipynb run: 0.84 at lr 0.0094, the
10 best between 0.0049 and 0.0100.)

Writes ``hyperparameter_optimization.png`` and ``result.json`` (the best trials, their validation
accuracy and settings, the timings).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import optim
from fnn.models import mlp
from fnn.multi import EpochProgress, make_fit_many
from fnn_experiments import _common as ex

NAME = "ch6_hyperparameter_optimization"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--trials": {"type": "count", "default": 100, "help": "random trials (default 100)"},
    "--loop": {"choices": ["auto", "yes", "no"], "default": "auto",
               "help": "also time the trials one after another (auto: in full mode only)"},
}
SLOW = True  # one compiled program of 100 vmapped networks: ~20 CPU-seconds in quick mode
TRAIN_SIZE, VALIDATION_RATE, BATCH, SHOWN = 500, 0.2, 100, 20
BOOK = {"best_val_acc": 0.84, "best_lr": 0.009402354663034039, "best_weight_decay": 2.7657425441943384e-06,
        "best_lr_range_top10": [0.00495406975968389, 0.009976360661833212]}  # notebooks/ch06.ipynb


def LESSON(result: dict) -> None:
    """What the book's search shows, asserted on a run's result.json: a good lr band, 1e-3 to 1e-2."""
    m, trials = result["metrics"], result["trials"]
    lo, hi = m["best_lr_range_top10"]
    assert lo >= 1e-3 and hi <= 1e-2, f"the 10 best trials should have lr in [1e-3, 1e-2]: {lo:.2g}..{hi:.2g}"
    assert m["best_val_acc"] >= 0.5, f"the best trial should learn: {m['best_val_acc']}"
    slow = [a for lr, a in zip(trials["lr"], trials["final_val_acc"], strict=True) if lr < 1e-4]
    assert slow and max(slow) < 0.35, "trials with lr below 1e-4 should not learn in 50 epochs"


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    (x_all, t_all), _ = ex.load_data(args, quick="digits")
    # the book: the first 500 samples, shuffled, 20% for validation
    order = np.asarray(jax.random.permutation(jax.random.key(args.seed + 1), TRAIN_SIZE))
    x_all, t_all = np.asarray(x_all[:TRAIN_SIZE])[order], np.asarray(t_all[:TRAIN_SIZE])[order]
    n_val = int(TRAIN_SIZE * VALIDATION_RATE)
    val, train = (x_all[:n_val], t_all[:n_val]), (x_all[n_val:], t_all[n_val:])
    hidden, epochs = ([50] * 6, 50) if args.quick else ([100] * 6, 50)
    config = {"data": "digits (8x8)" if args.quick else "mnist", "train_size": int(train[0].shape[0]),
              "validation_size": n_val, "hidden_sizes": hidden, "activation": "relu",
              "weight_init": "he", "optimizer": "sgd", "batch_size": BATCH, "epochs": epochs,
              "trials": args.trials, "lr": "10^U(-6,-2)", "weight_decay": "10^U(-8,-4)"}

    k_lr, k_wd, k_init = jax.random.split(jax.random.key(args.seed), 3)
    lr = 10.0 ** jax.random.uniform(k_lr, (args.trials,), minval=-6, maxval=-2)
    wd = 10.0 ** jax.random.uniform(k_wd, (args.trials,), minval=-8, maxval=-4)
    dtype = jnp.asarray(train[0]).dtype
    hp = {"lr": lr.astype(dtype), "wd": wd.astype(dtype)}
    keys = jax.random.split(k_init, args.trials)
    D = train[0].shape[1]
    shown = EpochProgress(epochs, f"{NAME} ({args.trials} trials)", enabled=args.progress)

    def make_run(on_epoch):
        return make_fit_many(lambda h: mlp.model(D, hidden, 10, weight_init="he", weight_decay=h["wd"]),
                             lambda h: optim.sgd(h["lr"]), epochs=epochs, batch_size=BATCH,
                             eval_names=("train", "val"), on_epoch=on_epoch)

    run = make_run(shown if shown.enabled else None)
    data_args = (jnp.asarray(train[0]), jnp.asarray(train[1]),
                 (tuple(jnp.asarray(a) for a in train), tuple(jnp.asarray(a) for a in val)))

    with ex.Timer() as total:
        t0 = time.perf_counter()
        compiled = run.lower(keys, hp, *data_args).compile()
        compile_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        with shown:  # the epochs' progress: a few host calls, a small part of vmap_seconds
            _, h = jax.block_until_ready(compiled(keys, hp, *data_args))
        vmap_s, vmap_cpu = time.perf_counter() - t0, time.process_time() - c0
    timing = {"compile_seconds": compile_s, "vmap_seconds": vmap_s, "vmap_cpu_seconds": vmap_cpu}

    if args.loop == "yes" or (args.loop == "auto" and not args.quick):
        one = make_run(None).lower(keys[:1], jax.tree_util.tree_map(lambda a: a[:1], hp), *data_args).compile()
        t0, c0 = time.perf_counter(), time.process_time()
        loop_h = []
        for i in range(args.trials):
            sl = slice(i, i + 1)
            loop_h.append(jax.block_until_ready(
                one(keys[sl], jax.tree_util.tree_map(lambda a, sl=sl: a[sl], hp), *data_args))[1])
        loop_s, loop_cpu = time.perf_counter() - t0, time.process_time() - c0
        agree = float(np.max(np.abs(np.concatenate([np.asarray(x["val_acc"]) for x in loop_h])
                                    - np.asarray(h["val_acc"]))))
        timing.update(loop_seconds=loop_s, loop_cpu_seconds=loop_cpu, loop_over_vmap=loop_s / vmap_s,
                      loop_over_vmap_cpu=loop_cpu / vmap_cpu,
                      max_val_acc_difference_loop_vs_vmap=agree)

    val_acc, train_acc = np.asarray(h["val_acc"]), np.asarray(h["train_acc"])  # (trials, epochs)
    best = np.argsort(-val_acc[:, -1], kind="stable")[:SHOWN]
    lr_np, wd_np = np.asarray(lr), np.asarray(wd)
    rows = int(np.ceil(SHOWN / 5))
    fig, axes = plt.subplots(rows, 5, figsize=(13, 2.3 * rows), sharex=True, sharey=True)
    e = np.arange(1, epochs + 1)
    for rank, (ax, i) in enumerate(zip(axes.flat, best, strict=False), start=1):
        ax.plot(e, val_acc[i])
        ax.plot(e, train_acc[i], "--")
        ax.set_title(f"Best-{rank} val {val_acc[i, -1]:.2f}\nlr {lr_np[i]:.1e} wd {wd_np[i]:.1e}",
                     fontsize=8)
        ax.set_ylim(0, 1.0)
    for ax in axes[-1]:
        ax.set_xlabel("epochs")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    fig.suptitle(f"{args.trials} random trials on {config['data']} ({config['train_size']} train / "
                 f"{n_val} val), trained at once; solid: validation, dashed: train (DLFS1 Fig. 6-24)")
    fig.tight_layout()
    ex.save_figure(fig, out / "hyperparameter_optimization.png")

    best_trials = [{"rank": r, "val_acc": float(val_acc[i, -1]), "train_acc": float(train_acc[i, -1]),
                    "lr": float(lr_np[i]), "weight_decay": float(wd_np[i])}
                   for r, i in enumerate(best, start=1)]
    metrics = {"best_val_acc": best_trials[0]["val_acc"], "best_lr": best_trials[0]["lr"],
               "best_weight_decay": best_trials[0]["weight_decay"],
               "best_lr_range_top10": [float(lr_np[best[:10]].min()), float(lr_np[best[:10]].max())],
               "trials": args.trials, **timing}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=total.seconds,
                            book=BOOK, book_ref={"section": "DLFS1 §6.5.3", "figures": ["Fig. 6-24"],
                                                 "script": "ch06/hyperparameter_optimization.py",
                                                 "quick_differs": bool(args.quick),
                                                 "note": "the book's numbers: its notebooks/ch06.ipynb run"},
                            best_trials=best_trials,
                            trials={"lr": lr_np.tolist(), "weight_decay": wd_np.tolist(),
                                    "final_val_acc": val_acc[:, -1].tolist()})
    lines = [f"Best-{b['rank']} (val acc {b['val_acc']:.2f}) | lr {b['lr']:.3g}, weight decay "
             f"{b['weight_decay']:.3g}" for b in best_trials[:5]]
    lines.append(f"{args.trials} trials at once: compile {compile_s:.1f} s, run {vmap_s:.2f} s "
                 f"({vmap_cpu:.2f} CPU-s)")
    if "loop_seconds" in timing:
        lines.append(f"one after another: {timing['loop_seconds']:.2f} s ({timing['loop_cpu_seconds']:.2f} "
                     f"CPU-s) -> loop / vmap = {timing['loop_over_vmap']:.2f} wall, "
                     f"{timing['loop_over_vmap_cpu']:.2f} CPU (val acc max difference "
                     f"{timing['max_val_acc_difference_loop_vs_vmap']:.2g}, float32)")
    ex.report(lines + [f"wrote {out / 'hyperparameter_optimization.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

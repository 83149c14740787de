"""All seven optimizers on MNIST: training-loss curves (DLFS1 §6.1.8, Figure 6-9).

The book's ch06/optimizer_compare_mnist.py, with the three optimizers it leaves out.

The book's MultiLayerNet 784-100-100-100-100-10 (ReLU, He weights) trained by each of `fnn.optim`'s
hand-written optimizers with the book's default settings (SGD lr 0.01, Momentum lr 0.01 / 0.9,
AdaGrad lr 0.01, Adam lr 0.001), mini-batches of 128, 2,000 iterations. The book's figure: SGD
learns slowest; AdaGrad, Adam and Momentum bring the loss well below SGD's (AdaGrad a little
fastest), i.e. near 0.1-0.2 after 2,000 iterations while SGD is still near 0.4-0.5. The book's
script has RMSprop commented out; here it runs with its class's defaults (lr 0.01, decay 0.99),
and so do Nesterov (the book's class: lr 0.01, momentum 0.9) and AdaDelta (not in the book;
Zeiler's lr 1, rho 0.95, eps 1e-6), drawn dashed.

Each optimizer trains ``--seeds`` networks (default 1, as the book) at once with
`fnn.multi.fit_many` (vmap over initialisation/shuffling keys); the curve is their mean, smoothed.
Full mode: full MNIST, 5 epochs of 400 batches = 2,000 iterations. Quick mode: the embedded
digits (28x28), 300 iterations. Measured in quick mode (seed 0), final smoothed loss: SGD 0.25,
Momentum 0.038, AdaGrad 0.027, Adam 0.013, Nesterov 0.031, AdaDelta 0.015; RMSprop 0.12, its
loss jumping up and down: lr 0.01 is too large for it here (the book's script leaves it out).

Writes ``optimizer_compare_mnist.png`` and ``result.json`` (final smoothed loss and test accuracy
per optimizer).
"""

from __future__ import annotations

import jax

from fnn import optim
from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch6_optimizer_compare_mnist"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--seeds": {"type": "count", "default": 1, "help": "networks per optimizer, trained at once"},
    "--optimizers": {"nargs": "+", "choices": ["SGD", "Momentum", "AdaGrad", "Adam", "Nesterov", "RMSprop", "AdaDelta"],
                     "help": "these only (default: all seven; the book's script: SGD Momentum AdaGrad Adam)"},
}
SLOW = True  # seven optimizers x 300 steps of a 784-100x4-10 net, and their evaluations: ~50 CPU-seconds in quick mode
SETTINGS = {"SGD": ("sgd", {"learning_rate": 0.01}),
            "Momentum": ("momentum", {"learning_rate": 0.01, "momentum": 0.9}),
            "AdaGrad": ("adagrad", {"learning_rate": 0.01}),
            "Adam": ("adam", {"learning_rate": 0.001}),
            "Nesterov": ("nesterov", {"learning_rate": 0.01, "momentum": 0.9}),
            "RMSprop": ("rmsprop", {"learning_rate": 0.01, "decay_rate": 0.99}),
            "AdaDelta": ("adadelta", {"learning_rate": 1.0, "rho": 0.95, "eps": 1e-6})}
BOOK = ("SGD", "Momentum", "AdaGrad", "Adam")  # in the book's figure; the others are drawn dashed


def LESSON(result: dict) -> None:
    """What the book's figure shows, asserted on a run's result.json (tests/test_experiments.py)."""
    loss = {k: v["final_loss"] for k, v in result["metrics"].items()}
    for name in ("Momentum", "AdaGrad", "Adam", "Nesterov", "AdaDelta"):  # RMSprop at lr 0.01 jumps (0.12 vs 0.25)
        assert loss[name] < 0.5 * loss["SGD"], f"{name} should learn much faster than SGD (Fig. 6-9): {loss}"


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    data, config = ex.setup(args)
    chosen = {name: SETTINGS[name] for name in SETTINGS if args.optimizers is None or name in args.optimizers}
    config["optimizers"] = {name: {"rule": rule, **kw} for name, (rule, kw) in chosen.items()}
    model = mlp.model(data[0][0].shape[1], config["hidden_sizes"], 10, activation="relu",
                      weight_init="he")
    curves, metrics = {}, {}
    with ex.Timer() as timer:
        for name, (rule, kw) in chosen.items():
            i = list(SETTINGS).index(name)  # each optimizer's key, whichever others run
            with ex.Timer() as train_timer:  # compile, training and the final evaluation
                losses, test_acc = ex.train_curves(model, optim.get(rule, **kw), data, config,
                                                jax.random.fold_in(jax.random.key(args.seed), i),
                                                progress=args.progress, desc=f"{NAME} ({name})")
            curves[name] = losses.mean(0)
            metrics[name] = {"final_loss": float(ex.smooth(curves[name])[-1]),
                             "test_acc": float(test_acc.mean()), "test_acc_per_seed": test_acc.tolist(),
                             "train_seconds": train_timer.seconds}
            if args.progress:
                print(f"{name}: final loss {metrics[name]['final_loss']:.4f}, "
                      f"test acc {metrics[name]['test_acc']:.4f}", flush=True)

    seeds = "" if args.seeds == 1 else f", mean of {args.seeds} seeds"
    fig = ex.loss_figure(curves, f"optimizers on {config['data']}, 784-100x4-10 ReLU, batch 128{seeds}\n"
                              f"(DLFS1 Fig. 6-9; dashed: not in the book's figure)",
                         ylim=1.0 if not args.quick else 2.5, dashed=[k for k in curves if k not in BOOK])
    ex.save_figure(fig, out / "optimizer_compare_mnist.png")
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            book_ref={"section": "DLFS1 §6.1.8", "figures": ["Fig. 6-9"],
                                      "script": "ch06/optimizer_compare_mnist.py",
                                      "quick_differs": True, "note": "the book draws the curves and states no number"},
                            step_loss={k: v.tolist() for k, v in curves.items()})
    ex.report([f"{k:9s} final smoothed loss {m['final_loss']:.4f}, test acc {m['test_acc']:.4f}"
               for k, m in metrics.items()]
              + [f"{timer.seconds:.1f} s; wrote {out / 'optimizer_compare_mnist.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

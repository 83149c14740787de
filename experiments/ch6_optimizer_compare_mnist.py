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

from fnn import optim
from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch6_optimizer_compare_mnist"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--seeds": {"type": "int", "default": 1, "help": "networks per optimizer, trained at once"},
}
OPTIMIZERS = {"SGD": optim.sgd(0.01), "Momentum": optim.momentum(0.01, 0.9),
              "AdaGrad": optim.adagrad(0.01), "Adam": optim.adam(0.001)}
def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    data, config = ex.setup(args)
    config["optimizers"] = {"SGD": "sgd(0.01)", "Momentum": "momentum(0.01, 0.9)",
                            "AdaGrad": "adagrad(0.01)", "Adam": "adam(0.001)"}
    model = mlp.model(data[0][0].shape[1], config["hidden_sizes"], 10, activation="relu",
                      weight_init="he")
    curves, metrics = {}, {}
    with ex.Timer() as timer:
        for i, (name, opt) in enumerate(OPTIMIZERS.items()):
            losses, test_acc = ex.train_curves(model, opt, data, config,
                                            jax.random.fold_in(jax.random.key(args.seed), i),
                                            progress=args.progress, desc=f"{NAME} ({name})")
            curves[name] = losses.mean(0)
            metrics[name] = {"final_loss": float(ex.smooth(curves[name])[-1]),
                             "test_acc": float(test_acc.mean()), "test_acc_per_seed": test_acc.tolist()}
            if args.progress:
                print(f"{name}: final loss {metrics[name]['final_loss']:.4f}, "
                      f"test acc {metrics[name]['test_acc']:.4f}", flush=True)

    fig = ex.loss_figure(curves, f"optimizers on {config['data']}, 784-100x4-10 ReLU, batch 128 "
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

"""LeNet-5 on MNIST and on Fashion-MNIST (DLFS1 §7.7.1; LeCun et al. 1998).

LeNet-5: conv 6@5x5 (padded by 2, so a 28x28 digit is the paper's 32x32 input) - pool - conv
16@5x5 - pool - affine 120 - affine 84 - affine 10, with ReLU and max pooling as DLFS1 §7.7.1
describes today's version (``--classic``: tanh and average pooling, closer to the paper). He
initialisation, Adam (learning rate 0.001), mini-batches of 100; the book's backprop
(``--grad manual``, default) or ``jax.grad`` (``--grad autodiff``), on the default kernels.

Full mode: 10 epochs on full MNIST (expected test accuracy about 0.99), then on Fashion-MNIST when
its files are present (about 0.89–0.90). Quick mode (``--quick``): 15 epochs on the embedded
28x28 digits.

Figures: ``lenet5_<data>.png`` (loss, accuracy) per data set. Writes ``result.json``.
"""

from __future__ import annotations

import jax

from fnn.data import DataNotFoundError, load
from fnn.models import cnn
from fnn.optim import adam
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch8_lenet5"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual",
               "help": "gradient path: the book's backprop (manual) or jax.grad (autodiff)"},
    "--epochs": {"type": "count", "help": "default 10, or 15 with --quick"},
    "--classic": {"action": "store_true", "help": "tanh and average pooling (1998)"},
}


def LESSON(result: dict) -> None:
    """What §7.7.1 says of LeNet, asserted on a run's result.json: the 1998 design still learns
    the digits well (about 0.99 on MNIST; 0.93 or more on the small quick set)."""
    m = result["metrics"]
    data = "digits28" if result["quick"] else "mnist"
    assert m[f"{data}_test_acc"] >= (0.93 if result["quick"] else 0.98), f"LeNet-5 should learn the digits: {m}"


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    names = ["digits28"] if args.quick else ["mnist", "fashion-mnist"]
    config = {"data": names, "model": "LeNet-5" + (" (tanh, avg pool)" if args.classic else ""),
              "optimizer": "Adam", "learning_rate": 0.001, "batch_size": 100,
              "epochs": args.epochs or (15 if args.quick else 10), "grad": args.grad}
    model = cnn.lenet5(activation="tanh" if args.classic else "relu",
                       pool="avg" if args.classic else "max")
    metrics, histories, lines = {}, {}, []
    with ex.Timer() as timer:
        for name in names:
            try:
                data = load(name, flatten=False)
            except DataNotFoundError as e:
                if name == "mnist":
                    raise
                lines.append(f"{name}: skipped ({str(e).splitlines()[0][:120]}...)")
                metrics[f"{name}_test_acc"] = None
                continue
            _, h = fit(model, adam(config["learning_rate"]), data, key=jax.random.key(args.seed),
                       epochs=config["epochs"], batch_size=config["batch_size"], grad=args.grad,
                       progress=args.progress, desc=f"{NAME} ({name})")
            histories[name] = h
            metrics[f"{name}_train_acc"], metrics[f"{name}_test_acc"] = (h["train_acc"][-1],
                                                                         h["test_acc"][-1])
            ex.save_figure(ex.plot_history(h, f"{config['model']} on {name}"),
                           out / f"lenet5_{name}.png")
            lines.append(f"{name}: train acc {h['train_acc'][-1]:.4f}, test acc "
                         f"{h['test_acc'][-1]:.4f} ({h['seconds']:.1f} s of training)")
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          book_ref={"section": "DLFS1 §7.7.1", "figures": [], "quick_differs": True,
                                    "note": "the book describes LeNet and has no script or number for it"},
                          history=histories)
    ex.report(lines + [f"wrote {path}"])
    return {"config": config, "metrics": metrics, "history": histories}


if __name__ == "__main__":
    main()

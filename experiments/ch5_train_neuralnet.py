"""Train the two-layer net by backprop (DLFS1 §5.7.4, ch05/train_neuralnet.py; book: test acc ~0.97).

The book's TwoLayerNet (784-50-10, ReLU, weights N(0, 0.01^2)) trained by SGD with learning rate
0.1 on mini-batches of 100; the gradient is the hand-written backprop (``--grad manual``, the
default) or ``jax.grad`` (``--grad autodiff``).

Full mode: full MNIST, 10,000 iterations as in the book (about 16.7 epochs). The book prints
train/test accuracy once an epoch and reaches a test accuracy of about 0.97.
Quick mode (``--quick``): the embedded digits upsampled to 28x28, so the network is the same
784-50-10; 1,400 iterations (100 epochs of 14 batches) in a few seconds, test accuracy about 0.97.

Writes ``train_neuralnet.png`` (loss per iteration, accuracy per epoch) and ``result.json``.
"""

from __future__ import annotations

import jax

from fnn import optim
from fnn.models import mlp
from fnn.train import Checkpoints, fit
from fnn_experiments import _common as ex

NAME = "ch5_train_neuralnet"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual",
               "help": "gradient path: the book's backprop (manual) or jax.grad (autodiff)"},
    "--steps": {"type": "count", "help": "training iterations (default: 10000, or 1400 with --quick)"},
    "--checkpoint-dir": {"type": "folder",
                         "help": "write a checkpoint there after every epoch (the newest 3 are kept)"},
    "--resume": {"action": "store_true", "help": "continue from the newest checkpoint in --checkpoint-dir"},
}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    if args.resume and args.checkpoint_dir is None:
        p.error("--resume needs --checkpoint-dir DIR (the folder of the checkpoints to resume from)")
    out = ex.output_dir(args, NAME)

    data = ex.load_data(args)
    (x_train, t_train), (x_test, t_test) = data
    config = {"data": "digits28" if args.quick else "mnist", "model": "TwoLayerNet 784-50-10",
              "weight_init_std": 0.01, "optimizer": "SGD", "learning_rate": 0.1, "batch_size": 100,
              "steps": args.steps or (1400 if args.quick else 10000), "grad": args.grad,
              "train_size": int(x_train.shape[0]), "test_size": int(x_test.shape[0])}

    model = mlp.two_layer_net(x_train.shape[1], 50, 10, weight_init_std=0.01)
    checkpoints = None if args.checkpoint_dir is None else Checkpoints(args.checkpoint_dir, resume=args.resume)
    with ex.Timer() as timer:
        _, history = fit(model, optim.sgd(config["learning_rate"]), data,
                         key=jax.random.key(args.seed), steps=config["steps"],
                         batch_size=config["batch_size"], grad=args.grad, progress=args.progress,
                         desc=NAME, checkpoints=checkpoints)

    metrics = {"train_acc": history["train_acc"][-1], "test_acc": history["test_acc"][-1],
               "final_loss": history["train_loss"][-1], "train_seconds": history["seconds"],
               "eval_seconds": history["eval_seconds"]}
    fig = ex.plot_history(history, f"TwoLayerNet on {config['data']}, SGD lr 0.1, {args.grad} gradient "
                                   f"(DLFS1 §5.7.4)")
    ex.save_figure(fig, out / "train_neuralnet.png")
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics,
                          seconds=timer.seconds, history=history, book={"test_acc": 0.97},
                          book_ref={"section": "DLFS1 §5.7.4", "script": "ch05/train_neuralnet.py",
                                    "approx": ["test_acc"], "quick_differs": True,
                                    "note": "about 0.97 on MNIST after 10,000 iterations"})
    ex.report([f"train acc {metrics['train_acc']:.4f}, test acc {metrics['test_acc']:.4f} "
               f"(book: ~0.97) in {history['seconds']:.1f} s of training",
               f"wrote {out / 'train_neuralnet.png'} and {path}"])
    return {"config": config, "metrics": metrics, "history": history}


if __name__ == "__main__":
    main()

"""Weight init std=0.01 vs Xavier vs He on MNIST: training-loss curves (DLFS1 §6.2.4, Figure 6-15).

The book's ch06/weight_init_compare.py.

The book's MultiLayerNet 784-100-100-100-100-10 with ReLU, SGD lr 0.01, mini-batches of 128,
2,000 iterations, weights from N(0, 0.01^2), Xavier (std 1/sqrt(n)) or He (std sqrt(2/n)). The
book's figure: with std=0.01 the loss does not move from 2.3 (the signal vanishes layer by layer,
§6.2.3), while He and Xavier learn, He fastest (about 0.2-0.3 after 2,000 iterations).

The three initialisations give networks of the same shapes, so all of them (times ``--seeds``)
train at once in one vmapped program (`fnn.multi.fit_many`): the hyper-parameter selects the
initialiser with `lax.switch`. Full mode: full MNIST; quick mode: the embedded digits (28x28),
300 iterations.

Writes ``weight_init_compare.png`` and ``result.json`` (final smoothed loss and test accuracy per
initialiser).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fnn import optim
from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch6_weight_init_compare"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--seeds": {"type": "int", "default": 1, "help": "networks per initialiser, trained at once"},
}
INITS = {"std=0.01": 0.01, "Xavier": "xavier", "He": "he"}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    data, config = ex.setup(args)
    config.update(optimizer="sgd(0.01)", inits=INITS)
    D = data[0][0].shape[1]
    models = [mlp.model(D, config["hidden_sizes"], 10, activation="relu", weight_init=spec)
              for spec in INITS.values()]

    def model_of(which):  # one network whose init is chosen by a (traced) index
        return models[0]._replace(init=lambda key: jax.lax.switch(which, [m.init for m in models], key))

    which = jnp.repeat(jnp.arange(len(INITS)), args.seeds)  # (M,) = (3 * seeds,)
    with ex.Timer() as timer:
        losses, test_acc = ex.train_curves(model_of, optim.sgd(0.01), data, config,
                                        jax.random.key(args.seed), hparams=which,
                                        progress=args.progress, desc=NAME)
    curves, metrics = {}, {}
    for i, name in enumerate(INITS):
        rows = np.asarray(which) == i
        curves[name] = losses[rows].mean(0)
        metrics[name] = {"final_loss": float(ex.smooth(curves[name])[-1]),
                         "test_acc": float(test_acc[rows].mean())}

    fig = ex.loss_figure(curves, f"weight init on {config['data']}, 784-100x4-10 ReLU, SGD lr 0.01 "
                              f"(mean of {args.seeds})", ylim=2.5)
    ex.save_figure(fig, out / "weight_init_compare.png")
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            step_loss={k: v.tolist() for k, v in curves.items()})
    ex.report([f"{k:9s} final smoothed loss {m['final_loss']:.4f}, test acc {m['test_acc']:.4f}"
               for k, m in metrics.items()]
              + [f"{timer.seconds:.1f} s; wrote {out / 'weight_init_compare.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

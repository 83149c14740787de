"""Weight init zeros vs std=0.01 vs Xavier vs He on MNIST: training-loss curves (DLFS1 §6.2, Figure 6-15).

The book's ch06/weight_init_compare.py, and §6.2.1's "all zeros" shown failing.

The book's MultiLayerNet 784-100-100-100-100-10 with ReLU, SGD lr 0.01, mini-batches of 128,
2,000 iterations, weights from N(0, 0.01^2), Xavier (std 1/sqrt(n)) or He (std sqrt(2/n)). The
book's figure: with std=0.01 the loss does not move from 2.3 (the signal vanishes layer by layer,
§6.2.3), while He and Xavier learn, He fastest (about 0.2-0.3 after 2,000 iterations).

§6.2.1 explains, without a figure, why weights must not all start equal (zero, say): every unit
of a layer then computes the same thing and receives the same update, so the units stay identical
and the layer is as good as one unit. With zeros and ReLU it is starker still: every hidden output
is 0, so no weight receives a gradient and only the output bias learns (the class frequencies).
The fourth curve shows it: the loss stays at 2.3, and the right panel measures, per layer, the
largest difference between two units' incoming weights after training: exactly 0 for zeros.

The four initialisations give networks of the same shapes, so all of them (times ``--seeds``)
train at once in one vmapped program (`fnn.multi.fit_many`): the hyper-parameter selects the
initialiser with `lax.switch`. Full mode: full MNIST; quick mode: the embedded digits (28x28),
300 iterations. Measured in quick mode (seed 0): final smoothed loss 2.30 (zeros), 2.30
(std=0.01), 1.67 (Xavier), 0.30 (He).

Writes ``weight_init_compare.png`` and ``result.json`` (final smoothed loss, test accuracy and the
hidden units' spread per initialiser).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import optim
from fnn.models import mlp
from fnn_experiments import _common as ex

NAME = "ch6_weight_init_compare"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--seeds": {"type": "count", "default": 1, "help": "networks per initialiser, trained at once"},
}
INITS = {"std=0.01": 0.01, "Xavier": "xavier", "He": "he", "zeros": "zeros"}  # zeros drawn last, on top
HIDDEN = ("W1", "W2", "W3", "W4")  # the weights into the four hidden layers


def unit_spread(W: np.ndarray) -> float:
    """The largest difference between two units' incoming weights: max over inputs i of
    max_j W[i, j] - min_j W[i, j] for W (inputs, units); 0 when every unit is the same."""
    return float(np.max(W.max(axis=1) - W.min(axis=1)))


def LESSON(result: dict) -> None:
    """What the book's figure shows, asserted on a run's result.json (tests/test_experiments.py)."""
    m = result["metrics"]
    assert m["He"]["final_loss"] < m["Xavier"]["final_loss"] < m["std=0.01"]["final_loss"] - 0.3, \
        f"for ReLU, He should learn fastest, Xavier next, std 0.01 not at all (Fig. 6-15): {m}"
    assert m["std=0.01"]["final_loss"] > 2.2 and m["zeros"]["final_loss"] > 2.2, "std 0.01 / zeros should not learn"
    assert max(m["zeros"]["hidden_unit_spread"]) == 0.0 < min(m["He"]["hidden_unit_spread"]), \
        "with zeros every hidden unit should stay identical (§6.2.1)"


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

    which = jnp.repeat(jnp.arange(len(INITS)), args.seeds)  # (M,) = (4 * seeds,)
    with ex.Timer() as timer:
        losses, test_acc, ts = ex.train_curves(model_of, optim.sgd(0.01), data, config,
                                               jax.random.key(args.seed), hparams=which, states=True,
                                               progress=args.progress, desc=NAME)
    params = jax.device_get(ts.params)
    curves, metrics = {}, {}
    for i, name in enumerate(INITS):
        rows = np.asarray(which) == i
        curves[name] = losses[rows].mean(0)
        metrics[name] = {"final_loss": float(ex.smooth(curves[name])[-1]),
                         "test_acc": float(test_acc[rows].mean()),
                         "hidden_unit_spread": [max(unit_spread(W) for W in params[k][rows]) for k in HIDDEN]}

    fig, (ax_loss, ax_spread) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained",
                                             gridspec_kw={"width_ratios": [1.6, 1]})
    seeds = "" if args.seeds == 1 else f", mean of {args.seeds} seeds"
    ex.loss_figure(curves, f"training loss (smoothed{seeds}; zeros and std=0.01 overlap)", ylim=2.5, ax=ax_loss)
    width = 0.8 / len(INITS)
    for i, name in enumerate(INITS):
        spread = metrics[name]["hidden_unit_spread"]
        bars = ax_spread.bar(np.arange(len(HIDDEN)) + (i - (len(INITS) - 1) / 2) * width, spread, width,
                             label=name)
        if max(spread) == 0:
            ax_spread.bar_label(bars, labels=["0"] * len(spread), fontsize=8)
    ax_spread.set(xticks=range(len(HIDDEN)), xticklabels=[f"layer {i} ({k})" for i, k in enumerate(HIDDEN, 1)],
                  ylabel="max difference between two units' weights",
                  title="after training: how different the hidden units are")
    ax_spread.legend(fontsize=8)
    fig.suptitle(f"weight init on {config['data']}, 784-100x4-10 ReLU, SGD lr 0.01, "
                 f"{config['iterations']} iterations (DLFS1 Fig. 6-15, and §6.2.1's zeros)")
    ex.save_figure(fig, out / "weight_init_compare.png")
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            book_ref={"section": "DLFS1 §6.2.1, §6.2.4", "figures": ["Fig. 6-15"],
                                      "script": "ch06/weight_init_compare.py", "quick_differs": True,
                                      "note": "the book draws the curves and states no number"},
                            step_loss={k: v.tolist() for k, v in curves.items()})
    ex.report([f"{k:9s} final smoothed loss {m['final_loss']:.4f}, test acc {m['test_acc']:.4f}, hidden units' "
               f"spread " + " ".join(f"{v:.3g}" for v in m["hidden_unit_spread"])
               for k, m in metrics.items()]
              + [f"{timer.seconds:.1f} s; wrote {out / 'weight_init_compare.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

"""Hidden-layer activation histograms for std=1, 0.01, Xavier and He weights (DLFS1 §6.2.2–6.2.3).

The book's Figures 6-10 to 6-14.

The book's ch06/weight_init_activation_histogram.py: 1,000 random inputs (N(0, 1), 100 features)
through 5 hidden layers of 100 units, no biases, weights drawn by `fnn.init`. One row of five
histograms (one a layer) for each (activation, initialiser) pair the book discusses, and the
other combinations for comparison: sigmoid, tanh and ReLU, each with std=1, std=0.01, Xavier and
He, so 12 rows. What the book shows, and what this run measures (seed 0, float32):

* sigmoid, std=1: activations pile up at 0 and 1 (vanishing gradients, Figure 6-10): 53–70 %
  of each layer's outputs are within 0.02 of 0 or 1;
* sigmoid, std=0.01: all near 0.5 (no diversity of expression, Figure 6-11): a standard
  deviation of 0.025 in layer 1, 0.011–0.014 after;
* sigmoid, Xavier: spread out in every layer (Figure 6-13): standard deviation 0.11–0.21,
  none saturated;
* ReLU: std=0.01 shrinks by about 15x a layer (standard deviation 0.059 in layer 1, 1.6e-6
  in layer 5), Xavier by about 1.4x a layer (0.59 to 0.16), He stays the same (0.84, 0.89),
  std=1 explodes by about 7x a layer (5.9 to 1.6e4) (Figure 6-14).

Sigmoid and tanh panels share the function's range; the ReLU panels show the non-zero outputs
(half of them are exactly 0, which the book cuts off with its y-limit) on a logarithmic axis
shared by all ReLU panels, so a distribution that shrinks or explodes layer by layer moves left
or right instead of leaving the frame. No data and no training, so ``--quick`` and the full mode
are the same run. All 12 networks run as one compiled program. Writes
``activation_histogram.png`` and ``result.json`` (each layer's standard deviation, and the
saturated fraction of the sigmoid and tanh layers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn import functions as F
from fnn import init as initializers
from fnn_experiments import _common as ex

NAME = "ch6_weight_init_activation_histogram"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
N, NODES, LAYERS, BINS = 1000, 100, 5, 30
INITS = {"std=1": 1.0, "std=0.01": 0.01, "Xavier": "xavier", "He": "he"}
ACTIVATIONS = {"sigmoid": F.sigmoid, "tanh": F.tanh, "relu": F.relu}
RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
SATURATED = 0.02  # an output within this of the function's bounds (0 or 1; -1 or 1) is saturated


def activations(key: jax.Array, activation: str, weight_init) -> jax.Array:
    """The (LAYERS, N, NODES) float32 activations of the book's 5-layer net for one initialiser."""
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (N, NODES), jnp.float32)
    w_init = initializers.get(weight_init)
    act = ACTIVATIONS[activation]

    def layer(z, k):
        z = act(z @ w_init(k, (NODES, NODES), x.dtype, fan_in=NODES))
        return z, z

    return jax.lax.scan(layer, x, jax.random.split(kw, LAYERS))[1]


def saturated(activation: str, z: np.ndarray) -> float:
    """The fraction of sigmoid / tanh outputs within `SATURATED` of the function's bounds."""
    lo, hi = RANGES[activation]
    return float(np.mean((z < lo + SATURATED) | (z > hi - SATURATED)))


def plot(acts: dict) -> plt.Figure:
    """12 rows (activation, initialiser) of 5 histograms (one a layer), tick labels on every panel."""
    relu = np.concatenate([z[z > 0] for (a, _), z in acts.items() if a == "relu"])
    log_bins = np.linspace(np.floor(np.log10(relu.min())), np.ceil(np.log10(relu.max())), 2 * BINS + 1)
    fig, axes = plt.subplots(len(acts), LAYERS, figsize=(13, 1.75 * len(acts)), sharey="row",
                             layout="constrained")
    for r, ((a, i), z) in enumerate(acts.items()):
        for layer in range(LAYERS):
            ax = axes[r, layer]
            values = z[layer].ravel()
            if a == "relu":
                ax.hist(np.log10(values[values > 0]), log_bins, color=f"C{r // len(INITS)}")
                ticks = np.arange(np.ceil(log_bins[0] / 4) * 4, log_bins[-1] + 1e-9, 4)
                ax.set_xticks(ticks, [f"1e{int(t)}" if t else "1" for t in ticks])
            else:
                ax.hist(values, BINS, range=RANGES[a], color=f"C{r // len(INITS)}")
                lo, hi = RANGES[a]
                ax.set_xticks([lo, (lo + hi) / 2, hi], [f"{lo:g}", f"{(lo + hi) / 2:g}", f"{hi:g}"])
            ax.tick_params(labelsize=7)
            ax.yaxis.get_offset_text().set_fontsize(7)
            if r == 0:
                ax.set_title(f"{layer + 1}-layer")
        axes[r, 0].set_ylabel(f"{a}\n{i}\n(count)", rotation=0, ha="right", va="center", fontsize=9,
                              labelpad=12)
    fig.suptitle("activation distributions of a 5-layer net, 100 units a layer, 1,000 inputs (DLFS1 Fig. "
                 "6-10 to 6-14)\nsigmoid / tanh: the function's range; ReLU: the non-zero outputs "
                 "(about half are 0) on a log axis shared by all ReLU rows")
    return fig


def LESSON(result: dict) -> None:
    """What the book's figures show, asserted on a run's result.json (tests/test_experiments.py)."""
    m = result["metrics"]
    std = {k: np.asarray(v["layer_std"]) for k, v in m.items()}
    assert min(m["sigmoid/std=1"]["saturated"]) > 0.5, "sigmoid with std 1 should saturate (Fig. 6-10)"
    assert std["sigmoid/std=0.01"].max() < 0.05, "sigmoid with std 0.01 should collapse near 0.5 (Fig. 6-11)"
    assert std["relu/std=0.01"][-1] < 1e-3 * std["relu/std=0.01"][0], "ReLU with std 0.01 should vanish"
    assert std["sigmoid/Xavier"].min() > 0.1 and max(m["sigmoid/Xavier"]["saturated"]) < 0.05, \
        "sigmoid with Xavier should keep its spread (Fig. 6-13)"
    assert 0.5 < std["relu/He"][-1] / std["relu/He"][0] < 2, "ReLU with He should keep its spread (Fig. 6-14)"
    assert std["relu/Xavier"][-1] < 0.5 * std["relu/Xavier"][0], "ReLU with Xavier should shrink (Fig. 6-14)"


def main(argv=None) -> dict:
    args = ex.parser(NAME, __doc__, OPTIONS).parse_args(argv)
    out = ex.output_dir(args, NAME)
    key = jax.random.key(args.seed)
    with ex.Timer() as timer:
        order = [(a, i) for a in ACTIVATIONS for i in INITS]
        acts = jax.jit(lambda k: {(a, i): activations(k, a, INITS[i])  # one compiled program
                                  for a, i in order})(key)
        acts = {k: np.asarray(acts[k]) for k in order}  # jit hands dicts back sorted by key
    ex.save_figure(plot(acts), out / "activation_histogram.png")

    metrics = {}
    for (a, i), z in acts.items():
        metrics[f"{a}/{i}"] = {"layer_std": [float(z[layer].std()) for layer in range(LAYERS)]}
        if a in RANGES:
            metrics[f"{a}/{i}"]["saturated"] = [saturated(a, z[layer]) for layer in range(LAYERS)]
        else:
            metrics[f"{a}/{i}"]["zero_fraction"] = [float(np.mean(z[layer] == 0)) for layer in range(LAYERS)]
    config = {"N": N, "nodes": NODES, "layers": LAYERS, "inits": INITS, "activations": list(ACTIVATIONS),
              "dtype": "float32", "saturated_within": SATURATED}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                            book_ref={"section": "DLFS1 §6.2.2–6.2.4",
                                      "figures": ["Fig. 6-10", "Fig. 6-11", "Fig. 6-13", "Fig. 6-14"],
                                      "script": "ch06/weight_init_activation_histogram.py",
                                      "note": "the book draws the histograms and states no number"})
    lines = []
    for k, m in metrics.items():
        extra = (" saturated " + " ".join(f"{s:.2f}" for s in m["saturated"])) if "saturated" in m else ""
        lines.append(f"{k:18s} layer std " + " ".join(f"{s:.3g}" for s in m["layer_std"]) + extra)
    ex.report(lines + [f"wrote {out / 'activation_histogram.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

"""Hidden-layer activation histograms for std=1, 0.01, Xavier and He weights (DLFS1 §6.2.2–6.2.3).

The book's Figures 6-10 to 6-14.

The book's ch06/weight_init_activation_histogram.py: 1,000 random inputs (N(0, 1), 100 features)
through 5 hidden layers of 100 units, no biases, weights drawn by `fnn.init`. One row of five
histograms (one a layer) for each (activation, initialiser) pair the book discusses, and the
other combinations for comparison: sigmoid, tanh and ReLU, each with std=1, std=0.01, Xavier and
He, so 12 rows. What the book shows:

* sigmoid, std=1: activations pile up at 0 and 1 (vanishing gradients, Figure 6-10);
* sigmoid, std=0.01: all near 0.5 (no diversity of expression, Figure 6-11);
* sigmoid, Xavier: spread out in every layer (Figure 6-13);
* ReLU: std=0.01 shrinks towards 0 layer by layer, Xavier too, He stays the same (Figure 6-14).

No data and no training, so ``--quick`` and the full mode are the same run. All 12 networks run as
one compiled program. Writes ``activation_histogram.png`` and ``result.json`` (the
standard deviation of each layer's activations; e.g. ReLU with std=0.01 in layer 5 is about 1e-5,
with He about 0.6).
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
N, NODES, LAYERS = 1000, 100, 5
INITS = {"std=1": 1.0, "std=0.01": 0.01, "Xavier": "xavier", "He": "he"}
ACTIVATIONS = {"sigmoid": F.sigmoid, "tanh": jnp.tanh, "relu": F.relu}
RANGES = {"sigmoid": (0, 1), "tanh": (-1, 1)}


def activations(key: jax.Array, activation: str, weight_init) -> jax.Array:
    """The (LAYERS, N, NODES) activations of the book's 5-layer net for one initialiser."""
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (N, NODES))
    w_init = initializers.get(weight_init)
    act = ACTIVATIONS[activation]

    def layer(z, k):
        z = act(z @ w_init(k, (NODES, NODES), x.dtype, fan_in=NODES))
        return z, z

    return jax.lax.scan(layer, x, jax.random.split(kw, LAYERS))[1]


def main(argv=None) -> dict:
    args = ex.parser(NAME, __doc__, OPTIONS).parse_args(argv)
    out = ex.output_dir(args, NAME)
    key = jax.random.key(args.seed)
    with ex.Timer() as timer:
        order = [(a, i) for a in ACTIVATIONS for i in INITS]
        acts = jax.jit(lambda k: {(a, i): activations(k, a, INITS[i])  # one compiled program
                                  for a, i in order})(key)
        acts = {k: np.asarray(acts[k]) for k in order}  # jit hands dicts back sorted by key

    rows = len(acts)
    fig, axes = plt.subplots(rows, LAYERS, figsize=(12, 1.55 * rows), sharey="row")
    for r, ((a, i), z) in enumerate(acts.items()):
        # ReLU: half the outputs are exactly 0; leave that bar out (the book clips it with ylim)
        # and scale the row by layer 1's spread, so shrinking / exploding layers show as such
        lo, hi = (0.0, float(np.percentile(z[0][z[0] > 0], 99))) if a == "relu" else RANGES[a]
        for layer in range(LAYERS):
            ax = axes[r, layer]
            values = z[layer].ravel()
            values = values[values > 0] if a == "relu" else values
            ax.hist(values, 30, range=(lo, hi), color=f"C{r // len(INITS)}")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{layer + 1}-layer")
        axes[r, 0].set_ylabel(f"{a}\n{i}", rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    fig.suptitle("activation distributions of a 5-layer net, 100 units a layer (DLFS1 Fig. 6-10 to "
                 "6-14); ReLU rows: the non-zero outputs, range set by layer 1", y=1.005)
    ex.save_figure(fig, out / "activation_histogram.png")

    metrics = {f"{a}/{i}": {"layer_std": [float(z[layer].std()) for layer in range(LAYERS)]}
               for (a, i), z in acts.items()}
    config = {"N": N, "nodes": NODES, "layers": LAYERS, "inits": INITS, "activations": list(ACTIVATIONS)}
    result = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds)
    ex.report([f"{k:18s} layer std " + " ".join(f"{s:.3g}" for s in m["layer_std"])
               for k, m in metrics.items()] + [f"wrote {out / 'activation_histogram.png'} and {result}"])
    return {"config": config, "metrics": metrics}


if __name__ == "__main__":
    main()

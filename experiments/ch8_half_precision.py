"""Half precision: a trained network evaluated in float16 and bfloat16 (DLFS1 §8.3.4; book: no loss).

DLFS1 §8.3.4 (ch08/half_float_network.py) converts the trained DeepConvNet's weights to 16-bit
floats and finds the same recognition accuracy: inference does not need 32 or 64 bits. Here the
weights *and* the activations (the input images, every layer's output) are cast to float16 and
to bfloat16, and the test accuracy is set beside float32's, for both convolution forwards
(the book's im2col and lax.conv).

Full mode: the book's trained DeepConvNet (``deep_convnet_params.pkl``; float32 accuracy 0.9797
on MNIST, as the book's own code gets; its notebooks/ch08.ipynb prints 0.9797 in float64 and
0.9798 in float16) on the 10,000 MNIST test images. Quick mode (``--quick``): a SimpleConvNet
trained for 10 epochs on the embedded 28x28 digits, on their 360 test images. Measured in quick
mode (seed 0): 0.9417 in float32 and float16, 0.9444 in bfloat16, on both convolution forwards.

Figure: ``half_precision.png`` (accuracy per dtype). Writes ``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from fnn.models import cnn
from fnn.optim import adam
from fnn.step import make_evaluate
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch8_half_precision"
DTYPES = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}
BOOK = {"im2col_float32": 0.9797, "im2col_float16": 0.9798}  # notebooks/ch08.ipynb (its float64 run: 0.9797)


def LESSON(result: dict) -> None:
    """What the book shows, asserted on a run's result.json: 16 bits lose (almost) nothing."""
    acc = result["metrics"]["accuracy"]
    for conv in ("im2col", "lax"):
        assert abs(acc[f"{conv}_float16"] - acc[f"{conv}_float32"]) <= 0.005, f"float16 should keep accuracy: {acc}"
        assert abs(acc[f"{conv}_bfloat16"] - acc[f"{conv}_float32"]) <= 0.01, f"bfloat16 should keep accuracy: {acc}"


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)

    data = ex.load_data(args, flatten=False)
    (x_test, t_test) = data[1]
    with ex.Timer() as timer:
        if args.quick:
            model_name = "SimpleConvNet, 10 epochs on digits28"
            ts, _ = fit(cnn.simple_convnet(), adam(0.001), data, key=jax.random.key(args.seed),
                        epochs=10, batch_size=100, grad="manual", progress=args.progress,
                        desc=NAME)
            params32, make = ts.params, cnn.simple_convnet
        else:
            model_name = "DeepConvNet, the book's trained weights"
            _, params32 = cnn.book_pretrained("deep_convnet")
            make = cnn.deep_convnet
        accuracy = {}
        for conv in cnn.CONV_IMPLS:
            evaluate = make_evaluate(make(conv=conv), batch_size=500)
            for name, dtype in DTYPES.items():
                params = jax.tree_util.tree_map(lambda a, dtype=dtype: a.astype(dtype), params32)
                result = evaluate(params, {}, jnp.asarray(x_test, dtype), jnp.asarray(t_test))
                accuracy[f"{conv}_{name}"] = float(result["accuracy"])

    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    width = 0.38
    for i, conv in enumerate(cnn.CONV_IMPLS):
        values = [accuracy[f"{conv}_{name}"] for name in DTYPES]
        bars = ax.bar(np.arange(len(DTYPES)) + (i - 0.5) * width, values, width, label=conv)
        ax.bar_label(bars, fmt="%.4f", fontsize=7)
    lo = min(accuracy.values())
    ax.set(xticks=np.arange(len(DTYPES)), xticklabels=list(DTYPES), ylabel="test accuracy",
           ylim=(max(0.0, lo - 0.05), 1.0), title=f"{model_name}:\nweights and activations cast to each dtype")
    fig.legend(title="conv forward", loc="outside right upper", fontsize=8, title_fontsize=8)
    ex.save_figure(fig, out / "half_precision.png")

    config = {"data": "digits28" if args.quick else "mnist", "model": model_name,
              "dtypes": list(DTYPES), "test_size": int(len(t_test))}
    path = ex.save_result(out, NAME, args, config=config, metrics={"accuracy": accuracy},
                          seconds=timer.seconds, book={"accuracy": BOOK},
                          book_ref={"section": "DLFS1 §8.3.4", "figures": [], "script": "ch08/half_float_network.py",
                                    "quick_differs": bool(args.quick)})
    ex.report([f"{k}: {v:.4f}" for k, v in accuracy.items()]
              + [f"wrote {out / 'half_precision.png'} and {path}"])
    return {"config": config, "metrics": {"accuracy": accuracy}}


if __name__ == "__main__":
    main()

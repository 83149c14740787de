"""``fnn gradcheck MODEL``: the three-way gradient check of one of the library's models (DLFS1 §5.7.3).

    fnn gradcheck deep_convnet                  # 100 coordinates per leaf, hand vs jax.grad vs numerical
    fnn gradcheck two_layer_net --sample 0      # every coordinate (the book's ch05 gradient_check.py)
    fnn gradcheck rnnlm --no-numerical          # hand-written BPTT vs jax.grad only

The model is built as the library builds it (the book's sizes for the DLFS1 networks; the language
models with a small vocabulary, which does not change what is computed), its parameters drawn
from `--seed`, and run in training mode (batch statistics, dropout masks from one fixed key) on
`--batch` random inputs of the right shapes — pixels uniform in [0, 1), labels and word ids
uniform — so no data file is needed. Everything is float64 (`fnn.gradient.model_gradient_check`).
The compiled programs are kept in `fnn.compile_cache` (as ``fnn run`` does), so checking the same
model again skips compilation. Prints `fnn.gradient.GradientCheck`'s per-leaf table and a verdict;
exits 1 if the hand-written gradient and ``jax.grad`` differ by more than 1e-6 (relative, per
leaf) or the numerical gradient by more than 1e-4, leaves whose gradient is below the numerical
noise excepted.

`main(argv)` is the command; `build(name, ...)` gives ``(model, params, state, x, t)``.
This module imports JAX and the models only when a check runs, not for ``--help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

AUTODIFF_TOL = 1e-6  # largest relative hand-vs-jax.grad difference per leaf that passes (the contract)
NUMERICAL_TOL = 1e-4  # largest relative difference to the numerical gradient per leaf that passes (h = 1e-5)

# The models the command checks, and what each is.
MODELS = {
    "two_layer_net": "TwoLayerNet 784-50-10, ReLU (DLFS1 §5.7.2)",
    "mlp_extend": "MultiLayerNetExtend 784-100-100-10 with batch norm, dropout 0.15, weight decay 0.1 "
                  "(DLFS1 §6.3-6.4)",
    "simple_convnet": "SimpleConvNet conv 30@5x5 - pool - 100 - 10 (DLFS1 §7.5)",
    "deep_convnet": "DeepConvNet, six 3x3 convolutions, dropout (DLFS1 §8.1.1)",
    "lenet5": "LeNet-5, ReLU and max pooling (DLFS1 §7.7.1)",
    "simple_rnnlm": "SimpleRnnlm: embedding - RNN - affine, V=200, D=H=32, T=5 (DLFS2 §5.5)",
    "rnnlm": "Rnnlm: embedding - LSTM - affine, V=200, D=H=32, T=5 (DLFS2 §6.4)",
    "rnnlm_gru": "Rnnlm with a GRU, V=200, D=H=32, T=5 (DLFS2 appendix C)",
    "better_rnnlm": "BetterRnnlm: 2 LSTMs, dropout 0.5, weight tying, V=200, D=H=32, T=5 (DLFS2 §6.5)",
    "seqclf": "sequence classifier: an LSTM reads 28 rows of 28 pixels, H=64, affine 10 (DLFS2 ch6)",
    "seqclf_gru": "sequence classifier with a GRU, H=64",
}

CNNS = ("simple_convnet", "deep_convnet", "lenet5")
LM_SIZES = {"V": 200, "D": 32, "H": 32, "T": 5}


def build(name: str, *, batch: int = 2, seed: int = 0, conv: str = "im2col"):
    """``(model, params, state, x, t)`` for `name` (a key of `MODELS`), float64, random inputs."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fnn.models import cnn, mlp, rnnlm, seqclf

    if name not in MODELS:
        raise ValueError(f"gradcheck: model is {name!r}, expected one of {', '.join(MODELS)}")
    rng = np.random.default_rng(seed)
    V, D, H, T = (LM_SIZES[k] for k in "VDHT")
    makers = {
        "two_layer_net": lambda: mlp.two_layer_net(784, 50, 10),
        "mlp_extend": lambda: mlp.model(784, [100, 100], 10, use_batchnorm=True, drop_rate=0.15,
                                        weight_decay=0.1, dtype=jnp.float64),
        "simple_convnet": lambda: cnn.simple_convnet(conv=conv, dtype=jnp.float64),
        "deep_convnet": lambda: cnn.deep_convnet(conv=conv, dtype=jnp.float64),
        "lenet5": lambda: cnn.lenet5(conv=conv, dtype=jnp.float64),
        "simple_rnnlm": lambda: rnnlm.simple_rnnlm(V, D, H, dtype=jnp.float64),
        "rnnlm": lambda: rnnlm.rnnlm(V, D, H, dtype=jnp.float64),
        "rnnlm_gru": lambda: rnnlm.rnnlm(V, D, H, family="gru", dtype=jnp.float64),
        "better_rnnlm": lambda: rnnlm.better_rnnlm(V, D, H, dtype=jnp.float64),
        "seqclf": lambda: seqclf.model(28, 64, 10, family="lstm", dtype=jnp.float64),
        "seqclf_gru": lambda: seqclf.model(28, 64, 10, family="gru", dtype=jnp.float64),
    }
    with jax.enable_x64(True):
        model = makers[name]()
        params, state = model.init(jax.random.key(seed))
        if "rnnlm" in name:
            x = jnp.asarray(rng.integers(0, V, (batch, T)), jnp.int32)
            t = jnp.asarray(rng.integers(0, V, (batch, T)), jnp.int32)
        else:
            shape = (1, 28, 28) if name in CNNS or name.startswith("seqclf") else (784,)
            x = jnp.asarray(rng.random((batch, *shape)), jnp.float64)
            t = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
    return model, params, state, x, t


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    models = "\n".join(f"  {k:<15} {v}" for k, v in MODELS.items())
    p = argparse.ArgumentParser(
        prog="fnn gradcheck", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare a model's hand-written gradient (the book's backprop) with jax.grad and "
                    "with the numerical gradient (central differences), per parameter, in float64, on "
                    "random inputs (DLFS1 §5.7.3).",
        epilog=f"models:\n{models}")
    p.add_argument("model", choices=list(MODELS), metavar="MODEL", help="which model (listed below)")
    p.add_argument("--sample", type=int, default=100, metavar="N",
                   help="coordinates per parameter array checked numerically, drawn at random "
                        "(default 100; 0: every coordinate, 2 loss evaluations each: "
                        "DeepConvNet has 123,552)")
    p.add_argument("--no-numerical", dest="numerical", action="store_false",
                   help="compare only the hand-written gradient and jax.grad")
    p.add_argument("--seed", type=int, default=0, help="parameters, inputs and sample (default 0)")
    p.add_argument("--batch", type=int, default=2, help="random inputs in the batch (default 2)")
    p.add_argument("--h", type=float, default=1e-5, help="the central difference's step (default 1e-5)")
    p.add_argument("--conv", choices=("im2col", "lax", "auto"), default="im2col",
                   help="convolution kernel of the CNNs (default im2col: XLA:CPU's float64 "
                        "convolution is several times slower)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fnn gradcheck``; return the exit status (0: the gradients agree, 1: they do not)."""
    args = parser().parse_args(argv)
    if args.sample < 0 or args.batch < 1:
        parser().error(f"--sample is {args.sample} and --batch {args.batch}; expected --sample >= 0 "
                       f"and --batch >= 1")
    from fnn import compile_cache
    from fnn.gradient import model_gradient_check

    t0 = time.perf_counter()
    compile_cache.enable()  # as fnn run: a second check of the same model loads its programs from disk
    model, params, state, x, t = build(args.model, batch=args.batch, seed=args.seed, conv=args.conv)
    conv = f", conv={args.conv}" if args.model in CNNS else ""
    print(f"fnn gradcheck {args.model}: {MODELS[args.model]}{conv}; {args.batch} random inputs "
          f"{tuple(x.shape[1:])}, training mode, float64", flush=True)
    import jax

    result = model_gradient_check(model, params, state, x, t, key=jax.random.key(args.seed + 1),
                                  h=args.h, sample=args.sample or None, sample_key=args.seed,
                                  numerical=args.numerical, progress=args.progress)
    print(result)
    ok = result.ok(AUTODIFF_TOL, NUMERICAL_TOL)
    print(f"{'ok' if ok else 'FAILED'}: hand vs autodiff below {AUTODIFF_TOL:g}"
          + (f", vs numerical below {NUMERICAL_TOL:g}" if args.numerical else "")
          + f" relative, per leaf ({time.perf_counter() - t0:.1f} s in all)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

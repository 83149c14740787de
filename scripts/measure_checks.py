"""What fit's safety costs, once per call: the data check, the data's sha256, the train_state copy.

    python scripts/measure_checks.py [--reps 3]

Measured in one process, interleaved with one MNIST-sized MLP epoch for scale, on MNIST's shape
(60,000 x 784 float32, random values in [0, 1)): `fnn._checks.check_set` on a numpy and on a jax
array (NaN/inf, range, labels), the run record's sha256 of the training arrays (only with
checkpoints), and `fnn.step.own_copy` of an MLP's and DeepConvNet's train state with Adam (the copy
`fit` makes of a given `train_state` before the donating epochs). Prints median, min and max in ms.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn._checks import check_set
from fnn._run import _data_record
from fnn.models import cnn, mlp
from fnn.step import init_train_state, make_epoch, own_copy


def _timed(f, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((60000, 784), dtype=np.float32)
    t = rng.integers(0, 10, 60000).astype(np.int32)
    xj, tj = jnp.asarray(x), jnp.asarray(t)
    scores = jax.ShapeDtypeStruct((60000, 10), jnp.float32)
    model, opt = mlp.model(784, [100], 10), optax.adam(1e-3)
    ts_mlp = init_train_state(model, opt, jax.random.key(0))
    ts_deep = init_train_state(cnn.deep_convnet(), opt, jax.random.key(0))
    epoch = make_epoch(model, opt, batch_size=100)
    state = {"ts": epoch(init_train_state(model, opt, jax.random.key(0)), xj, tj, jax.random.key(1))[0]}

    def one_epoch(rep):
        state["ts"], metrics = epoch(state["ts"], xj, tj, jax.random.key(rep))
        return metrics["loss"]

    res: dict[str, list[float]] = {k: [] for k in ("check_set numpy", "check_set jax", "data sha256",
                                                    "own_copy mlp", "own_copy deepconvnet", "mlp epoch")}
    for rep in range(args.reps):
        res["check_set numpy"] += _timed(lambda: check_set("fit", "train", x, t, scores), 2)
        res["check_set jax"] += _timed(lambda: check_set("fit", "train", xj, tj, scores), 2)
        res["data sha256"] += _timed(lambda: _data_record(xj, tj), 2)
        res["own_copy mlp"] += _timed(lambda: own_copy("fit", ts_mlp), 3)
        res["own_copy deepconvnet"] += _timed(lambda: own_copy("fit", ts_deep), 3)
        res["mlp epoch"] += _timed(lambda rep=rep: one_epoch(rep), 1)
    for k, v in res.items():
        v = np.array(v) * 1e3
        print(f"{k:22s} median {np.median(v):8.1f} ms   min {v.min():8.1f}   max {v.max():8.1f}   (n={len(v)})")
    return res


if __name__ == "__main__":
    main()

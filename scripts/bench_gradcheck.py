"""Benchmark: `fnn.gradient.gradient_check` on two real models.

    python scripts/bench_gradcheck.py [--repeats 3] [--only mlp,deep_convnet] [--in-process]

What is timed, each the whole `fnn.gradient.model_gradient_check` call (trace, compile, run; the
model built and its random inputs drawn beforehand), float64:

    mlp           the full three-way check (hand vs jax.grad vs numerical at every coordinate) of
                  the book's TwoLayerNet with 70 hidden units, 784-70-10: 55,660 parameters,
                  111,320 loss evaluations, on 3 random inputs (the book's ch05 check uses 3 images)
    deep_convnet  a sampled check of DeepConvNet (`fnn.models.cnn.deep_convnet`, conv="im2col"):
                  90 coordinates of each of its 16 parameter arrays (all of the smaller biases),
                  1,004 coordinates, 2,008 loss evaluations, on 2 random 1x28x28 inputs, training
                  mode (dropout masks from one key)

`--batch N` sets the inputs of both (the time of a loss evaluation grows with it).

Each run is a fresh Python process (`--in-process`: all in this one), so every run compiles from
scratch as a user's first call does (no persistent compilation cache). The runs alternate between
the models; reported per model: every run's wall seconds and CPU seconds (``time.process_time``
of the process, all threads; less sensitive to other work on the machine), their median, min and
max, and the split into "gradients" (hand-written + jax.grad, one compiled program) and
"numerical". The load average before and after says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "mlp": "full check of TwoLayerNet 784-70-10 (55,660 parameters)",
    "deep_convnet": "1,004-coordinate sampled check of DeepConvNet (im2col)",
}
TARGET_S = 10.0


def run_one(case: str, seed: int = 0, batch: int | None = None) -> dict:
    """Build `case`, run its check once, return the timings (seconds) and the largest errors."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fnn.gradient import model_gradient_check
    from fnn.models import cnn, mlp

    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        if case == "mlp":
            model = mlp.two_layer_net(784, 70, 10)
            x, options = rng.random((batch or 3, 784)), {}
        else:
            model = cnn.deep_convnet(conv="im2col", dtype=jnp.float64)
            x, options = rng.random((batch or 2, 1, 28, 28)), {"sample": 90}
        params, state = model.init(jax.random.key(seed))
        jax.block_until_ready(params)
        t = rng.integers(0, 10, x.shape[0])
        w0, c0 = time.perf_counter(), time.process_time()
        result = model_gradient_check(model, params, state, jnp.asarray(x), jnp.asarray(t),
                                      key=jax.random.key(seed + 1), progress=False, **options)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n = sum(int(np.size(g)) for g in jax.tree_util.tree_leaves(params))
    return {"case": case, "batch": int(x.shape[0]), "wall_s": wall, "cpu_s": cpu, "parameters": n,
            "coordinates": int(sum(result.checked)), "split_s": result.seconds,
            "largest": {pair: result.largest(pair) for pair in result}, "ok": result.ok()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", default=",".join(CASES), help="comma-separated cases: " + ", ".join(CASES))
    p.add_argument("--in-process", action="store_true", help="no fresh process per run")
    p.add_argument("--batch", type=int, help="inputs per check (default: mlp 3, deep_convnet 2)")
    p.add_argument("--one", choices=list(CASES), help=argparse.SUPPRESS)  # a child run: print JSON
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, batch=args.batch)))
        return 0
    cases = [c for c in args.only.split(",") if c]
    load0 = os.getloadavg()
    runs = {c: [] for c in cases}
    for r in range(args.repeats):
        for case in cases if r % 2 == 0 else cases[::-1]:
            if args.in_process:
                res = run_one(case, batch=args.batch)
            else:
                extra = ["--batch", str(args.batch)] if args.batch else []
                out = subprocess.run([sys.executable, __file__, "--one", case, *extra], check=True,
                                     capture_output=True, text=True).stdout
                res = json.loads(out.strip().splitlines()[-1])
            runs[case].append(res)
            print(f"  run {r + 1} {case}: {res['wall_s']:.1f} s wall, {res['cpu_s']:.1f} s CPU "
                  f"(gradients {res['split_s']['gradients']:.1f} s, numerical "
                  f"{res['split_s']['numerical']:.1f} s), ok={res['ok']}", flush=True)
    load1 = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs; load average (1 min) {load0[0]:.1f} before, {load1[0]:.1f} after; "
          f"{'one process' if args.in_process else 'a fresh process per run'}")
    for case, rs in runs.items():
        wall = [r["wall_s"] for r in rs]
        cpu = [r["cpu_s"] for r in rs]
        met = "met" if statistics.median(wall) < TARGET_S else "missed"
        print(f"{case:<13} {CASES[case]} (batch {rs[0]['batch']}): wall median {statistics.median(wall):.1f} s "
              f"(min {min(wall):.1f}, max {max(wall):.1f}), CPU median {statistics.median(cpu):.1f} s "
              f"(min {min(cpu):.1f}, max {max(cpu):.1f}); target < {TARGET_S:g} s wall: {met}")
        errors = ", ".join(f"{k} {v:.1e}" for k, v in rs[-1]["largest"].items())
        print(f"{'':<13} largest relative errors: {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

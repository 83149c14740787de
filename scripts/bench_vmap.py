"""Benchmark: K models in one vmapped program (`fnn.multi`) vs one model at a time.

    python scripts/bench_vmap.py [--models mlp,simple_convnet] [--grads manual,autodiff]
                                 [--k 16] [--steps 10] [--repeats 5] [--out results/bench_vmap] [--quick]

What is timed: the program `fnn.multi.fit_many` runs (`fnn.multi.make_fit_many`: ``jax.jit`` of
``jax.vmap`` over models of a ``lax.scan`` over mini-batches), one epoch of `--steps` training steps
(forward, backward, Adam lr 1e-3, float32, batch 100) on random inputs of the model's shapes
(`scripts/bench.py`'s sizes: MLP 784-100x4-10, SimpleConvNet conv 30@5x5 - pool - 100 - 10), no
evaluation, for

    k1        one model (K = 1) a call
    kK        K models (default 16, different seeds) in one call
    loop_kK   K calls of the K = 1 program in a Python loop (what training K models one after
              the other costs; the reference kK should beat)

A call also initialises its models and shuffles the epoch's samples (part of every fit_many run;
small next to `--steps` steps). The gradient paths ("grads"), as in `scripts/bench.py`: ``manual``
(the book's backprop) and ``autodiff`` (``jax.grad``), both on the models' default kernels
(``conv="auto"``: SimpleConvNet's one-channel input takes the book's im2col).

How: each program is compiled first (``compile_s``: trace + compile, from ``lower().compile()``),
run once, then `--repeats` rounds time k1, kK and loop_kK in turn (order alternating), each ending
in ``jax.block_until_ready``. Reported per (model, grad): the median seconds of a call,
samples/s per model (``steps * batch / seconds`` for one of the K models) and in total (times K),
and the speedup ``kK / (K x k1)`` = total samples/s of kK over K times those of k1 (the median of
the per-round ratios: > 1 means training K models together is faster than one after the other),
and the same against the measured loop. Writes ``bench_vmap.json`` and ``bench_vmap.md`` into
`--out`. Runs on CPU or GPU unchanged (JAX's default backend).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__:  # python -m scripts.bench_vmap, or imported as scripts.bench_vmap
    from . import bench  # the same model sizes, data and machine info
else:  # python scripts/bench_vmap.py: Python puts this folder first on sys.path
    import bench  # noqa: E402

MODELS = ("mlp", "simple_convnet")
GRADS = ("manual", "autodiff")


def build(model: str, cfg: dict, grad: str, K: int, steps: int, seed: int = 0):
    """``(call, compile_s)``: ``call()`` trains K fresh models for `steps` steps and waits for them."""
    import jax
    import jax.numpy as jnp

    from fnn.multi import make_fit_many
    from fnn.optim import adam

    x, t = bench.make_data(model, cfg, seed)
    X = jnp.asarray(np.concatenate([x] * steps))  # steps * B samples: one epoch of `steps` steps
    T = jnp.asarray(np.concatenate([t] * steps))
    run = make_fit_many(bench.fnn_model(model, cfg, grad), adam(1e-3), epochs=1,
                        batch_size=cfg["batch"], grad=grad)
    keys = jax.vmap(jax.random.key)(seed + jnp.arange(K))
    args = (keys, jnp.zeros((K,)), X, T, ())
    t0 = time.perf_counter()
    compiled = run.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    state = {}

    def call():
        state["out"] = jax.block_until_ready(compiled(*args))

    return call, compile_s, state


def loss_after(state: dict) -> list[float]:
    """Every model's last mini-batch loss of the latest call."""
    return np.asarray(state["out"][1]["step_loss"])[:, -1].tolist()


def _timed(fn, n: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def bench_one(model: str, cfg: dict, grad: str, *, K: int, steps: int, repeats: int,
              log=print) -> dict:
    """Compile, warm up and time k1, kK and loop_kK of one (model, grad) in interleaved rounds."""
    samples = steps * cfg["batch"]  # per model per call
    runners, res = {}, {"model": model, "grad": grad, "K": K, "steps": steps, "batch": cfg["batch"],
                        "train_gflop_per_step": bench.train_flops(model, cfg) / 1e9, "impls": {}}
    for name, k in (("k1", 1), (f"k{K}", K)):
        call, compile_s, state = build(model, cfg, grad, k, steps)
        first = _timed(call)
        runners[name] = call
        res["impls"][name] = {"models": k, "compile_s": compile_s, "first_call_s": first,
                              "loss_after_warmup": loss_after(state)}
        log(f"  {model:15s} {grad:8s} {name:8s} compile {compile_s:.2f} s, first call {first:.3f} s")
    runners[f"loop_k{K}"] = lambda: _timed(runners["k1"], K)
    res["impls"][f"loop_k{K}"] = {"models": K, "compile_s": res["impls"]["k1"]["compile_s"]}
    names = list(runners)
    seconds = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds[name].append(_timed(runners[name]))
        log(f"  {model:15s} {grad:8s} round {r + 1}/{repeats}: " + ", ".join(
            f"{n} {seconds[n][-1]:.3f} s" for n in names))
    for name in names:
        info, k = res["impls"][name], res["impls"][name]["models"]
        med = statistics.median(seconds[name])
        info.update(seconds_per_call=seconds[name], median_s=med,
                    samples_per_s_per_model=samples / med, samples_per_s_total=k * samples / med,
                    model_steps_per_s=k * steps / med,
                    gflops=k * steps * res["train_gflop_per_step"] / med)
    kK, loop = f"k{K}", f"loop_k{K}"
    res["speedup_vs_K_x_k1"] = _paired([K * a / b for a, b in zip(seconds["k1"], seconds[kK],
                                                                   strict=True)])
    res["speedup_vs_loop"] = _paired([a / b for a, b in zip(seconds[loop], seconds[kK], strict=True)])
    return res


def _paired(r: list[float]) -> dict:
    return {"median": float(statistics.median(r)), "min": float(min(r)), "max": float(max(r))}


def markdown(report: dict) -> str:
    m = report["machine"]
    K = report["K"]
    lines = [f"# fnn: K = {K} models in one vmapped program vs K = 1 ({m['backend']}: {m['device']}, "
             f"{m['cpu_count']} CPUs)", "", f"Command: `{report['command']}`  ",
             f"Date: {report['date']}; load average at start {m['load_start']}, at end "
             f"{m['load_end']}; jax {m['jax']}.", "",
             f"One call = one `fnn.multi.make_fit_many` program: init + {report['steps']} Adam steps "
             f"of batch 100 for each of its models. seconds: median over {report['repeats']} rounds. "
             f"speedup: total samples/s of k{K} over {K} x those of k1 (> 1: together beats one "
             "after the other), median of per-round ratios [min–max].", "",
             "| model | grad | impl | models | s / call | samples/s per model | samples/s total | "
             "GFLOP/s | compile s |", "|---|---|---|---|---|---|---|---|---|"]
    for res in report["results"]:
        for name, info in res["impls"].items():
            lines.append(f"| {res['model']} | {res['grad']} | {name} | {info['models']} | "
                         f"{info['median_s']:.3f} | {info['samples_per_s_per_model']:.0f} | "
                         f"{info['samples_per_s_total']:.0f} | {info['gflops']:.1f} | "
                         f"{info['compile_s']:.2f} |")
    lines += ["", f"| model | grad | k{K} / ({K} x k1) | k{K} / loop_k{K} |", "|---|---|---|---|"]
    for res in report["results"]:
        a, b = res["speedup_vs_K_x_k1"], res["speedup_vs_loop"]
        lines.append(f"| {res['model']} | {res['grad']} | {a['median']:.2f} [{a['min']:.2f}–"
                     f"{a['max']:.2f}] | {b['median']:.2f} [{b['min']:.2f}–{b['max']:.2f}] |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--grads", default=",".join(GRADS))
    p.add_argument("--k", type=int, default=16, help="models in the vmapped program (default 16)")
    p.add_argument("--steps", type=int, default=10, help="training steps a call (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timing rounds (default 5)")
    p.add_argument("--out", default="results/bench_vmap")
    p.add_argument("--quick", action="store_true", help="tiny shapes, K 4, 2 steps, 2 rounds: a smoke test")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    grads = [g for g in args.grads.split(",") if g]
    for name, got, allowed in (("model", models, MODELS), ("grad", grads, GRADS)):
        bad = [g for g in got if g not in allowed]
        if bad:
            p.error(f"unknown {name} {bad}, expected some of {list(allowed)}")
    if args.k < 2:
        p.error(f"--k is {args.k}, expected at least 2")
    configs = bench.QUICK if args.quick else bench.CONFIGS
    K, steps, repeats = (4, 2, 2) if args.quick else (args.k, args.steps, args.repeats)
    report = {"command": "python scripts/bench_vmap.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": bench.machine_info(),
              "K": K, "steps": steps, "repeats": repeats, "results": []}
    for model in models:
        for grad in grads:
            report["results"].append(bench_one(model, configs[model], grad, K=K, steps=steps,
                                               repeats=repeats, log=lambda s: print(s, flush=True)))
    report["machine"]["load_end"] = [round(v, 1) for v in os.getloadavg()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_vmap.json").write_text(json.dumps(report, indent=1))
    (out / "bench_vmap.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()

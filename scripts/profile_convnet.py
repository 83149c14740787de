"""Where DeepConvNet's training step spends its time: fnn per layer and direction against PyTorch.

    python scripts/profile_convnet.py [--steps 10] [--rounds 3] [--grad manual] [--out results/profile]

Both on one thread of one core, float32, batch 100, the book's DeepConvNet (DLFS1 §8.1):

* fnn: the scanned epoch that `fnn.train.fit` runs, traced by XLA's per-operation trace
  (``jax.profiler``). Each operation's time is its median over the traced steps, attributed to a
  layer and a direction by the named scope `fnn.layers.conv` runs it under
  (``conv16to32_forward``, ``..._dx``, ``..._dW``); everything else (pooling, ReLU, the affine
  layers, loss, Adam and the step's guard) is "rest". The trace measures wall time, which a core
  shared with other processes stretches, so the parts are scaled to add up to the step's
  measured CPU milliseconds (the shares are the trace's, the total is the CPU clock's).
* PyTorch: each layer's forward (``F.conv2d``), dx (``torch.nn.grad.conv2d_input``) and dW
  (``conv2d_weight`` + the bias sum), the median of repeated calls, and a whole training step
  (the benchmark's reference, `scripts/_bench_refs.py`), in rounds interleaved with fnn's.

Prints a markdown table (ms a step: fnn, PyTorch, their ratio) and writes it with the raw numbers
to ``profile.json`` / ``profile.md`` in `--out`. The first layer's dx is not computed by either.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

TRACE_DIR = tempfile.mkdtemp(prefix="fnn-profile-")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                           " --xla_cpu_enable_xprof_traceme=true --xla_dump_hlo_as_text"
                           f" --xla_dump_to={TRACE_DIR}/hlo --xla_dump_hlo_module_re=.*epoch.*")
os.environ["JAX_NUM_CPU_DEVICES"] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402

if __package__:  # python -m scripts.profile_convnet
    from . import bench
else:  # python scripts/profile_convnet.py: Python puts this folder first on sys.path
    import bench  # noqa: E402

BATCH = 100
FILTERS = (16, 16, 32, 32, 64, 64)
PADS = (1, 1, 1, 2, 1, 1)
SCOPE = re.compile(r"conv(\d+)to(\d+)_(forward|dx|dW)")


def conv_layers():
    """(C, FN, H, pad) of DeepConvNet's six convolutions on 1x28x28 inputs."""
    out, C, H = [], 1, 28
    for i, (FN, pad) in enumerate(zip(FILTERS, PADS, strict=True)):
        out.append((C, FN, H, pad))
        C, H = FN, H + 2 * pad - 2
        if i % 2 == 1:
            H //= 2
    return out


def fnn_epoch(grad: str, steps: int):
    """``run()``: one scanned epoch of `steps` DeepConvNet steps (Adam, lr 1e-3), blocking."""
    import jax
    import jax.numpy as jnp

    import fnn.optim
    from fnn.models import cnn
    from fnn.train import init_train_state, make_epoch

    model, opt = cnn.deep_convnet(), fnn.optim.adam(1e-3)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((BATCH * steps, 1, 28, 28)), jnp.float32)
    t = jnp.asarray(rng.integers(0, 10, BATCH * steps))
    epoch = make_epoch(model, opt, batch_size=BATCH, grad=grad, num_batches=steps)
    state = {"ts": init_train_state(model, opt, jax.random.key(0))}

    def run():
        state["ts"], metrics = epoch(state["ts"], x, t, jax.random.key(1))
        jax.block_until_ready(state["ts"])

    return run


def torch_ops():
    """{(layer, direction): call} for PyTorch's per-layer convolutions, and a whole step."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    ops = {}
    for i, (C, FN, H, pad) in enumerate(conv_layers(), start=1):
        OH = H + 2 * pad - 2
        x = torch.from_numpy(rng.standard_normal((BATCH, C, H, H)).astype(np.float32))
        W = torch.from_numpy(rng.standard_normal((FN, C, 3, 3)).astype(np.float32))
        d = torch.from_numpy(rng.standard_normal((BATCH, FN, OH, OH)).astype(np.float32))
        ops[(i, "forward")] = lambda x=x, W=W, p=pad: F.conv2d(x, W, padding=p)
        if i > 1:
            ops[(i, "dx")] = lambda x=x, W=W, d=d, p=pad: torch.nn.grad.conv2d_input(x.shape, W, d, padding=p)
        ops[(i, "dW")] = lambda x=x, W=W, d=d, p=pad: (torch.nn.grad.conv2d_weight(x, W.shape, d, padding=p),
                                                       d.sum((0, 2, 3)))
    cfg = bench.CONFIGS["deep_convnet"]
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, BATCH).astype(np.int32)
    step, _ = bench.refs.torch_classifier(bench.cnn_layers("deep_convnet", cfg), cfg, x, t)
    ops[("step", "whole")] = step
    return ops


def median_ms(call, min_s: float = 0.1) -> float:
    """Median CPU milliseconds of `call` over 5 blocks of at least `min_s` each."""
    call()
    n, times = 1, []
    while len(times) < 5:
        c0 = time.process_time()
        for _ in range(n):
            call()
        dt = time.process_time() - c0
        if dt < min_s and not times:
            n *= 2
            continue
        times.append(dt / n * 1e3)
    return statistics.median(times)


def fnn_profile(run, steps: int, rounds: int, torch_round) -> tuple[dict, float]:
    """Per-(layer, direction) ms a step from the trace, and the epoch's CPU ms a step."""
    import jax

    run()
    cpu = []
    with jax.profiler.trace(f"{TRACE_DIR}/trace", create_perfetto_trace=True):
        for _ in range(rounds):
            c0 = time.process_time()
            run()
            cpu.append((time.process_time() - c0) / steps * 1e3)
            torch_round()
    trace = next(Path(TRACE_DIR, "trace").rglob("*.trace.json.gz"))
    with gzip.open(trace) as f:
        events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
    hlo = max(Path(TRACE_DIR, "hlo").glob("*jit_epoch*after_optimizations.txt"), key=lambda p: p.stat().st_mtime)
    where = {}  # instruction name -> (layer, direction) or "rest"
    for m in re.finditer(r"^\s*(?:ROOT )?%?([\w.\-]+) = \S+ [\w-]+\(.*?op_name=\"([^\"]+)\"", hlo.read_text(), re.M):
        s = SCOPE.search(m.group(2))
        where[m.group(1)] = ("rest" if s is None else
                             (1 + [(c, f) for c, f, _, _ in conv_layers()].index((int(s[1]), int(s[2]))), s[3]))
    durations = collections.defaultdict(list)
    for e in events:
        if e["name"] in where:
            durations[e["name"]].append(e["dur"] / 1e3)
    totals = collections.defaultdict(float)
    for name, d in durations.items():
        if len(d) >= steps:  # a thunk of the loop body: once a step
            totals[where[name]] += statistics.median(d)
    step_cpu = statistics.median(cpu)
    scale = step_cpu / sum(totals.values())  # wall ms of a shared core -> the step's CPU ms
    return {k: v * scale for k, v in totals.items()}, step_cpu


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="steps a traced epoch (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="traced epochs (default 3)")
    p.add_argument("--grad", default="manual", choices=("manual", "autodiff"))
    p.add_argument("--out", default="results/profile")
    args = p.parse_args(argv)
    ops = torch_ops()
    torch_ms = {k: [] for k in ops}

    def torch_round():
        for k, call in ops.items():
            torch_ms[k].append(median_ms(call))

    fnn_ms, fnn_step = fnn_profile(fnn_epoch(args.grad, args.steps), args.steps, args.rounds, torch_round)
    torch_med = {k: statistics.median(v) for k, v in torch_ms.items()}
    rows = ["| layer (C -> FN, HxW) | direction | fnn ms | PyTorch ms | fnn / PyTorch |", "|---|---|---|---|---|"]
    sums = collections.defaultdict(float)
    for i, (C, FN, H, pad) in enumerate(conv_layers(), start=1):
        for d in ("forward", "dx", "dW"):
            f, tt = fnn_ms.get((i, d), 0.0), torch_med.get((i, d))
            if tt is None and f == 0.0:
                continue
            sums[d, "fnn"] += f
            sums[d, "torch"] += tt or 0.0
            ratio = f"{f / tt:.2f}" if tt else ""
            rows.append(f"| {i} ({C} -> {FN}, {H}x{H}, pad {pad}) | {d} | {f:.1f} | "
                        f"{'' if tt is None else f'{tt:.1f}'} | {ratio} |")
    for d in ("forward", "dx", "dW"):
        rows.append(f"| all six | {d} | {sums[d, 'fnn']:.1f} | {sums[d, 'torch']:.1f} | "
                    f"{sums[d, 'fnn'] / sums[d, 'torch']:.2f} |")
    conv_torch = sum(v for (k, _), v in torch_med.items() if k != "step")
    rest_torch = torch_med["step", "whole"] - conv_torch
    rows.append(f"| rest (pooling, ReLU, affine, loss, Adam, guard) | | {fnn_ms.get('rest', 0.0):.1f} | "
                f"{rest_torch:.1f} | {fnn_ms.get('rest', 0.0) / rest_torch:.2f} |")
    rows.append(f"| **whole step (CPU ms)** | | **{fnn_step:.1f}** | **{torch_med['step', 'whole']:.1f}** | "
                f"**{fnn_step / torch_med['step', 'whole']:.2f}** |")
    md = "\n".join([f"Command: `python scripts/profile_convnet.py {' '.join(sys.argv[1:] if argv is None else argv)}`"
                    f"; load average {os.getloadavg()[0]:.1f}", "", *rows, ""])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.md").write_text(md)
    report = {"fnn_ms": {str(k): v for k, v in fnn_ms.items()}, "fnn_step_cpu_ms": fnn_step,
              "torch_ms": {str(k): v for k, v in torch_ms.items()}}
    (out / "profile.json").write_text(json.dumps(report, indent=1))
    print(md)
    return report


if __name__ == "__main__":
    main()

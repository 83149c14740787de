"""Benchmark: fnn's jitted training step against NumPy, plain JAX, Flax NNX and PyTorch.

    python scripts/bench.py [--models mlp,simple_convnet,deep_convnet,lstm_lm,gru_lm]
                            [--impls ...] [--repeats N] [--out results/bench] [--quick]

(or ``python -m scripts.bench ...`` from the repository root). What is timed: one training step
(forward, backward, Adam update, lr 1e-3, float32) of each model at these sizes, on random inputs
of the right shapes:

    mlp             784-100x4-10, batch 100                    (DLFS1 §6.1.8 MultiLayerNet)
    simple_convnet  conv 30@5x5 - pool - 100 - 10, 1x28x28, batch 100      (DLFS1 §7.5)
    deep_convnet    six 3x3 convs 16-16-32-32-64-64, 50, 10, dropout, batch 100   (DLFS1 §8.1)
    lstm_lm/gru_lm  V 10000, D = H = 100, T 35, batch 20, stateful           (DLFS2 §6.4)

by these implementations ("impls"), all in this one process:

    fnn_manual, fnn_autodiff     `fnn.step.make_step` (the book's backprop / ``jax.grad``), one
                                 ``jax.jit`` call a step, the train state donated. The conv nets
                                 run their default kernels (``conv="auto"``) on both paths.
    fnn_manual_scan, ..._scan    K steps a call: `fnn.step.make_epoch` (shuffle + ``lax.scan``
                                 over K mini-batches; the LMs: `fnn.step.make_steps`), what
                                 `fnn.train.fit` runs. K = `SCAN_STEPS` (100 for the MLP, else 10).
    fnn_manual_dp, ..._dp        the same epoch data-parallel over every device of the process
                                 (`fnn.parallel`, what ``fit(devices=n)`` runs): each mini-batch
                                 split, the train state copied. On CPU the benchmark asks JAX for
                                 one device per core (``JAX_NUM_CPU_DEVICES``, unless set), so
                                 each core runs half the batch (the LMs: `fnn.step.make_steps`,
                                 what ``fnn.lm.fit_lm(devices=n)`` runs); not available with one
                                 device
    numpy                        the book's algorithms in NumPy (`_bench_numpy.py`)
    jax_ref                      plain ``jax.value_and_grad`` + Adam written inline (optax's
                                 update rule), one jitted step, (params, moments) donated
                                 (`_bench_refs.py`; conv nets on ``lax.conv_general_dilated``
                                 NCHW + ``reduce_window``)
    flax_nnx, torch              Flax NNX / PyTorch eager, when installed (``pip install -e .[bench]``)
    torch_1thread                PyTorch with ``torch.set_num_threads(1)`` during its steps: on a
                                 machine busy with other work its 2-thread OpenMP team can be
                                 10-100x slower (every op ends at a barrier), so both are shown
    matmul_peak                  a jitted float32 matmul (2048^3), the machine's matmul GFLOP/s

How: every runner is built and run once (for JAX: trace + compile + the first step, reported as
``first_step_s``; ``compile_s`` is that minus a steady step), then calibrated to a block of steps
lasting ~`--block` seconds. Then `--repeats` rounds run every runner's block in turn (alternating the
order each round), each block ending in ``jax.block_until_ready``; warm-up is excluded. A runner's
steps/s is the median over rounds, its noise the interquartile range over the median; ratios are
the median over rounds of the per-round ratio (paired measurements, so machine-load drifts that
hit both sides of a round cancel). GFLOP/s counts the matmul/conv FLOPs analytically (2 per
multiply-add; training = 3x the forward pass: forward, dx and dW), and "% peak" divides by the same
round's ``matmul_peak``.

CPU time: each block also records the process CPU seconds (``time.process_time``), reported as
steps per CPU-second. With ``--threads 1`` (one thread for XLA, BLAS and torch) that is what an idle
core would give, however busy the machine: use it when other work shares the machine (a 2-thread
OpenMP or BLAS team on a busy machine can stall 10-100x at every barrier).

Fresh process: for ``--fresh`` impls, a subprocess per (model, impl) runs ``bench.py --first-step``
(import, build, initialise, jit, one step, block) and reports the wall time from before the spawn
to the end of that step, and the CPU seconds it used (less sensitive to a busy machine); twice, on
one new persistent compilation cache (`fnn.compile_cache`, which ``fnn run`` enables): cold, as a
script's first run, and warm, as every later run of the same script.

Writes ``bench.json`` (everything, raw per-round times included) and ``bench.md`` (tables and the
targets below, met or missed) into `--out`. A model whose fnn module does not exist yet, or a
framework that is not installed, is reported as not available. Runs on CPU or GPU unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_T_START = time.time()


def _set_threads_from_argv(argv: list[str]) -> None:
    """``--threads 1``: one thread for XLA, BLAS and torch, set before any of them is imported.

    Otherwise JAX gets one CPU device per core (unless ``JAX_NUM_CPU_DEVICES`` is set), for the
    data-parallel ``*_dp`` paths; every other path runs on the first device, as before.
    """
    n = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--threads"), None)
    os.environ.setdefault("JAX_NUM_CPU_DEVICES", "1" if n == "1" else str(os.cpu_count() or 1))
    if n is None:
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n
    if n == "1":  # XLA's convolution kernels use its thread pool whatever the flags: pin to one core
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


if __name__ == "__main__":  # run as a script; imported (by the tests), it leaves the environment alone
    _set_threads_from_argv(sys.argv)

import numpy as np  # noqa: E402

if __package__:  # python -m scripts.bench, or imported as scripts.bench
    from . import _bench_numpy as bnp
    from . import _bench_refs as refs
else:  # python scripts/bench.py: Python puts this folder first on sys.path
    import _bench_numpy as bnp  # noqa: E402
    import _bench_refs as refs  # noqa: E402

MODELS = ("mlp", "simple_convnet", "deep_convnet", "lstm_lm", "gru_lm")
FNN_IMPLS = ("fnn_manual", "fnn_autodiff", "fnn_manual_scan", "fnn_autodiff_scan", "fnn_manual_dp",
             "fnn_autodiff_dp")
REF_IMPLS = ("numpy", "jax_ref", "flax_nnx", "torch", "torch_1thread")
IMPLS = FNN_IMPLS + REF_IMPLS
# Steps a call of the scanned runners: enough that a call lasts 0.1 s or more, as `fit`'s epoch
# does (600 steps of batch 100 on MNIST), so that what a call costs once (dispatch, the epoch's
# one host round trip for its end-of-scan NaN check, `fnn.step._Scan`) weighs as little as there.
# The MLP's 1 ms step needs 100; 10 steps of the other models last 0.1-1 s.
SCAN_STEPS = {"mlp": 100}
SCAN_STEPS_DEFAULT = 10
PEAK_N = 2048

CONFIGS = {
    "mlp": {"batch": 100, "input": 784, "hidden": [100] * 4, "classes": 10},
    "simple_convnet": {"batch": 100, "input_chw": (1, 28, 28), "filters": 30, "fsize": 5, "hidden": 100,
                       "classes": 10},
    "deep_convnet": {"batch": 100, "input_chw": (1, 28, 28), "filters": (16, 16, 32, 32, 64, 64),
                     "hidden": 50, "classes": 10},
    "lstm_lm": {"batch": 20, "T": 35, "V": 10000, "D": 100, "H": 100, "family": "lstm"},
    "gru_lm": {"batch": 20, "T": 35, "V": 10000, "D": 100, "H": 100, "family": "gru"},
}
QUICK = {  # tiny shapes for the smoke test: every code path, a few seconds
    "mlp": {"batch": 8, "input": 64, "hidden": [16] * 2, "classes": 10},
    "simple_convnet": {"batch": 4, "input_chw": (1, 12, 12), "filters": 4, "fsize": 5, "hidden": 8,
                       "classes": 10},
    "deep_convnet": {"batch": 4, "input_chw": (1, 12, 12), "filters": (2, 2, 2, 2, 4, 4), "hidden": 8,
                     "classes": 10},
    "lstm_lm": {"batch": 2, "T": 5, "V": 50, "D": 8, "H": 8, "family": "lstm"},
    "gru_lm": {"batch": 2, "T": 5, "V": 50, "D": 8, "H": 8, "family": "gru"},
}

# Targets: fnn's best path ahead of every reference on every model; the conv nets at >= 40 % and
# the LMs at >= 50 % of the machine's matmul rate; a fresh process's first step within 3 s.
RATIO_TARGETS = {"jax_ref": 1.0, "flax_nnx": 1.0, "torch": 1.0, "torch_1thread": 1.0}
TORCH_TARGETS: dict[str, float] = {}  # a model whose PyTorch target is above 1.0
PEAK_TARGETS = {"simple_convnet": 0.4, "deep_convnet": 0.4, "lstm_lm": 0.5, "gru_lm": 0.5}
MANUAL_VS_AUTODIFF = 0.8
COMPILE_TARGET_S = 2.0
FRESH_TARGET_S = 3.0


class UnavailableError(Exception):
    """This runner cannot be built here (module not written yet, framework not installed)."""


# ------------------------------------------------------------------------------------------------
# Shapes, FLOPs, data
# ------------------------------------------------------------------------------------------------


def cnn_layers(model: str, cfg: dict) -> list[tuple]:
    """The conv nets as layer specs shared by the NumPy, JAX, Flax and torch references."""
    if model == "simple_convnet":
        return [("conv", 1, 1, 0, cfg["filters"], cfg["fsize"]), ("relu",), ("pool",), ("flatten",),
                ("affine", 2, cfg["hidden"]), ("relu",), ("affine", 3, cfg["classes"])]
    layers = []
    for i, (fn, pad) in enumerate(zip(cfg["filters"], (1, 1, 1, 2, 1, 1), strict=True), start=1):
        layers += [("conv", i, 1, pad, fn, 3), ("relu",)] + ([("pool",)] if i % 2 == 0 else [])
    return layers + [("flatten",), ("affine", 7, cfg["hidden"]), ("relu",), ("dropout", 0.5),
                     ("affine", 8, cfg["classes"]), ("dropout", 0.5)]


def mlp_layers(cfg: dict) -> list[tuple]:
    sizes = [*cfg["hidden"], cfg["classes"]]
    layers = []
    for i, size in enumerate(sizes, start=1):
        layers += [("affine", i, size), ("relu",)]
    return layers[:-1]


def forward_flops(model: str, cfg: dict) -> float:
    """Matmul/conv FLOPs (2 per multiply-add) of one forward pass of the whole batch."""
    B = cfg["batch"]
    if model == "mlp":
        sizes = [cfg["input"], *cfg["hidden"], cfg["classes"]]
        return 2.0 * B * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    if model in ("lstm_lm", "gru_lm"):
        G = {"lstm": 4, "gru": 3}[cfg["family"]] * cfg["H"]
        return 2.0 * B * cfg["T"] * ((cfg["D"] + cfg["H"]) * G + cfg["H"] * cfg["V"])
    C, H, W = cfg["input_chw"]
    D, total = None, 0.0
    for spec in cnn_layers(model, cfg):
        if spec[0] == "conv":
            _, _, S, P, FN, FS = spec
            H, W = (H + 2 * P - FS) // S + 1, (W + 2 * P - FS) // S + 1
            total += 2.0 * B * H * W * FN * C * FS * FS
            C = FN
        elif spec[0] == "pool":
            H, W = H // 2, W // 2
        elif spec[0] == "flatten":
            D = C * H * W
        elif spec[0] == "affine":
            total += 2.0 * B * D * spec[2]
            D = spec[2]
    return total


def train_flops(model: str, cfg: dict) -> float:
    """Forward + backward ~ 3x the forward's matmul/conv FLOPs (dx and dW each cost a forward)."""
    return 3.0 * forward_flops(model, cfg)


def make_data(model: str, cfg: dict, seed: int = 0):
    """Random inputs (x, t) of the model's shapes: images NCHW (or flat for the MLP), word ids."""
    rng = np.random.default_rng(seed)
    B = cfg["batch"]
    if model in ("lstm_lm", "gru_lm"):
        xs = rng.integers(0, cfg["V"], (B, cfg["T"])).astype(np.int32)
        return xs, rng.integers(0, cfg["V"], (B, cfg["T"])).astype(np.int32)
    shape = (B, cfg["input"]) if model == "mlp" else (B, *cfg["input_chw"])
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, cfg["classes"], B).astype(np.int32)


# ------------------------------------------------------------------------------------------------
# Runners: run(n) does n calls (steps_per_call steps each) and waits for the result
# ------------------------------------------------------------------------------------------------


class JaxRunner:
    """A jitted ``f(carry, *args) -> (carry, loss)`` whose carry (train state) is donated."""

    def __init__(self, fn, carry, args, steps_per_call: int = 1):
        import jax
        self.fn, self.carry, self.args, self.steps_per_call = fn, carry, args, steps_per_call
        self.block = jax.block_until_ready
        self.loss = None

    def run(self, n: int) -> None:
        carry = self.carry
        for _ in range(n):
            carry, self.loss = self.fn(carry, *self.args)
        self.block((carry, self.loss))
        self.carry = carry

    def last_loss(self) -> float:
        return float(np.asarray(self.loss).ravel()[-1])


class CallRunner:
    """A Python ``step()`` (NumPy, torch, Flax NNX) with a way to wait for its last result."""

    def __init__(self, step, last_loss, block=None, steps_per_call: int = 1):
        self.step, self.last_loss, self.steps_per_call = step, last_loss, steps_per_call
        self.block = block or (lambda out: out)

    def run(self, n: int) -> None:
        out = None
        for _ in range(n):
            out = self.step()
        self.block(out)


def _import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UnavailableError(f"{module} not importable ({e})") from e


def fnn_model(model: str, cfg: dict, grad: str):
    """The fnn `Model` for `model` (the conv nets with their default kernels, ``conv="auto"``)."""
    if model == "mlp":
        return _import("fnn.models.mlp").model(cfg["input"], cfg["hidden"], cfg["classes"])
    if model in ("simple_convnet", "deep_convnet"):
        cnn = _import("fnn.models.cnn")
        try:
            if model == "simple_convnet":
                cp = {"filter_num": cfg["filters"], "filter_size": cfg["fsize"], "pad": 0, "stride": 1}
                return cnn.simple_convnet(cfg["input_chw"], cp, cfg["hidden"], cfg["classes"])
            return cnn.deep_convnet(cfg["input_chw"], cfg["hidden"], cfg["classes"],
                                    filter_nums=cfg["filters"])
        except AttributeError as e:
            raise UnavailableError(f"fnn.models.cnn has no {model} yet ({e})") from e
    rnnlm = _import("fnn.models.rnnlm")
    if not hasattr(rnnlm, "rnnlm"):
        raise UnavailableError("fnn.models.rnnlm has no rnnlm() yet")
    return rnnlm.rnnlm(cfg["V"], cfg["D"], cfg["H"], family=cfg["family"])


def fnn_train_state(model: str, cfg: dict, m, optimizer, key):
    from fnn.step import init_train_state
    ts = init_train_state(m, optimizer, key)
    if model in ("lstm_lm", "gru_lm"):  # the stateful LM's reset state (zeros), as fnn.lm.fit does
        ts = ts._replace(state=_import("fnn.lm").initial_state(m, ts.params, cfg["batch"], cfg["T"]))
    return ts


def build_fnn(model: str, cfg: dict, impl: str, x, t) -> JaxRunner:
    import jax
    import jax.numpy as jnp

    import fnn.optim
    from fnn.step import make_epoch, make_step

    grad = "manual" if impl.startswith("fnn_manual") else "autodiff"
    m = fnn_model(model, cfg, grad)
    optimizer = fnn.optim.adam(1e-3)
    key = jax.random.key(0)
    ts = fnn_train_state(model, cfg, m, optimizer, key)
    if impl.endswith("_dp"):
        return build_fnn_dp(model, cfg, m, optimizer, ts, grad, x, t, key)
    if not impl.endswith("_scan"):
        step = make_step(m, optimizer, grad=grad)

        def one(ts, x, t, key):
            ts, metrics = step(ts, (x, t), key)
            return ts, metrics["loss"]

        return JaxRunner(jax.jit(one, donate_argnums=0), ts, (jnp.asarray(x), jnp.asarray(t), key))
    K = SCAN_STEPS.get(model, SCAN_STEPS_DEFAULT)
    if model in ("lstm_lm", "gru_lm"):
        steps = _import("fnn.step").make_steps(m, optimizer, grad=grad)

        def run(ts, *args):
            ts, metrics = steps(ts, *args)
            return ts, metrics["loss"]

        args = (jnp.tile(jnp.asarray(x), (K, 1, 1)), jnp.tile(jnp.asarray(t), (K, 1, 1)), key)
        return JaxRunner(run, ts, args, steps_per_call=K)
    epoch = make_epoch(m, optimizer, batch_size=cfg["batch"], grad=grad, num_batches=K)
    X = jnp.concatenate([jnp.asarray(x)] * K)  # K*B samples: one "epoch" of K steps a call
    T = jnp.concatenate([jnp.asarray(t)] * K)

    def call(ts, *args):
        ts, metrics = epoch(ts, *args)
        return ts, metrics["loss"]

    return JaxRunner(call, ts, (X, T, key), steps_per_call=K)


def build_fnn_dp(model: str, cfg: dict, m, optimizer, ts, grad: str, x, t, key) -> JaxRunner:
    """`build_fnn`'s scanned epoch on every device of the process (what ``fit(devices=n)`` runs)."""
    import jax
    import jax.numpy as jnp

    from fnn import parallel
    from fnn.train import make_epoch

    n = jax.device_count()
    if n < 2 or cfg["batch"] % n:
        raise UnavailableError(f"{n} device(s) for a batch of {cfg['batch']}: nothing to split "
                               f"(on CPU: JAX_NUM_CPU_DEVICES=2 or more)")
    mesh = parallel.batch_mesh(n, "bench")
    K = SCAN_STEPS.get(model, SCAN_STEPS_DEFAULT)
    if model in ("lstm_lm", "gru_lm"):  # what fnn.lm.fit_lm(devices=n) runs
        steps = _import("fnn.step").make_steps(m, optimizer, grad=grad, mesh=mesh)
        ts, xs, ys = parallel.replicate((ts, jnp.tile(jnp.asarray(x), (K, 1, 1)),
                                         jnp.tile(jnp.asarray(t), (K, 1, 1))), mesh)

        def run(ts, *args):
            ts, metrics = steps(ts, *args)
            return ts, metrics["loss"]

        return JaxRunner(run, ts, (xs, ys, key), steps_per_call=K)
    data = (jnp.concatenate([jnp.asarray(x)] * K), jnp.concatenate([jnp.asarray(t)] * K))
    ts, X, T = parallel.replicate((ts, *data), mesh)
    epoch = make_epoch(m, optimizer, batch_size=cfg["batch"], grad=grad, num_batches=K, mesh=mesh)

    def call(ts, *args):
        ts, metrics = epoch(ts, *args)
        return ts, metrics["loss"]

    return JaxRunner(call, ts, (X, T, key), steps_per_call=K)


def build(model: str, cfg: dict, impl: str, x, t):
    """The runner of `impl` for `model`; raises UnavailableError when it cannot exist here."""
    lm = model in ("lstm_lm", "gru_lm")
    layers = mlp_layers(cfg) if model == "mlp" else None if lm else cnn_layers(model, cfg)
    if impl in FNN_IMPLS:
        return build_fnn(model, cfg, impl, x, t)
    if impl == "numpy":
        if lm:
            net = bnp.RnnLM(cfg, x, t, cfg["family"])
        elif model == "mlp":
            net = bnp.mlp(cfg, x, t)
        else:
            net = bnp.convnet(layers, cfg, x, t)
        out = {}

        def step():
            out["loss"] = net.step()
        return CallRunner(step, lambda: out["loss"])
    if impl == "jax_ref":
        fn, carry, args = (refs.jax_lm(cfg, x, t, cfg["family"]) if lm
                           else refs.jax_classifier(layers, cfg, x, t))
        return JaxRunner(fn, carry, args)
    if impl == "flax_nnx":
        _import("flax.nnx")
        step, loss = refs.flax_lm(cfg, x, t, cfg["family"]) if lm else refs.flax_classifier(layers, cfg, x, t)
        import jax
        return CallRunner(step, loss, block=jax.block_until_ready)
    if impl in ("torch", "torch_1thread"):
        torch = _import("torch")
        step, loss = (refs.torch_lm(cfg, x, t, cfg["family"]) if lm
                      else refs.torch_classifier(layers, cfg, x, t))
        if impl == "torch":
            return CallRunner(step, loss)
        default = torch.get_num_threads()

        def step_1thread():  # torch's OpenMP team of 2 stalls at every barrier on a busy machine
            torch.set_num_threads(1)
            try:
                return step()
            finally:
                torch.set_num_threads(default)
        return CallRunner(step_1thread, loss)
    raise ValueError(f"bench: unknown impl {impl!r}, expected one of {IMPLS}")


def peak_runner(n: int) -> JaxRunner:
    """One float32 (n, n) @ (n, n) matmul a call: the machine's matmul GFLOP/s, same process."""
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    return JaxRunner(jax.jit(lambda c, a, b: (c, a @ b)), jnp.zeros(()), (a, b))


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------


def _timed(run, n: int, cpu: list | None = None) -> float:
    """Wall seconds of n calls; appends the process CPU seconds they took to `cpu`."""
    c0, t0 = time.process_time(), time.perf_counter()
    run.run(n)
    t1 = time.perf_counter()
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return t1 - t0


def bench_model(model: str, cfg: dict, impls, *, repeats: int, block_s: float, peak_n: int,
                log=print) -> dict:
    """Build, warm up, calibrate and time every impl of `model` in interleaved rounds."""
    x, t = make_data(model, cfg)
    runners, result = {}, {"config": cfg, "train_gflop": train_flops(model, cfg) / 1e9, "impls": {}}
    for impl in ("matmul_peak", *impls):
        info = {}
        try:
            t0 = time.perf_counter()
            runner = peak_runner(peak_n) if impl == "matmul_peak" else build(model, cfg, impl, x, t)
            info["build_s"] = time.perf_counter() - t0
            info["first_step_s"] = _timed(runner, 1)          # trace + compile + one call (JAX)
            second = _timed(runner, 1)
            info["calls_per_block"] = max(1, min(2000, round(block_s / max(second, 1e-6))))
            info["steps_per_call"] = runner.steps_per_call
            info["loss_after_warmup"] = None if impl == "matmul_peak" else runner.last_loss()
            runners[impl] = runner
        except UnavailableError as e:
            info = {"available": False, "why": str(e)}
        except Exception as e:  # a model module mid-edit must not stop the whole benchmark
            info = {"available": False, "why": f"failed: {type(e).__name__}: {e}"[:500]}
        result["impls"][impl] = info
        log(f"  {model:15s} {impl:18s} " + (f"first step {info['first_step_s']:.2f} s" if "first_step_s"
                                                in info else f"not available: {info['why']}"))
    names = list(runners)
    per_step = {name: [] for name in names}
    cpu_per_step = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            runner, n = runners[name], result["impls"][name]["calls_per_block"]
            cpu = []
            per_step[name].append(_timed(runner, n, cpu) / (n * runner.steps_per_call))
            cpu_per_step[name].append(cpu[0] / (n * runner.steps_per_call))
        log(f"  {model:15s} round {r + 1}/{repeats}: " + ", ".join(
            f"{name} {1 / per_step[name][-1]:.1f}" for name in names))
    peak = [2 * peak_n ** 3 / s / 1e9 for s in per_step.get("matmul_peak", [])]
    result["matmul_gflops"] = _summary(peak) if peak else None
    for name in names:
        info = result["impls"][name]
        rates = [1 / s for s in per_step[name]]
        info.update(available=True, seconds_per_step=per_step[name], steps_per_s=_summary(rates),
                    cpu_seconds_per_step=cpu_per_step[name],
                    steps_per_cpu_s=_summary([1 / max(c, 1e-9) for c in cpu_per_step[name]]))
        if name == "matmul_peak":
            continue
        med = info["steps_per_s"]["median"]
        info["samples_per_s"] = med * cfg["batch"]
        gflops = [rate * result["train_gflop"] for rate in rates]
        info["gflops"] = statistics.median(gflops)
        if peak:
            info["peak_fraction"] = statistics.median(g / p for g, p in zip(gflops, peak, strict=True))
        # JAX: compile = first call - a steady call (the first call also ran one call's steps)
        info["compile_s"] = max(0.0, info["first_step_s"] - statistics.median(per_step[name])
                                * runners[name].steps_per_call)
    result["ratios"] = ratios(per_step, [n for n in names if n != "matmul_peak"])
    result["cpu_ratios"] = ratios(cpu_per_step, [n for n in names if n != "matmul_peak"])
    return result


def _summary(values: list[float]) -> dict:
    q = np.percentile(values, [25, 50, 75])
    return {"median": float(q[1]), "min": float(min(values)), "max": float(max(values)),
            "iqr_over_median": float((q[2] - q[0]) / q[1]) if q[1] else None, "n": len(values)}


def _paired(per_step: dict, a: str, b: str) -> dict:
    """Median and spread over rounds of (steps/s of a) / (steps/s of b), measured side by side."""
    r = [sb / sa for sa, sb in zip(per_step[a], per_step[b], strict=True)]
    return {"median": float(statistics.median(r)), "min": float(min(r)), "max": float(max(r))}


def ratios(per_step: dict, names: list[str]) -> dict:
    fnn = [n for n in names if n in FNN_IMPLS]
    out = {}
    if not fnn:
        return out
    best = max(fnn, key=lambda n: -statistics.median(per_step[n]))
    out["fnn_best"] = best
    for ref in names:
        if ref not in FNN_IMPLS:
            out[f"fnn_best/{ref}"] = _paired(per_step, best, ref)
    for a, b in (("fnn_manual", "fnn_autodiff"), ("fnn_manual_scan", "fnn_autodiff_scan"),
                 ("fnn_manual_scan", "fnn_manual"), ("fnn_autodiff_scan", "fnn_autodiff"),
                 ("fnn_manual_dp", "fnn_manual_scan"), ("fnn_autodiff_dp", "fnn_autodiff_scan")):
        if a in per_step and b in per_step:
            out[f"{a}/{b}"] = _paired(per_step, a, b)
    return out


# ------------------------------------------------------------------------------------------------
# Fresh process: time to the first trained step
# ------------------------------------------------------------------------------------------------


def first_step_child(model: str, impl: str, quick: bool) -> None:
    """Run in a fresh process: build, init, one step, block; print timings as JSON."""
    import resource
    if os.environ.get("BENCH_CACHE"):  # fnn's persistent compilation cache, as `fnn run` uses it
        from fnn import compile_cache
        compile_cache.enable(os.environ["BENCH_CACHE"])
    t_import = time.time()
    cfg = (QUICK if quick else CONFIGS)[model]
    x, t = make_data(model, cfg)
    runner = build(model, cfg, impl, x, t)
    t_built = time.time()
    runner.run(1)
    t_done = time.time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    t0 = float(os.environ.get("BENCH_T0", _T_START))
    print(json.dumps({"wall_s": t_done - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
                      "startup_and_imports_s": t_import - t0, "build_init_s": t_built - t_import,
                      "first_step_s": t_done - t_built, "loss": runner.last_loss()}))


def fresh_process(model: str, impl: str, quick: bool) -> dict:
    """Two fresh processes sharing a new, empty compilation cache (`fnn.compile_cache`): the first
    compiles everything ("cold", what a script's first run costs), the second loads its programs
    from the cache ("warm", every later run); the result is the cold run's with ``warm`` inside."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--first-step", model, impl]
    cmd += ["--quick"] if quick else []
    runs = []
    with tempfile.TemporaryDirectory(prefix="fnn-bench-cache-") as cache:
        for _ in range(2):
            t0 = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "BENCH_T0": repr(t0), "BENCH_CACHE": cache})
            if proc.returncode != 0:
                return {"available": False, "why": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
            runs.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "available": True})
    return {**runs[0], "warm": runs[1]}


# ------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------


def targets(model: str, res: dict, clock: str = "wall") -> list[dict]:
    """The targets for `model`, each with the measured value and met / missed.

    ``clock="cpu"`` judges the ratios and the peak fraction by steps per CPU-second instead.
    """
    out, r = [], res.get("ratios" if clock == "wall" else "cpu_ratios", {})
    best = r.get("fnn_best")
    if best is None:
        return out

    def add(what, value, goal, met):
        out.append({"target": what, "measured": value, "goal": goal, "met": bool(met), "clock": clock})

    for ref, goal in RATIO_TARGETS.items():
        goal = max(goal, TORCH_TARGETS.get(model, 0)) if ref.startswith("torch") else goal
        if f"fnn_best/{ref}" in r:
            v = r[f"fnn_best/{ref}"]["median"]
            add(f"fnn best ({best}) / {ref} >= {goal}", v, goal, v >= goal)
    for a, b in (("fnn_manual", "fnn_autodiff"), ("fnn_manual_scan", "fnn_autodiff_scan")):
        if f"{a}/{b}" in r:
            v = r[f"{a}/{b}"]["median"]
            add(f"{a} / {b} >= {MANUAL_VS_AUTODIFF}", v, MANUAL_VS_AUTODIFF, v >= MANUAL_VS_AUTODIFF)
    info = res["impls"][best]
    if model in PEAK_TARGETS and "peak_fraction" in info:
        goal = PEAK_TARGETS[model]
        frac = info["peak_fraction"]
        if clock == "cpu":  # both sides per CPU-second
            peak = res["impls"]["matmul_peak"]["steps_per_cpu_s"]["median"]
            frac = info["steps_per_cpu_s"]["median"] * res["train_gflop"] / (peak * 2 * PEAK_N ** 3 / 1e9)
        add(f"fnn best: fraction of matmul GFLOP/s >= {goal}", frac, goal, frac >= goal)
    if clock == "cpu":
        return out
    for impl in FNN_IMPLS:
        i = res["impls"].get(impl, {})
        if i.get("available") and "compile_s" in i and not impl.endswith(("_scan", "_dp")):
            add(f"{impl}: first step compile < {COMPILE_TARGET_S} s", i["compile_s"], COMPILE_TARGET_S,
                i["compile_s"] < COMPILE_TARGET_S)
    for impl, f in res.get("fresh", {}).items():
        if impl in FNN_IMPLS and f.get("available"):
            add(f"{impl}: fresh process to first step < {FRESH_TARGET_S} s (wall; cpu {f['cpu_s']:.1f} s)",
                f["wall_s"], FRESH_TARGET_S, f["wall_s"] < FRESH_TARGET_S)
            if "warm" in f:
                w = f["warm"]
                add(f"{impl}: fresh process to first step, compilation cache warm, < {FRESH_TARGET_S} s "
                    f"(wall; cpu {w['cpu_s']:.1f} s)", w["wall_s"], FRESH_TARGET_S, w["wall_s"] < FRESH_TARGET_S)
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# fnn benchmark ({m['backend']}: {m['device']}, {m['cpu_count']} CPUs)", "",
             f"Command: `{report['command']}`  ", f"Date: {report['date']}; load average at start "
             f"{m['load_start']}, at end {m['load_end']}; jax {m['jax']}, torch {m['torch']}, "
             f"flax {m['flax']}.", "",
             "steps/s: median over rounds (noise: IQR / median); ratio: fnn's best path over this "
             "one, median of the per-round ratios [min–max]; first step: trace + compile + 1 step; "
             "fresh: wall from spawn to the first trained step (cpu seconds), compilation cache cold / "
             "warm. steps/cpu-s: steps per "
             "second of process CPU time (with --threads 1, what an idle core would give; fnn best "
             "by that measure may differ).", ""]
    for model, res in report["models"].items():
        peak = res.get("matmul_gflops")
        peak_txt = f"{peak['median']:.0f} GFLOP/s (noise {peak['iqr_over_median']:.0%})" if peak else "n/a"
        lines += [f"## {model}", "", (f"Run: `{res['run']}`\n\n" if "run" in res else "")
                  + f"{res['train_gflop']:.3f} GFLOP a step (3x forward); matmul peak " + peak_txt,
                  "", "| impl | steps/s | noise | samples/s | GFLOP/s | % peak | first step s | "
                  "compile s | fresh s (cpu) | fnn best / this | steps/cpu-s | fnn best / this (cpu) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        best = res.get("ratios", {}).get("fnn_best")
        cbest = res.get("cpu_ratios", {}).get("fnn_best")
        for impl, info in res["impls"].items():
            if impl == "matmul_peak":
                continue
            if not info.get("available"):
                lines.append(f"| {impl} | not available: {info.get('why', '')[:90]} |||||||||")
                continue
            s = info["steps_per_s"]
            fr = res.get("fresh", {}).get(impl)
            fresh = f"{fr['wall_s']:.1f} ({fr['cpu_s']:.1f})" if fr and fr.get("available") else ""
            if fresh and "warm" in fr:
                fresh += f" / {fr['warm']['wall_s']:.1f} ({fr['warm']['cpu_s']:.1f})"
            ratio = res["ratios"].get(f"fnn_best/{impl}")
            rtxt = (f"{ratio['median']:.2f} [{ratio['min']:.2f}–{ratio['max']:.2f}]" if ratio
                    else "best" if impl == best else "")
            comp = f"{info['compile_s']:.2f}" if impl.startswith(("fnn", "jax", "flax")) else ""
            cr = res["cpu_ratios"].get(f"fnn_best/{impl}")
            ctxt = (f"{cr['median']:.2f} [{cr['min']:.2f}–{cr['max']:.2f}]" if cr
                    else "best" if impl == cbest else "")
            lines.append(f"| {impl} | {s['median']:.1f} | {s['iqr_over_median']:.0%} | "
                         f"{info['samples_per_s']:.0f} | {info['gflops']:.1f} | "
                         f"{info.get('peak_fraction', float('nan')):.0%} | {info['first_step_s']:.2f} | "
                         f"{comp} | {fresh} | {rtxt} | {info['steps_per_cpu_s']['median']:.1f} | {ctxt} |")
        extra = {k: v for k, v in res.get("ratios", {}).items() if "/" in k and not k.startswith("fnn_best")}
        if extra:
            lines += [""] + [f"- {k}: {v['median']:.2f} [{v['min']:.2f}–{v['max']:.2f}]"
                             for k, v in extra.items()]
        if res.get("targets"):
            lines += ["", "| target | clock | measured | met |", "|---|---|---|---|"]
            lines += [f"| {t['target']} | {t.get('clock', 'wall')} | {t['measured']:.2f} | "
                      f"{'yes' if t['met'] else '**no**'} |" for t in res["targets"]]
        lines.append("")
    return "\n".join(lines)


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=1))
    (out / "bench.md").write_text(markdown(report))


def rewrite(paths: list[str], out: Path) -> dict:
    """Merge the models of several bench.json runs into one report (a model timed by two runs
    gets two sections) and rewrite it."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    merged = {**reports[-1], "models": {}, "runs": [{"command": r["command"], "date": r["date"],
                                                      "machine": r["machine"]} for r in reports]}
    for i, r in enumerate(reports, start=1):
        for model, res in r["models"].items():
            model = res.get("model", model.split(" ")[0])
            res["targets"] = targets(model, res) + targets(model, res, "cpu")
            res["run"], res["model"] = r["command"], model
            merged["models"][model if model not in merged["models"] else f"{model} (run {i})"] = res
    merged["command"] = " + ".join(r["command"] for r in reports)
    write(merged, out)
    print(markdown(merged))
    return merged


def machine_info() -> dict:
    import jax

    def version(mod):
        try:
            return importlib.import_module(mod).__version__
        except ImportError:
            return "not installed"

    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": getattr(dev, "device_kind", str(dev)),
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "jax": jax.__version__, "numpy": np.__version__, "torch": version("torch"),
            "flax": version("flax"), "load_start": [round(v, 1) for v in os.getloadavg()]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--repeats", type=int, default=7, help="timing rounds (default 7)")
    p.add_argument("--block", type=float, default=0.3, help="seconds of steps per runner per round")
    p.add_argument("--fresh", default="fnn_manual,fnn_autodiff,jax_ref",
                   help="impls timed in a fresh process ('' for none)")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--threads", help="1: one thread for XLA, BLAS and torch (read at start-up, "
                   "before the libraries load); default: each library's own")
    p.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds: a smoke test")
    p.add_argument("--from-json", nargs="+", metavar="JSON",
                   help="no timing: merge these bench.json files' models and rewrite the report")
    p.add_argument("--first-step", nargs=2, metavar=("MODEL", "IMPL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.first_step:
        first_step_child(*args.first_step, args.quick)
        return {}
    if args.from_json:
        return rewrite(args.from_json, Path(args.out))
    models = [m for m in args.models.split(",") if m]
    impls = [i for i in args.impls.split(",") if i]
    for name, got, allowed in (("model", models, MODELS), ("impl", impls, IMPLS)):
        bad = [g for g in got if g not in allowed]
        if bad:
            p.error(f"unknown {name} {bad}, expected some of {list(allowed)}")
    configs = QUICK if args.quick else CONFIGS
    repeats, block = (2, 0.01) if args.quick else (args.repeats, args.block)
    report = {"command": "python scripts/bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info(),
              "scan_steps": {m: SCAN_STEPS.get(m, SCAN_STEPS_DEFAULT) for m in MODELS}, "models": {}}
    for model in models:
        print(f"{model}:", flush=True)
        res = bench_model(model, configs[model], impls, repeats=repeats, block_s=block,
                          peak_n=256 if args.quick else PEAK_N,
                          log=lambda s: print(s, flush=True))
        res["fresh"] = {}
        for impl in [i for i in args.fresh.split(",") if i and i in impls]:
            if res["impls"].get(impl, {}).get("available"):
                res["fresh"][impl] = fresh_process(model, impl, args.quick)
                print(f"  {model:15s} {impl:18s} fresh process: {res['fresh'][impl]}", flush=True)
        res["targets"] = targets(model, res) + targets(model, res, "cpu")
        res["model"] = model
        report["models"][model] = res
    report["machine"]["load_end"] = [round(v, 1) for v in os.getloadavg()]
    write(report, Path(args.out))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()

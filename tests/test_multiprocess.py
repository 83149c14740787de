"""Training across 2 processes on one machine gives the parameters of a one-process run.

Two subprocesses on 127.0.0.1 each call ``jax.distributed.initialize`` (JAX's CPU collectives,
gloo) and own one CPU device; ``devices=jax.device_count()`` makes a mesh that spans both. `fit`
and `fit_lm` then split every mini-batch between the two processes (the gradient sums become
all-reduces between them); `fit_many` gives each process half of the models. Both processes run
the same job on the same data and key (see fnn/parallel.py's docstring) and must end, both of
them, with what this process computes alone. float64, so "the same" is to float rounding: the two
halves of a batch are summed in another order.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import lm, multi, optim, parallel, train
from fnn.models import mlp, rnnlm

REPO = Path(__file__).resolve().parents[1]


def _blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, (3, 6))
    t = rng.integers(0, 3, 128).astype(np.int32)
    x = centers[t] + rng.normal(0, 1, (128, 6))
    return (x[:64], t[:64]), (x[64:], t[64:])


def _flat(prefix, tree) -> dict:
    """{name: NumPy array} of a pytree's leaves, whole on every process (`parallel.to_host`)."""
    leaves = jax.tree_util.tree_flatten_with_path(parallel.to_host(tree))[0]
    return {prefix + jax.tree_util.keystr(p): np.asarray(a, np.float64) for p, a in leaves}


def fit_job(devices) -> dict:
    """`fit`: an MLP with dropout (its masks must not depend on the layout), 2 epochs of 4 steps
    of batch 16, evaluated after each epoch."""
    model = mlp.model(6, [16, 16], 3, weight_init=0.3, drop_rate=0.1, dtype=jnp.float64)
    ts, h = train.fit(model, optax.adam(1e-2), _blobs(), key=jax.random.key(1), epochs=2, batch_size=16,
                      eval_batch_size=64, progress=False, devices=devices)
    return {**_flat("params", ts.params), **{k: np.asarray(h[k]) for k in ("step_loss", "train_loss", "test_acc")}}


def lm_and_many_job(devices) -> dict:
    """`fit_lm`: an LSTM LM, batches of 4 sequences, 3 epochs with validation and the book's
    learning-rate decay (the validation text runs backwards, so it gets worse and the rate is
    cut); `fit_many`: 4 MLPs with 4 learning rates."""
    corpus, val = np.tile(np.arange(6), 170), np.tile(np.arange(6)[::-1], 60)
    opt = optax.inject_hyperparams(optim.sgd)(learning_rate=5.0, max_grad=1.0)
    ts, h = lm.fit_lm(rnnlm.rnnlm(6, 4, 4, dtype=jnp.float64), opt, corpus, key=jax.random.key(0), epochs=3,
                      batch_size=4, time_size=10, eval_interval=7, val_corpus=val, lr_decay=4.0,
                      reset_each_epoch=True, progress=False, devices=devices)
    model = mlp.model(6, [16], 3, weight_init=0.3, drop_rate=0.1, dtype=jnp.float64)
    many, hm = multi.fit_many(model, lambda lr: optax.adam(lr), _blobs(), jax.random.split(jax.random.key(2), 4),
                              hparams=jnp.array([1e-2, 2e-2, 5e-3, 1e-3]), epochs=2, batch_size=16,
                              eval_batch_size=64, devices=devices)
    return {**_flat("lm", ts.params), **{f"lm_{k}": np.asarray(h[k]) for k in ("ppl", "val_ppl", "lr")},
            **_flat("many", many.params), **_flat("many_history", {k: hm[k] for k in ("step_loss", "test_acc")})}


JOBS = {"fit": fit_job, "lm_and_many": lm_and_many_job}

# Each worker joins the other process first (before JAX touches a device), then runs its job.
WORKER = textwrap.dedent('''
    import json, sys
    import jax
    job, process_id, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the default in jax 0.10
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=process_id)
    from tests.test_multiprocess import JOBS

    mesh = jax.make_mesh((jax.device_count(),), ("batch",))
    report = {k: v.tolist() for k, v in JOBS[job](mesh).items()}
    report["topology"] = [jax.process_index(), jax.process_count(), jax.device_count(),
                          jax.local_device_count(), sorted({d.process_index for d in mesh.devices.flat})]
    with open(out, "w") as f:
        json.dump(report, f)
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(job: str, tmp: Path):
    """Start both processes on `job`, run it alone here meanwhile, then read the processes' results."""
    (tmp / "worker.py").write_text(WORKER)
    # One CPU device per process (no forced device count); LLVM's optimisation off shortens the
    # compilation, which is most of this test's time (the all-reduces are XLA's, before LLVM).
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_backend_optimization_level=0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("JAX_NUM_CPU_DEVICES", None)
    port = _free_port()
    logs = [tmp / f"{i}.log" for i in range(2)]
    procs = []
    for i, log in enumerate(logs):
        with log.open("w") as out:  # the child keeps its own copy of the file
            procs.append(subprocess.Popen([sys.executable, str(tmp / "worker.py"), job, str(i), str(port),
                                           str(tmp / f"{i}.json")], env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        alone = JOBS[job](None)
        deadline = time.monotonic() + 400
        # A process that failed leaves the other waiting for it: stop at the first failure.
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n{logs[i].read_text()[-4000:]}"
    return alone, [json.loads((tmp / f"{i}.json").read_text()) for i in range(2)]


def _assert_same(alone: dict, reports: list[dict]):
    for i, r in enumerate(reports):
        # process i of 2, 2 devices of which 1 its own, a mesh over both processes
        assert r.pop("topology") == [i, 2, 2, 1, [0, 1]]
        assert sorted(r) == sorted(alone)
        for k, want in alone.items():
            np.testing.assert_allclose(r[k], want, rtol=1e-12, atol=1e-14, err_msg=f"process {i}: {k}")


def test_fit_in_two_processes_gives_the_one_process_parameters(tmp_path):
    alone, reports = _run("fit", tmp_path)
    init = mlp.model(6, [16, 16], 3, weight_init=0.3, dtype=jnp.float64).init(
        jax.random.split(jax.random.key(1))[0])[0]  # fit's init key
    assert max(np.max(np.abs(alone[f"params['{k}']"] - v)) for k, v in init.items()) > 1e-2  # it trained
    assert alone["step_loss"].shape == (8,)  # 2 epochs of 64 // 16 steps
    _assert_same(alone, reports)


@pytest.mark.slow  # two more compiled programs in each of 3 processes: ~2 minutes on 2 busy cores
def test_fit_lm_and_fit_many_in_two_processes_give_the_one_process_parameters(tmp_path):
    alone, reports = _run("lm_and_many", tmp_path)
    assert alone["lm_lr"].tolist() == [5.0, 5.0, 1.25]  # validation got worse: the decay ran
    assert alone["many_history['test_acc']"].shape == (4, 2)
    _assert_same(alone, reports)

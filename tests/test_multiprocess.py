"""fit(devices=...) across 2 processes on one machine: the parameters of a one-process run.

Two subprocesses on 127.0.0.1 each call ``jax.distributed.initialize`` (JAX's CPU collectives,
gloo) and own one CPU device; the mesh spans both, so every mini-batch is split between the two
processes and the gradient sums become all-reduces between them. Both run the same `fit` on the
same data and key (see fnn/parallel.py's docstring), and must end, both of them, with the
parameters this process trains alone. float64, so "the same" is to float rounding: the two halves
of a batch are summed in another order.
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

from fnn import train
from fnn.models import mlp

REPO = Path(__file__).resolve().parents[1]


def setup():
    """What the workers and the one-process run train: an MLP with dropout (its masks must not
    depend on the layout) on 64 samples, then 2 epochs of 4 steps of batch 16 (`FIT`, key `SEED`)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, (3, 6))
    t = rng.integers(0, 3, 128).astype(np.int32)
    x = centers[t] + rng.normal(0, 1, (128, 6))
    data = ((x[:64], t[:64]), (x[64:], t[64:]))
    model = mlp.model(6, [16, 16], 3, weight_init=0.3, drop_rate=0.1, dtype=jnp.float64)
    return model, optax.adam(1e-2), data


SEED, FIT = 1, dict(epochs=2, batch_size=16, eval_batch_size=64, progress=False)


# Each worker joins the other process first (before JAX touches a device), then trains as `_train_alone`.
WORKER = textwrap.dedent('''
    import json, sys
    import jax
    import numpy as np
    process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the default in jax 0.10
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=process_id)
    from fnn import parallel, train
    from tests.test_multiprocess import FIT, SEED, setup

    model, optimizer, data = setup()
    ts, h = train.fit(model, optimizer, data, key=jax.random.key(SEED), **FIT, devices=jax.device_count())
    W1 = ts.params["W1"]
    report = {"process_index": jax.process_index(), "process_count": jax.process_count(),
              "devices": jax.device_count(), "local_devices": jax.local_device_count(),
              "mesh_processes": sorted({d.process_index for d in W1.sharding.device_set}),
              "addressable": W1.is_fully_addressable, "replicated": W1.is_fully_replicated,
              "params": {k: np.asarray(v).tolist() for k, v in parallel.to_host(ts.params).items()},
              "step_loss": h["step_loss"], "test_acc": h["test_acc"], "train_loss": h["train_loss"]}
    with open(out, "w") as f:
        json.dump(report, f)
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Start both processes, train alone here meanwhile, then read the processes' reports."""
    tmp = tmp_path_factory.mktemp("multiprocess")
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
            procs.append(subprocess.Popen([sys.executable, str(tmp / "worker.py"), str(i), str(port),
                                           str(tmp / f"{i}.json")], env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        alone = _train_alone()
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


def _train_alone():
    model, optimizer, data = setup()
    key = jax.random.key(SEED)
    init = model.init(jax.random.split(key)[0])[0]  # fit's init key
    ts, h = train.fit(model, optimizer, data, key=key, **FIT)
    assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(ts.params))
    return {"init": {k: np.asarray(v) for k, v in init.items()},
            "params": {k: np.asarray(v) for k, v in ts.params.items()}, **h}


def test_the_mesh_spans_two_processes(workers):
    _, reports = workers
    for i, r in enumerate(reports):
        assert (r["process_index"], r["process_count"]) == (i, 2)
        assert (r["devices"], r["local_devices"]) == (2, 1)
        assert r["mesh_processes"] == [0, 1]  # the parameters live on both processes' devices
        assert not r["addressable"] and r["replicated"]  # a copy in each process, none sees both


def test_two_processes_train_to_the_one_process_parameters(workers):
    alone, reports = workers
    moved = max(np.max(np.abs(alone["params"][k] - alone["init"][k])) for k in alone["params"])
    assert moved > 1e-2  # it trained: the equality below says something
    assert len(alone["step_loss"]) == 8  # 2 epochs of 64 // 16 steps
    for r in reports:
        assert sorted(r["params"]) == sorted(alone["params"])
        for k, want in alone["params"].items():
            np.testing.assert_allclose(r["params"][k], want, rtol=1e-12, atol=1e-14, err_msg=k)
        for key in ("step_loss", "train_loss", "test_acc"):
            np.testing.assert_allclose(r[key], alone[key], rtol=1e-12, atol=1e-14, err_msg=key)

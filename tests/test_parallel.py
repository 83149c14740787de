"""fnn.parallel / fit(devices=...): the sharded run equals the one-device run, and is really sharded.

JAX fixes its device count when it starts, so the runs happen in one subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (4 CPU "devices"); it reports back in a
JSON file that the tests below read. float32, as a user would train: the sharded step adds the
per-device partial gradients in another order, so the parameters agree to float32 rounding.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

CHILD = textwrap.dedent('''
    import json, sys, warnings
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import PartitionSpec
    from fnn import train
    from fnn.step import init_train_state
    from fnn.models import cnn, mlp

    out, ckpt_dir = sys.argv[1], sys.argv[2]
    report = {"devices": jax.device_count()}
    rng = np.random.default_rng(0)

    def blobs(shape, N=128, C=3):  # train and test sets of one shape: one compiled evaluation
        centers = rng.normal(0, 2, (C, *shape)).astype(np.float32)
        t = rng.integers(0, C, N).astype(np.int32)
        x = (centers[t] + rng.normal(0, 1, (N, *shape))).astype(np.float32)
        return (x[:64], t[:64]), (x[64:], t[64:])

    def leaves(tree):
        return [np.asarray(a, np.float64).tolist() for a in jax.tree_util.tree_leaves(tree)]

    seen = []  # how the step's mini-batch x is laid out, as jit compiles each epoch

    def spying(model):
        def loss(params, state, x, t, *, key=None):
            jax.debug.inspect_array_sharding(
                x, callback=lambda s: seen.append([len(s.device_set), list(s.shard_shape(x.shape))]))
            return model.loss(params, state, x, t, key=key)
        return model._replace(loss=loss)

    # An MLP with dropout (its masks must not depend on the layout); an MLP with batch norm (its
    # statistics span the whole sharded batch) trained by the book's backprop; a small SimpleConvNet.
    # Each is trained on 1 device and on 4, given as a count, a Mesh and a list of devices.
    # (No Adam with batch norm: the biases before a batch norm have a zero gradient, and Adam
    # would blow its rounding noise up to steps of the learning rate.)
    MLP = spying(mlp.model(6, [16, 16], 3, weight_init=0.3, drop_rate=0.1))
    MLP_BN = mlp.model(6, [16, 16], 3, weight_init=0.3, use_batchnorm=True, drop_rate=0.1)
    CNN = cnn.simple_convnet((1, 8, 8), {"filter_num": 4, "filter_size": 3}, hidden_size=16,
                             output_size=3, weight_init_std=0.3)
    runs = {"mlp": (MLP, "autodiff", optax.adam(1e-2), blobs((6,)), 4),
            "mlp_bn_manual": (MLP_BN, "manual", optax.sgd(0.1), blobs((6,)),
                              jax.make_mesh((4,), ("batch",))),
            "cnn": (CNN, "autodiff", optax.adam(1e-2), blobs((1, 8, 8)), jax.devices())}
    KW = dict(key=jax.random.key(1), epochs=2, batch_size=16, progress=False, eval_batch_size=64)
    for name, (model, grad, opt, data, devices) in runs.items():
        init = init_train_state(model, opt, jax.random.split(jax.random.key(1))[0])
        one, h1 = train.fit(model, opt, data, grad=grad, **KW)
        four, h4 = train.fit(model, opt, data, grad=grad, devices=devices, **KW)
        states = jax.tree_util.tree_leaves(four)
        report[name] = {"init": leaves(init), "one": leaves(one), "four": leaves(four),
                        "loss_one": h1["step_loss"], "loss_four": h4["step_loss"],
                        "acc_one": h1["test_acc"] + h1["train_acc"],
                        "acc_four": h4["test_acc"] + h4["train_acc"],
                        "unsplit": all(a.sharding.spec == PartitionSpec() for a in states),
                        "replicated": all(a.sharding.is_fully_replicated for a in states),
                        "n_devices": sorted({len(a.sharding.device_set) for a in states})}
    report["batch_sharding"] = list(seen)

    # Checkpoints: epoch 1 on 4 devices, epoch 2 resumed on one (the compiled epochs are reused).
    # The resumed call names another key: only a run restored from the checkpoint (its key, its
    # params) can end where the uninterrupted key-1 run ends.
    model, _, opt, data, _ = runs["mlp"]
    kw = {**KW, "checkpoints": ckpt_dir}
    train.fit(model, opt, data, **{**kw, "epochs": 1}, devices=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed, _ = train.fit(model, opt, data, **{**kw, "key": jax.random.key(99),
                                                 "checkpoints": train.Checkpoints(ckpt_dir, resume=True)})
    report["resumed"] = leaves(resumed)
    report["resume_warnings"] = [str(w.message) for w in caught]
    report["resumed_devices"] = sorted(d.id for d in resumed.params["W1"].devices())

    errors = {}
    for tag, devices, batch_size in [("indivisible", 4, 18), ("too_many", 5, 16), ("spec", "gpu", 16),
                                     ("no_batch_axis", jax.make_mesh((4,), ("data",)), 16),
                                     ("twice", [jax.devices()[0]] * 2, 16)]:
        try:
            train.fit(model, opt, data, **{**KW, "batch_size": batch_size}, devices=devices)
            errors[tag] = None
        except (TypeError, ValueError) as e:
            errors[tag] = f"{type(e).__name__}: {e}"
    from fnn import lm, multi
    from fnn.models import rnnlm
    others = {"lm_indivisible": lambda: lm.fit_lm(rnnlm.rnnlm(6, 4, 4), optax.sgd(0.1), np.arange(200) % 6,
                                                  key=jax.random.key(0), epochs=1, batch_size=6, time_size=5,
                                                  devices=4, progress=False),
              "many_indivisible": lambda: multi.fit_many(model, opt, data, jax.random.split(jax.random.key(0), 6),
                                                         epochs=1, batch_size=16, devices=4)}
    for tag, call in others.items():
        try:
            call()
            errors[tag] = None
        except (TypeError, ValueError) as e:
            errors[tag] = f"{type(e).__name__}: {e}"
    report["errors"] = errors
    with open(out, "w") as f:
        json.dump(report, f)
''')


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    (tmp / "child.py").write_text(CHILD)
    # 4 CPU devices; LLVM's optimisation off halves the compile time, which is most of this test's
    # (the partitioning into devices and all-reduces is XLA's, before LLVM, so it is what it would be).
    flags = "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    env.pop("JAX_NUM_CPU_DEVICES", None)  # it would override the flag's device count
    proc = subprocess.run([sys.executable, str(tmp / "child.py"), str(tmp / "out.json"), str(tmp / "ckpt")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp / "out.json").read_text())


def _assert_close(got, want, rtol=1e-5, atol=1e-6):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _moved(trained, init):
    return max(float(np.max(np.abs(np.subtract(a, b)))) for a, b in zip(trained, init, strict=True))


RUNS = ["mlp", "mlp_bn_manual", "cnn"]


@pytest.mark.parametrize("run", RUNS)
def test_sharded_run_gives_the_single_device_parameters(report, run):
    r = report[run]
    assert report["devices"] == 4
    assert _moved(r["one"], r["init"]) > 1e-2  # it trained: the equality below says something
    _assert_close(r["four"], r["one"])
    _assert_close(r["loss_four"], r["loss_one"])
    assert len(r["loss_one"]) == 8  # 2 epochs of 64 // 16 steps
    _assert_close(r["acc_four"], r["acc_one"])  # evaluation, split over the devices too


@pytest.mark.parametrize("run", RUNS)
def test_train_state_is_replicated_on_every_device(report, run):
    r = report[run]
    assert r["replicated"] and r["n_devices"] == [4]
    assert r["unsplit"]  # PartitionSpec(): no axis of any leaf is split


def test_each_device_gets_its_slice_of_the_batch(report):
    # One entry per compiled epoch: (devices, the shape of x each holds), on 1 device then 4.
    assert report["batch_sharding"] == [[1, [16, 6]], [4, [4, 6]]]


def test_checkpoint_of_a_sharded_run_resumes_on_one_device(report):
    assert any("key differs" in w for w in report["resume_warnings"]), report["resume_warnings"]
    _assert_close(report["resumed"], report["mlp"]["one"])
    assert report["resumed_devices"] == [0]


@pytest.mark.parametrize("tag, match", [
    ("indivisible", r"ValueError: fit: batch_size is 18, expected a multiple of 4"),
    ("too_many", r"ValueError: fit: devices is 5, expected a count from 1 to 4 .*xla_force_host_platform"),
    ("spec", r"TypeError: fit: devices is 'gpu', expected None, a device count, a list of jax.Device"),
    ("no_batch_axis", r"ValueError: fit: devices is a Mesh with axes \('data',\), expected one named 'batch'"),
    ("twice", r"ValueError: fit: devices lists a device twice"),
    ("lm_indivisible", r"ValueError: fit_lm: batch_size is 6, expected a multiple of 4"),
    ("many_indivisible", r"ValueError: fit_many: keys holds 6 models, expected a multiple of 4"),
])
def test_bad_devices_get_a_clear_error(report, tag, match):
    assert report["errors"][tag] is not None, f"{tag}: no error raised"
    assert re.search(match, report["errors"][tag]), report["errors"][tag]

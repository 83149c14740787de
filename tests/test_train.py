"""fnn.train: the step is traced once, both gradient paths train identically, fit validates its input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import train
from fnn.models import mlp


def _blobs(seed=0, N=120, D=5, C=3):
    """Three Gaussian blobs: a problem an MLP learns in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (C, D))
    t = rng.integers(0, C, N)
    x = centers[t] + rng.normal(0, 1, (N, D))
    return (x[: N * 3 // 4], t[: N * 3 // 4].astype(np.int32)), (x[N * 3 // 4:], t[N * 3 // 4:].astype(np.int32))


MODEL = mlp.model(5, [8], 3, weight_init=0.3, dtype=jnp.float64)


def test_both_gradient_paths_give_the_same_training_curve():
    data = _blobs()
    runs = {g: train.fit(MODEL, optax.sgd(0.1), data, key=jax.random.key(0), epochs=5, batch_size=10,
                         grad=g, progress=False) for g in train.GRADS}
    (ts_a, h_a), (ts_m, h_m) = runs["autodiff"], runs["manual"]
    np.testing.assert_allclose(h_a["step_loss"], h_m["step_loss"], rtol=1e-10)
    assert h_a["test_acc"] == h_m["test_acc"]
    chex.assert_trees_all_close(ts_a.params, ts_m.params, rtol=1e-10)
    assert h_a["step_loss"][-1] < 0.5 * h_a["step_loss"][0]  # it learned
    assert h_a["test_acc"][-1] > 0.9


def test_step_is_traced_once():
    (x, t), _ = _blobs()
    step = train.make_step(MODEL, optax.sgd(0.1), grad="manual")
    step = jax.jit(chex.assert_max_traces(step, n=1))
    ts = train.init_train_state(MODEL, optax.sgd(0.1), jax.random.key(0))
    for i in range(3):
        ts, metrics = step(ts, (jnp.asarray(x[i * 10:(i + 1) * 10]), jnp.asarray(t[i * 10:(i + 1) * 10])),
                           jax.random.key(i))
    assert np.isfinite(metrics["loss"])


def test_epoch_equals_python_loop_of_steps():
    (x, t), _ = _blobs()
    x, t = jnp.asarray(x), jnp.asarray(t)
    opt = optax.sgd(0.1)
    ts0 = train.init_train_state(MODEL, opt, jax.random.key(0))
    key = jax.random.key(5)
    epoch = train.make_epoch(MODEL, opt, batch_size=10)
    ts_scan, metrics = epoch(jax.tree_util.tree_map(jnp.copy, ts0), x, t, key)

    step = train.make_step(MODEL, opt)
    perm_key, step_key = jax.random.split(key)
    order = jax.random.permutation(perm_key, x.shape[0])
    keys = jax.random.split(step_key, x.shape[0] // 10)
    ts, losses = ts0, []
    for i in range(x.shape[0] // 10):
        idx = order[i * 10:(i + 1) * 10]
        ts, m = step(ts, (x[idx], t[idx]), keys[i])
        losses.append(m["loss"])
    np.testing.assert_allclose(metrics["loss"], losses, rtol=1e-12)
    chex.assert_trees_all_close(ts_scan.params, ts.params, rtol=1e-12)


def test_evaluate_pads_the_last_batch():
    (x, t), _ = _blobs()
    ts = train.init_train_state(MODEL, optax.sgd(0.1), jax.random.key(0))
    scores = np.asarray(mlp.apply(ts.params, jnp.asarray(x)))
    want_acc = float(np.mean(np.argmax(scores, -1) == t))
    want_loss = float(-jnp.mean(jax.nn.log_softmax(scores)[jnp.arange(len(t)), t]))
    for bs in (7, 90, 1000):
        got = train.make_evaluate(MODEL, batch_size=bs)(ts.params, ts.state, jnp.asarray(x), jnp.asarray(t))
        np.testing.assert_allclose(got["accuracy"], want_acc, rtol=1e-12)
        np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-12)


def test_fit_counts_steps_like_the_book():
    data = _blobs()  # 90 training samples, batch 20: 4 steps an epoch
    _, history = train.fit(MODEL, optax.sgd(0.1), data, key=jax.random.key(0), steps=10, batch_size=20,
                           progress=False)
    assert history["step"] == [4, 8, 10]
    assert len(history["step_loss"]) == 10


def test_fit_can_continue_from_a_train_state():
    data = _blobs()
    kw = {"batch_size": 10, "progress": False, "key": jax.random.key(0)}
    ts, h1 = train.fit(MODEL, optax.sgd(0.1), data, epochs=1, **kw)
    _, h2 = train.fit(MODEL, optax.sgd(0.1), data, epochs=1, train_state=ts, **kw)
    assert h2["step_loss"][0] < h1["step_loss"][0]


def test_fit_reports_a_non_finite_loss():
    (x, t), test = _blobs()
    with pytest.raises(FloatingPointError, match=r"fit: the loss became nan at step 1 \(epoch 1\)"):
        train.fit(MODEL, optax.sgd(0.1), ((x * np.nan, t), test), key=jax.random.key(0), epochs=1,
                  batch_size=10, progress=False)


@pytest.mark.parametrize("mutate, error, match", [
    (lambda d: (((d[0][0]).astype(np.int64), d[0][1]), d[1]), TypeError, "train x has dtype int64"),
    (lambda d: ((d[0][0], d[0][1][:-1]), d[1]), ValueError, "train t has 89 samples .* expected 90"),
    (lambda d: ((d[0][0], d[0][1] + 3), d[1]), ValueError, r"t holds the label \d, expected labels in \[0, 2\]"),
    (lambda d: ((d[0][0], d[0][1]), (d[1][0], d[1][1].astype(np.float32))), TypeError, "dtype float32"),
    (lambda d: ((d[0][0][:, :4], d[0][1]), d[1]), ValueError, "affine.forward: x has 4 features"),
    (lambda d: ((d[0][0][:0], d[0][1][:0]), d[1]), ValueError, "train x has shape \\(0, 5\\)"),
])
def test_fit_rejects_bad_data(mutate, error, match):
    with pytest.raises(error, match=match):
        train.fit(MODEL, optax.sgd(0.1), mutate(_blobs()), key=jax.random.key(0), epochs=1, batch_size=10,
                  progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 1, "batch_size": 1000}, "batch_size is 1000, larger than the training set \\(90 samples\\)"),
    ({"epochs": 1, "batch_size": 0}, "batch_size is 0, expected a positive integer"),
    ({"epochs": 1, "steps": 3, "batch_size": 10}, "give exactly one of epochs and steps"),
    ({"epochs": 0, "batch_size": 10}, "epochs is 0, expected a positive integer"),
    ({"steps": -1, "batch_size": 10}, "steps is -1, expected a positive integer"),
    ({"epochs": 1, "grad": "numerical"}, "grad is 'numerical', expected one of \\('autodiff', 'manual'\\)"),
])
def test_fit_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.fit(MODEL, optax.sgd(0.1), _blobs(), key=jax.random.key(0), progress=False, **kwargs)

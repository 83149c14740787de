"""fnn.train: both gradient paths train identically, fit counts steps, guards NaN, validates its input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import train
from fnn.models import mlp
from fnn.step import GRADS


def _blobs(seed=0, N=120, D=5, C=3):
    """Three Gaussian blobs: a problem an MLP learns in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (C, D))
    t = rng.integers(0, C, N)
    x = centers[t] + rng.normal(0, 1, (N, D))
    n = N * 3 // 4
    return (x[:n], t[:n].astype(np.int32)), (x[n:], t[n:].astype(np.int32))


MODEL = mlp.model(5, [8], 3, weight_init=0.3, dtype=jnp.float64)


def test_both_gradient_paths_give_the_same_training_curve():
    data = _blobs()
    runs = {g: train.fit(MODEL, optax.sgd(0.1), data, key=jax.random.key(0), epochs=5, batch_size=10,
                         grad=g, progress=False) for g in GRADS}
    (ts_a, h_a), (ts_m, h_m) = runs["autodiff"], runs["manual"]
    np.testing.assert_allclose(h_a["step_loss"], h_m["step_loss"], rtol=1e-10)
    assert h_a["test_acc"] == h_m["test_acc"]
    chex.assert_trees_all_close(ts_a.params, ts_m.params, rtol=1e-10)
    assert h_a["step_loss"][-1] < 0.5 * h_a["step_loss"][0]  # it learned
    assert h_a["test_acc"][-1] > 0.9


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


def test_train_eval_size_evaluates_the_first_training_samples_only():
    data = _blobs()
    (x, t), _ = data
    kw = {"epochs": 2, "batch_size": 10, "progress": False, "key": jax.random.key(0)}
    ts, full = train.fit(MODEL, optax.sgd(0.1), data, **kw)
    ts_n, part = train.fit(MODEL, optax.sgd(0.1), data, train_eval_size=7, **kw)
    assert part["step_loss"] == full["step_loss"] and part["test_acc"] == full["test_acc"]  # training unchanged
    scores, _ = MODEL.apply(ts_n.params, {}, jnp.asarray(x[:7]))
    assert part["train_acc"][-1] == pytest.approx(float(np.mean(np.argmax(scores, 1) == t[:7])))
    assert part["train_acc"][-1] * 7 == pytest.approx(round(part["train_acc"][-1] * 7))  # k of 7 right


def _inf_above(limit=100.0):
    """MODEL, but a feature above `limit` becomes inf inside the model: finite data (which fit's
    input check admits) whose step is not finite."""
    def poison(x):
        return jnp.where(x > limit, jnp.inf, x)
    return MODEL._replace(
        loss=lambda p, s, x, t, *, key=None: MODEL.loss(p, s, poison(x), t, key=key),
        manual_grad=lambda p, s, x, t, *, key=None: MODEL.manual_grad(p, s, poison(x), t, key=key))


def test_fit_reports_a_non_finite_loss():
    (x, t), test = _blobs()
    with pytest.raises(FloatingPointError, match=r"fit: the loss became nan at step 1 \(epoch 1\)"):
        train.fit(_inf_above(), optax.sgd(0.1), ((x + 1e3, t), test), key=jax.random.key(0), epochs=1,
                  batch_size=10, progress=False)


@pytest.mark.parametrize("mutate, error, match", [
    (lambda d: (((d[0][0]).astype(np.int64), d[0][1]), d[1]), TypeError, "train x has dtype int64"),
    (lambda d: ((d[0][0], d[0][1][:-1]), d[1]), ValueError, "train t has 89 samples .* expected 90"),
    (lambda d: ((d[0][0], d[0][1] + 3), d[1]), ValueError,
     r"t holds the label \d, expected labels in \[0, 2\]"),
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
    ({"epochs": 1, "train_eval_size": 0}, "train_eval_size is 0, expected a positive integer"),
])
def test_fit_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.fit(MODEL, optax.sgd(0.1), _blobs(), key=jax.random.key(0), progress=False, **kwargs)


# ---------------------------------------------------------------------------------------------
# NaN/inf guard: a non-finite step is not applied, and fit says where it happened.
# ---------------------------------------------------------------------------------------------

OPT = optax.sgd(0.1)  # one object: fit reuses the compiled epoch across these tests


def _poisoned(data, value, row=7):
    (x, t), test = data
    x = x.copy()
    x[row, 0] = value
    return (x, t), test


def test_fit_names_a_non_finite_update():
    """Loss and gradients finite, the update NaN (learning rate NaN): refused, and said so."""
    with pytest.raises(FloatingPointError, match=r"the updated parameters became non-finite \(loss [\d.]+\) "
                       r"at step 1 \(epoch 1\)") as info:
        train.fit(MODEL, optax.sgd(jnp.nan), _blobs(), key=jax.random.key(0), epochs=1, batch_size=10,
                  progress=False)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(info.value.train_state))


def test_fit_stops_at_the_failing_step_and_keeps_the_params_before_it():
    data, model = _poisoned(_blobs(), 1e3), _inf_above()
    with pytest.raises(FloatingPointError) as info:
        train.fit(model, OPT, data, key=jax.random.key(0), epochs=3, batch_size=10, progress=False)
    err = info.value
    assert err.epoch == 1 and err.leaf == "W1" and err.checkpoint is None
    assert f"the loss became nan at step {err.step} (epoch 1); first non-finite gradient: W1" in str(err)
    assert "Last good checkpoint: none" in str(err)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(err.train_state))
    if err.step > 1:  # the kept params are exactly those of a run that stops just before the step
        ts, _ = train.fit(model, OPT, data, key=jax.random.key(0), steps=err.step - 1, batch_size=10,
                          progress=False)
        chex.assert_trees_all_equal(err.train_state.params, ts.params)


def _inf_in_W2_model():
    """MODEL, but the gradient of W2 is inf when a batch holds a feature above 100 (the loss stays finite)."""
    def manual_grad(params, state, x, t, *, key=None):
        loss, grads, state = MODEL.manual_grad(params, state, x, t, key=key)
        grads = {**grads, "W2": grads["W2"] * jnp.where(jnp.any(x > 100), jnp.inf, 1.0)}
        return loss, grads, state
    return MODEL._replace(manual_grad=manual_grad)


def test_fit_names_the_leaf_and_the_last_good_checkpoint(tmp_path):
    data = _poisoned(_blobs(), 1e3)  # the same data for both calls: resuming checks it is the same run
    kw = {"key": jax.random.key(0), "batch_size": 10, "progress": False, "grad": "manual"}
    train.fit(MODEL, OPT, data, epochs=1, checkpoints=tmp_path, **kw)  # MODEL: no inf
    with pytest.raises(FloatingPointError, match=r"the gradient of W2 became non-finite \(loss [\d.]+\) "
                       r"at step (1[0-8]) \(epoch 2\)\. .*Last good checkpoint: .*ckpt-000001\.json"):
        train.fit(_inf_in_W2_model(), OPT, data, epochs=2,
                  checkpoints=train.Checkpoints(tmp_path, resume=True), **kw)


def test_a_learning_rate_far_too_high_never_writes_nan_into_the_params():
    with pytest.raises(FloatingPointError, match="at step") as info:
        train.fit(MODEL, optax.sgd(1e300), _blobs(), key=jax.random.key(0), epochs=2, batch_size=10,
                  progress=False)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(info.value.train_state))


def test_epoch_keys_depend_on_seed_and_epoch_only():
    """fit draws epoch e's batches from fold_in(run_key, e): a 2-epoch run is the 3-epoch run's prefix."""
    data = _blobs()
    _, h2 = train.fit(MODEL, OPT, data, key=jax.random.key(4), epochs=2, batch_size=10, progress=False)
    _, h3 = train.fit(MODEL, OPT, data, key=jax.random.key(4), epochs=3, batch_size=10, progress=False)
    assert h3["step_loss"][: len(h2["step_loss"])] == h2["step_loss"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"checkpoints": train.Checkpoints("ckpt", every=0)}, ValueError, "every is 0, expected a positive integer"),
    ({"checkpoints": train.Checkpoints("ckpt", keep=-1)}, ValueError, "keep is -1, expected a positive integer"),
    ({"checkpoints": train.Checkpoints(None, resume=True)}, TypeError, "checkpoints.dir is None, expected the folder"),
    ({"key": 0}, TypeError, "key is int.*expected a jax.random key"),
])
def test_fit_rejects_bad_checkpoint_arguments(kwargs, error, match):
    kw = {"key": jax.random.key(0), "epochs": 1, "batch_size": 10, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        train.fit(MODEL, OPT, _blobs(), **kw)


def test_fit_and_fit_lm_leave_the_callers_train_state_usable():
    """The epochs donate their state: fit and fit_lm copy a given train_state first, so the caller's
    arrays survive (and a second call from the same state gives the same result)."""
    from fnn import lm
    from fnn.models import rnnlm
    from fnn.step import init_train_state

    ts0 = init_train_state(MODEL, OPT, jax.random.key(5))
    before = [np.asarray(leaf).copy() for leaf in jax.tree_util.tree_leaves(ts0)]
    kw = {"key": jax.random.key(0), "epochs": 1, "batch_size": 10, "progress": False, "train_state": ts0}
    first, _ = train.fit(MODEL, OPT, _blobs(), **kw)
    second, _ = train.fit(MODEL, OPT, _blobs(), **kw)
    assert all(np.array_equal(np.asarray(a), b) for a, b in zip(jax.tree_util.tree_leaves(ts0), before, strict=True))
    chex.assert_trees_all_equal(first, second)

    model = rnnlm.simple_rnnlm(5, 4, 4)
    params, _ = model.init(jax.random.key(0))
    ts_lm = lm.TrainState(params, lm.initial_state(model, params, 2, 5), OPT.init(params))
    corpus = np.arange(200) % 5
    a, _ = lm.fit_lm(model, OPT, corpus, key=jax.random.key(0), epochs=1, batch_size=2, time_size=5,
                     progress=False, train_state=ts_lm)
    b, _ = lm.fit_lm(model, OPT, corpus, key=jax.random.key(0), epochs=1, batch_size=2, time_size=5,
                     progress=False, train_state=ts_lm)
    chex.assert_trees_all_equal(a.params, b.params)
    assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(ts_lm))

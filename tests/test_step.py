"""fnn.step: the step is traced once, an epoch is a scan of steps, evaluation pads, the NaN guard."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn.optim
from fnn.models import mlp
from fnn.step import GRADS, consumed, init_train_state, make_epoch, make_evaluate, make_step, make_steps

from .test_train import MODEL, OPT, _blobs


def test_step_is_traced_once():
    (x, t), _ = _blobs()
    step = make_step(MODEL, optax.sgd(0.1), grad="manual")
    step = jax.jit(chex.assert_max_traces(step, n=1))
    ts = init_train_state(MODEL, optax.sgd(0.1), jax.random.key(0))
    for i in range(3):
        ts, metrics = step(ts, (jnp.asarray(x[i * 10:(i + 1) * 10]), jnp.asarray(t[i * 10:(i + 1) * 10])),
                           jax.random.key(i))
    assert np.isfinite(metrics["loss"])


def test_epoch_equals_python_loop_of_steps():
    (x, t), _ = _blobs()
    x, t = jnp.asarray(x), jnp.asarray(t)
    opt = optax.sgd(0.1)
    ts0 = init_train_state(MODEL, opt, jax.random.key(0))
    key = jax.random.key(5)
    epoch = make_epoch(MODEL, opt, batch_size=10)
    ts_scan, metrics = epoch(jax.tree_util.tree_map(jnp.copy, ts0), x, t, key)

    step = make_step(MODEL, opt)
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
    ts = init_train_state(MODEL, optax.sgd(0.1), jax.random.key(0))
    scores = np.asarray(mlp.apply(ts.params, jnp.asarray(x)))
    want_acc = float(np.mean(np.argmax(scores, -1) == t))
    want_loss = float(-jnp.mean(jax.nn.log_softmax(scores)[jnp.arange(len(t)), t]))
    for bs in (7, 90, 1000):
        got = make_evaluate(MODEL, batch_size=bs)(ts.params, ts.state, jnp.asarray(x), jnp.asarray(t))
        np.testing.assert_allclose(got["accuracy"], want_acc, rtol=1e-12)
        np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-12)


def test_step_refuses_a_non_finite_update_and_flags_the_leaves():
    (x, t), _ = _blobs()
    step = jax.jit(make_step(MODEL, OPT))
    ts = init_train_state(MODEL, OPT, jax.random.key(0))
    bad_x = jnp.asarray(x[:10]).at[3, 0].set(jnp.nan)
    new, m = step(ts, (bad_x, jnp.asarray(t[:10])), jax.random.key(1))
    assert not bool(m["finite"]) and np.isnan(m["loss"])
    assert m["finite_grads"].tolist() == [False, False, False, False]  # W1, W2, b1, b2
    chex.assert_trees_all_equal(new, ts)
    new, m = step(ts, (jnp.asarray(x[:10]), jnp.asarray(t[:10])), jax.random.key(1))
    assert bool(m["finite"]) and m["finite_grads"].all()


@pytest.mark.parametrize("grad", GRADS)
def test_step_refuses_non_finite_new_params_from_a_nan_learning_rate(grad):
    """Loss and gradients finite, the new parameters NaN: the step is refused like a NaN gradient."""
    (x, t), _ = _blobs()
    nan_at_1 = optax.scale_by_schedule(lambda count: jnp.where(count == 1, jnp.nan, 1.0))
    opt = optax.chain(fnn.optim.adam(0.01), nan_at_1)
    step = jax.jit(make_step(MODEL, opt, grad=grad))
    ts = init_train_state(MODEL, opt, jax.random.key(0))
    batch = (jnp.asarray(x[:10]), jnp.asarray(t[:10]))
    ts1, m = step(ts, batch, jax.random.key(1))  # count 0: a finite step, applied
    assert bool(m["finite"]) and not bool(jnp.all(ts1.params["W1"] == ts.params["W1"]))
    ts2, m = step(ts1, batch, jax.random.key(1))  # count 1: learning rate NaN
    assert not bool(m["finite"]) and np.isfinite(m["loss"]) and m["finite_grads"].all()
    chex.assert_trees_all_equal(ts2, ts1)  # params, model state and the optimizer's moments and counts


def test_steps_in_order_equal_the_step_one_by_one():
    """make_steps: the step scanned over batches in the order given, step i with split(key, nb)[i]."""
    (x, t), _ = _blobs()
    xs, ts_ = jnp.asarray(x[:80]).reshape(8, 10, -1), jnp.asarray(t[:80]).reshape(8, 10)
    ts0 = init_train_state(MODEL, OPT, jax.random.key(0))
    step = make_step(MODEL, OPT)
    ts, losses = ts0, []
    for i, k in enumerate(jax.random.split(jax.random.key(2), 8)):
        ts, m = step(ts, (xs[i], ts_[i]), k)
        losses.append(m["loss"])
    ts_scan, metrics = make_steps(MODEL, OPT)(jax.tree_util.tree_map(jnp.copy, ts0), xs, ts_,
                                              jax.random.key(2))
    np.testing.assert_allclose(metrics["loss"], losses, rtol=1e-12)
    chex.assert_trees_all_close(ts_scan.params, ts.params, rtol=1e-12)
    assert metrics["finite"].shape == (8,) and bool(metrics["finite"].all())


def test_after_a_non_finite_step_the_rest_of_the_scan_leaves_the_state_as_it_was():
    (x, t), _ = _blobs()
    xs, ts_ = np.asarray(x[:40]).reshape(4, 10, -1).copy(), jnp.asarray(t[:40]).reshape(4, 10)
    xs[1, 3, 0] = np.nan  # step 2 of 4 fails
    ts0 = init_train_state(MODEL, OPT, jax.random.key(0))
    ts, metrics = make_steps(MODEL, OPT)(jax.tree_util.tree_map(jnp.copy, ts0), jnp.asarray(xs), ts_,
                                         jax.random.key(2))
    assert metrics["finite"].tolist() == [True, False, True, True]  # each step's own loss and grads
    first, _ = make_step(MODEL, OPT)(ts0, (jnp.asarray(xs[0]), ts_[0]), jax.random.split(jax.random.key(2), 4)[0])
    chex.assert_trees_all_close(ts.params, first.params, rtol=1e-12)  # after step 1, untouched since


# The guard at the end of a scan (`fnn.step._Scan`): the steps run unchecked, and again under the
# per-step guard only when a loss or the final state is not finite. Either way the result must be
# the per-step guard's, bit for bit.

def _epochs(opt=OPT, **kw):
    return {g: make_epoch(MODEL, opt, batch_size=10, guard=g, **kw) for g in ("end", "step")}


def test_the_end_guard_gives_the_per_step_guards_result_on_a_finite_epoch():
    (x, t), _ = _blobs()
    ts0 = init_train_state(MODEL, OPT, jax.random.key(0))
    out = {g: ep(jax.tree_util.tree_map(jnp.copy, ts0), jnp.asarray(x), jnp.asarray(t), jax.random.key(3))
           for g, ep in _epochs().items()}
    chex.assert_trees_all_equal(out["end"], out["step"])  # train state and every metric
    assert bool(out["end"][1]["finite"].all()) and out["end"][1]["finite_grads"].shape == (9, 4)


@pytest.mark.parametrize("poison", ["x", "lr"])
def test_the_end_guard_replays_a_failing_epoch_under_the_per_step_guard(poison):
    """A NaN sample (loss and gradients NaN) or a NaN learning rate at step 4 (only the new
    parameters NaN): the end guard's result is the per-step guard's, the state before step 4."""
    (x, t), _ = _blobs()
    x = np.asarray(x).copy()
    opt = OPT
    if poison == "x":
        x[:, 0] = np.where(np.arange(len(x)) == 17, np.nan, x[:, 0])
    else:
        opt = optax.chain(fnn.optim.adam(0.01), optax.scale_by_schedule(lambda c: jnp.where(c == 3, jnp.nan, 1.0)))
    ts0 = init_train_state(MODEL, opt, jax.random.key(0))
    out = {g: ep(jax.tree_util.tree_map(jnp.copy, ts0), jnp.asarray(x), jnp.asarray(t), jax.random.key(3))
           for g, ep in _epochs(opt).items()}
    chex.assert_trees_all_equal(out["end"], out["step"])
    assert not bool(out["end"][1]["finite"].all())
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(out["end"][0]))


def test_the_end_guard_consumes_the_train_state_but_not_what_it_hands_back():
    """`ts` is deleted as if donated, the result is alive, even a leaf that never changes (an
    optimizer state the step hands back as it got it: jit may return such an input as is)."""
    (x, t), _ = _blobs()
    keep = optax.GradientTransformation(lambda p: (jnp.arange(3.0),), lambda g, s, p=None: (g, s))
    opt = optax.chain(keep, optax.sgd(0.1))
    ts = init_train_state(MODEL, opt, jax.random.key(0))
    new, _ = make_epoch(MODEL, opt, batch_size=10)(ts, jnp.asarray(x), jnp.asarray(t), jax.random.key(3))
    assert consumed(ts.params) and consumed(ts.opt_state) and not consumed(new)
    assert new.opt_state[0][0].tolist() == [0.0, 1.0, 2.0]


def test_make_epoch_and_make_steps_refuse_an_unknown_guard():
    with pytest.raises(ValueError, match=r"^make_epoch: guard is 'never', expected one of \('end', 'step'\)"):
        make_epoch(MODEL, OPT, batch_size=10, guard="never")
    with pytest.raises(ValueError, match="^make_steps: guard is 'never'"):
        make_steps(MODEL, OPT, guard="never")


def test_the_end_guard_sees_a_non_finite_gradient_the_optimizer_discards():
    """A frozen leaf (optax.masked set_to_zero) whose gradient turns NaN at one step: the update and
    the final state stay finite, but the per-step guard refuses that step; so does the end guard,
    which carries one finiteness flag per gradient leaf."""
    (x, t), _ = _blobs()
    x = np.asarray(x).copy()
    x[17, 0] = 99.0  # a finite marker: the loss stays finite

    def poisoned(params, state, x, t, *, key=None):
        loss, grads, state = MODEL.manual_grad(params, state, x, t, key=key)
        return loss, {**grads, "W1": jnp.where(jnp.any(x[:, 0] == 99.0), jnp.nan, grads["W1"])}, state

    model = MODEL._replace(manual_grad=poisoned)
    frozen = {"W1": True, "W2": False, "b1": False, "b2": False}
    opt = optax.chain(optax.masked(optax.set_to_zero(), frozen), optax.sgd(0.1))
    ts0 = init_train_state(model, opt, jax.random.key(0))
    out = {g: make_epoch(model, opt, batch_size=10, grad="manual", guard=g)(
        jax.tree_util.tree_map(jnp.copy, ts0), jnp.asarray(x), jnp.asarray(t), jax.random.key(3))
        for g in ("end", "step")}
    chex.assert_trees_all_equal(out["end"], out["step"])
    assert int((~out["end"][1]["finite"]).sum()) >= 1

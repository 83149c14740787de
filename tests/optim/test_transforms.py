"""fnn.optim's rules against NumPy transcriptions of the book's ``common/optimizer.py``.

The test problem (shared with test_alias.py): a nested dict with a 3x4 matrix, a 4-vector and
a scalar, a coupled quadratic + quartic loss, gradients taken at the current parameters so the
whole trajectory matters. Each transcription below is the book's class rewritten in plain
NumPy, one leaf at a time, in place, with the learning rate passed at each step (the book's
class with ``opt.lr`` set between steps) so that schedules can be checked too.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fnn.optim as O

STEPS = 100
# XLA:CPU's compile is most of each test's second; these programs are tiny, so skip its
# expensive passes (a third less compile time, the same numbers to the tolerances below)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

# ------------------------------------------------------------------ the test problem

_k1, _k2, _k3 = jax.random.split(jax.random.key(0), 3)
PARAMS0 = {
    "layer": {
        "W": jax.random.normal(_k1, (3, 4)),
        "b": jax.random.normal(_k2, (4,)),
    },
    "s": jnp.asarray(0.7, jnp.float64),  # not weak-typed, so jit traces once
}
_W_TARGET = jax.random.normal(_k3, (3, 4))
_W_WEIGHT = jnp.linspace(0.5, 2.0, 12).reshape(3, 4)


def loss(p):
    W, b, s = p["layer"]["W"], p["layer"]["b"], p["s"]
    dW = W - _W_TARGET
    return (
        0.5 * jnp.sum(_W_WEIGHT * dW**2)
        + 0.1 * jnp.sum(dW**4)
        + 0.5 * jnp.sum((b - 0.3) ** 2)
        + 0.25 * (s - 1.0) ** 4
        + 0.5 * s**2
        + 0.1 * s * jnp.sum(W @ b)
    )


grad = jax.jit(jax.grad(loss))


def np_grad(W, b, s):
    """`loss`'s gradient by hand, in NumPy, for the transcriptions' loops."""
    dW = W - np.asarray(_W_TARGET)
    return [
        np.asarray(_W_WEIGHT) * dW + 0.4 * dW**3 + 0.1 * s * np.broadcast_to(b, W.shape),
        (b - 0.3) + 0.1 * s * W.sum(axis=0),
        (s - 1.0) ** 3 + s + 0.1 * np.sum(W @ b),
    ]


def run_steps(opt, params, steps=STEPS, grad_fn=None, *, every_step=True):
    """`opt` for `steps` steps from `params` (traceable): the parameters after each step,
    a pytree with leaves (steps, ...), or only the last ones if not `every_step`."""
    grad_fn = jax.grad(loss) if grad_fn is None else grad_fn

    def body(carry, _):
        p, state = carry
        updates, state = opt.update(grad_fn(p), state, p)
        p = optax.apply_updates(p, updates)
        return (p, state), (p if every_step else None)

    (last, _), each = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
    return each if every_step else last


def trajectories(opts, params=PARAMS0, steps=STEPS, grad_fns=None):
    """`run_steps` for each optimizer, all in one jitted program (one compilation: the
    tests' main cost). `grad_fns`: one per optimizer (default: `loss`'s gradient)."""
    grad_fns = [None] * len(opts) if grad_fns is None else grad_fns

    def run(p):
        return [run_steps(o, p, steps, g) for o, g in zip(opts, grad_fns, strict=True)]

    return jax.jit(run, compiler_options=FAST_COMPILE)(params)


def trajectory(opt, params=PARAMS0, steps=STEPS):
    return trajectories([opt], params, steps)[0]


def max_rel_err(a, b):
    """max over steps and leaves of max|a - b| / max|b| at that step (leaves (steps, ...))."""
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x = np.asarray(x).reshape(len(x), -1)
        y = np.asarray(y).reshape(len(y), -1)
        err = np.max(np.abs(x - y), axis=1) / np.max(np.abs(y), axis=1)
        worst = max(worst, float(np.max(err)))
    return worst


# ------------------------------------------------------------------ NumPy transcriptions
# `params` and `grads` are lists of NumPy arrays (the leaves); `update` changes params in place.


class BookSGD:
    def update(self, params, grads, lr):
        for W, dW in zip(params, grads, strict=True):
            W -= lr * dW


class BookMomentum:
    def __init__(self, momentum):
        self.momentum, self.v = momentum, None

    def update(self, params, grads, lr):
        if self.v is None:
            self.v = [np.zeros_like(W) for W in params]
        for W, dW, v in zip(params, grads, self.v, strict=True):
            v[...] = self.momentum * v - lr * dW
            W += v


class BookNesterov:
    """The book's Nesterov.update as it is since its January 2021 fix ("Fix Nesterov update
    function"): the step uses the velocity from *before* the update, then v is updated."""

    def __init__(self, momentum):
        self.momentum, self.v = momentum, None

    def update(self, params, grads, lr):
        if self.v is None:
            self.v = [np.zeros_like(W) for W in params]
        m = self.momentum
        for W, dW, v in zip(params, grads, self.v, strict=True):
            W += m * m * v
            W -= (1 + m) * lr * dW
            v *= m
            v -= lr * dW


class PreFixBookNesterov:
    """The book's Nesterov.update before its January 2021 fix: v first, then the step with the
    *new* v (what fnn computed before it followed the fix)."""

    def __init__(self, momentum):
        self.momentum, self.v = momentum, None

    def update(self, params, grads, lr):
        if self.v is None:
            self.v = [np.zeros_like(W) for W in params]
        m = self.momentum
        for W, dW, v in zip(params, grads, self.v, strict=True):
            v *= m
            v -= lr * dW
            W += m * m * v
            W -= (1 + m) * lr * dW


class BookAdaGrad:
    def __init__(self, eps=1e-7):
        self.eps, self.h = eps, None

    def update(self, params, grads, lr):
        if self.h is None:
            self.h = [np.zeros_like(W) for W in params]
        for W, dW, h in zip(params, grads, self.h, strict=True):
            h += dW * dW
            W -= lr * dW / (np.sqrt(h) + self.eps)


class BookRMSprop:
    def __init__(self, decay_rate, eps=1e-7):
        self.decay_rate, self.eps, self.h = decay_rate, eps, None

    def update(self, params, grads, lr):
        if self.h is None:
            self.h = [np.zeros_like(W) for W in params]
        for W, dW, h in zip(params, grads, self.h, strict=True):
            h *= self.decay_rate
            h += (1 - self.decay_rate) * dW * dW
            W -= lr * dW / (np.sqrt(h) + self.eps)


class BookAdam:
    def __init__(self, beta1, beta2, eps=1e-7):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t, self.m, self.v = 0, None, None

    def update(self, params, grads, lr):
        if self.m is None:
            self.m = [np.zeros_like(W) for W in params]
            self.v = [np.zeros_like(W) for W in params]
        self.t += 1
        lr_t = lr * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for W, dW, m, v in zip(params, grads, self.m, self.v, strict=True):
            m += (1 - self.beta1) * (dW - m)
            v += (1 - self.beta2) * (dW**2 - v)
            W -= lr_t * m / (np.sqrt(v) + self.eps)


class ZeilerAdaDelta:
    """Zeiler 2012, Algorithm 1, with the step scaled by `lr` after E[dx^2] is updated."""

    def __init__(self, rho, eps):
        self.rho, self.eps, self.eg, self.ex = rho, eps, None, None

    def update(self, params, grads, lr):
        if self.eg is None:
            self.eg = [np.zeros_like(W) for W in params]
            self.ex = [np.zeros_like(W) for W in params]
        rho, eps = self.rho, self.eps
        for W, g, eg, ex in zip(params, grads, self.eg, self.ex, strict=True):
            eg[...] = rho * eg + (1 - rho) * g**2
            dx = -np.sqrt(ex + eps) / np.sqrt(eg + eps) * g
            ex[...] = rho * ex + (1 - rho) * dx**2
            W += lr * dx


def clip_grads(grads, max_norm):
    """DLFS2 common/util.py's clip_grads, on a list of NumPy arrays, in place."""
    total_norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate


def np_trajectory(book_opt, lr_at, params=PARAMS0, steps=STEPS):
    """`book_opt` run for `steps` steps, `lr_at(k)` the learning rate at step k = 0, 1, ..."""
    leaves, treedef = jax.tree.flatten(params)
    leaves = [np.array(W, dtype=np.float64) for W in leaves]
    out = []
    for k in range(steps):
        grads = np_grad(*leaves)  # leaves in jax.tree.flatten's order: W, b, s
        book_opt.update(leaves, grads, lr_at(k))
        out.append([W.copy() for W in leaves])
    return treedef.unflatten([np.stack(xs) for xs in zip(*out, strict=True)])


def test_np_grad_equals_jax_grad():
    leaves = [np.asarray(x) for x in jax.tree.leaves(PARAMS0)]
    chex.assert_trees_all_close(np_grad(*leaves), jax.tree.leaves(grad(PARAMS0)), rtol=1e-14)


# (fnn constructor, kwargs, NumPy transcription) for the book's defaults; sgd/momentum/nesterov
# at a larger rate than the book's 0.01 so that 100 steps travel far.
BOOK_CASES = {
    "sgd": (O.sgd, dict(learning_rate=0.05), lambda: BookSGD()),
    "momentum": (O.momentum, dict(learning_rate=0.02, momentum=0.9), lambda: BookMomentum(0.9)),
    "nesterov": (O.nesterov, dict(learning_rate=0.02, momentum=0.9), lambda: BookNesterov(0.9)),
    "adagrad": (O.adagrad, dict(learning_rate=0.1), lambda: BookAdaGrad()),
    "rmsprop": (O.rmsprop, dict(learning_rate=0.01, decay_rate=0.99), lambda: BookRMSprop(0.99)),
    "adam": (O.adam, dict(learning_rate=0.01, beta1=0.9, beta2=0.999), lambda: BookAdam(0.9, 0.999)),
    "adadelta": (
        O.adadelta,
        dict(learning_rate=1.0, rho=0.95, eps=1e-6),
        lambda: ZeilerAdaDelta(0.95, 1e-6),
    ),
}


# ------------------------------------------------------------------ the rules, step by step


@pytest.mark.parametrize("name", list(BOOK_CASES))
def test_equals_book_transcription(name):
    make, kwargs, book = BOOK_CASES[name]
    lr = kwargs["learning_rate"]
    ours = trajectory(make(**kwargs))
    ref = np_trajectory(book(), lambda k: lr)
    assert max_rel_err(ours, ref) < 1e-12
    # the problem is not trivial: the parameters moved
    moved = max_rel_err(jax.tree.map(lambda x: x[-1:], ours), jax.tree.map(lambda x: x[None], PARAMS0))
    assert moved > 1e-2


@pytest.mark.parametrize("name", list(BOOK_CASES))
def test_schedule_equals_book_transcription_with_lr_set_each_step(name):
    make, kwargs, book = BOOK_CASES[name]
    lr = kwargs["learning_rate"]

    # a float64 schedule: optax's own compute in float32 (their count is int32), and XLA's
    # float32 pow inside jit differs from NumPy's by an ulp, 6e-8 relative
    def schedule(count):
        return lr * 0.97**count

    ours = trajectory(make(**{**kwargs, "learning_rate": schedule}))
    ref = np_trajectory(book(), schedule)
    assert max_rel_err(ours, ref) < 1e-12
    constant = np_trajectory(book(), lambda k: lr)
    assert max_rel_err(ours, constant) > 1e-3  # the schedule mattered


def test_book_nesterov_transcription_equals_optax():
    """Backs fnn.optim.nesterov: the book's current rule is optax's nesterov=True, and the
    pre-fix rule is another optimizer (far away after 100 steps)."""
    ours = trajectory(optax.sgd(0.02, momentum=0.9, nesterov=True))
    ref = np_trajectory(BookNesterov(0.9), lambda k: 0.02)
    assert max_rel_err(ours, ref) < 1e-13
    pre_fix = np_trajectory(PreFixBookNesterov(0.9), lambda k: 0.02)
    assert max_rel_err(pre_fix, ref) > 0.1


@pytest.mark.parametrize("total_norm_target", [0.5, 3.0, 40.0])
def test_clip_equals_clip_grads(total_norm_target):
    grads = jax.tree.map(lambda x: x + 0.1, grad(PARAMS0))
    grads = jax.tree.map(lambda g: g * total_norm_target / O.global_norm(grads), grads)
    leaves = [np.array(g) for g in jax.tree.leaves(grads)]
    clip_grads(leaves, 3.0)
    clip = O.clip_by_global_norm(3.0)
    ours, _ = clip.update(grads, clip.init(PARAMS0))
    chex.assert_trees_all_close(jax.tree.leaves(ours), leaves, rtol=1e-14, atol=0)
    expected = min(total_norm_target, 3.0 * total_norm_target / (total_norm_target + 1e-6))
    np.testing.assert_allclose(O.global_norm(ours), expected, rtol=1e-13)


def test_clip_at_the_threshold_matches_the_book():
    """At total_norm == max_norm the book still clips (rate = 1 / (1 + 1e-6) < 1)."""
    grads = {"a": jnp.array([3.0, 4.0])}  # norm 5
    clip = O.clip_by_global_norm(5.0)
    ours, _ = clip.update(grads, clip.init(grads))
    leaves = [np.array([3.0, 4.0])]
    clip_grads(leaves, 5.0)
    np.testing.assert_allclose(ours["a"], leaves[0], rtol=1e-15)
    assert float(O.global_norm(ours)) < 5.0


_clip = jax.jit(lambda grads, max_norm: O.clip_by_global_norm(max_norm).update(grads, ())[0])


# no magnitudes near float64's underflow: XLA:CPU flushes subnormals to zero, NumPy does not
_ELEMENTS = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))


@settings(max_examples=40, deadline=None)
@given(
    a=hnp.arrays(np.float64, (2, 3), elements=_ELEMENTS),
    b=hnp.arrays(np.float64, (3,), elements=_ELEMENTS),
    max_norm=st.floats(1e-3, 1e3),
)
def test_clip_equals_clip_grads_property(a, b, max_norm):
    ours = _clip({"a": a, "b": b}, max_norm)  # max_norm traced: jit compiles once
    leaves = [a.copy(), b.copy()]
    clip_grads(leaves, max_norm)
    np.testing.assert_allclose(ours["a"], leaves[0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(ours["b"], leaves[1], rtol=1e-13, atol=0)
    assert float(O.global_norm(ours)) <= max_norm * (1 + 1e-13)


# ------------------------------------------------------------------ the building blocks


def _leaf_shapes(tree):
    return [x.shape for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize(
    "block, fields",
    [
        (O.scale_by_momentum(0.9), {"v"}),
        (O.scale_by_book_nesterov(0.9), {"v"}),
        (O.scale_by_adagrad(), {"h"}),
        (O.scale_by_rmsprop(), {"h"}),
        (O.scale_by_book_adam(), {"m", "v"}),
        (O.scale_by_adadelta(), {"e_g2", "e_dx2"}),
    ],
)
def test_block_state_is_like_params_and_updates_keep_dtype(block, fields):
    params = jax.tree.map(lambda x: x.astype(jnp.float32), PARAMS0)
    state = block.init(params)
    for f in fields:
        assert _leaf_shapes(getattr(state, f)) == _leaf_shapes(params)
        chex.assert_trees_all_equal(getattr(state, f), jax.tree.map(jnp.zeros_like, params))
    updates, new_state = block.update(jax.tree.map(lambda x: x + 1, params), state)
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
    chex.assert_trees_all_equal_structs(new_state, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)


@pytest.mark.parametrize("name", list(BOOK_CASES))
def test_alias_keeps_float32(name):
    make, kwargs, _ = BOOK_CASES[name]
    opt = make(**kwargs)
    params = jax.tree.map(lambda x: x.astype(jnp.float32), PARAMS0)
    state = opt.init(params)
    for _ in range(2):
        updates, state = opt.update(jax.tree.map(jnp.ones_like, params), state, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)


def test_scale_by_learning_rate_counts_from_zero_for_schedules():
    seen = []
    block = O.scale_by_learning_rate(lambda count: seen.append(int(count)) or 0.5 * count)
    g = {"a": jnp.ones(2)}
    state = block.init(g)
    for k in range(3):
        u, state = block.update(g, state)
        np.testing.assert_array_equal(u["a"], -0.5 * k * np.ones(2))
    assert seen == [0, 1, 2]
    u, _ = O.scale_by_learning_rate(0.25, flip_sign=False).update(g, state)
    np.testing.assert_array_equal(u["a"], 0.25 * np.ones(2))


def test_book_adam_first_step_is_lr_times_sign():
    """t = 1: m = 0.1 g, v = 0.001 g^2, lr_t = lr sqrt(0.001) / 0.1, so W moves by about
    lr * sign(g) (DLFS1 §6.1.6), less by the eps term."""
    g = {"a": jnp.array([-2.0, 0.5, 3.0])}
    u, _ = O.scale_by_book_adam().update(g, O.scale_by_book_adam().init(g))
    eps_term = 1e-7 / (np.sqrt(1e-3) * np.abs(np.array([-2.0, 0.5, 3.0])))
    np.testing.assert_allclose(u["a"], np.sign([-2.0, 0.5, 3.0]) / (1 + eps_term), rtol=1e-14)


@pytest.mark.parametrize(
    "make, arg, bad",
    [
        (lambda v: O.scale_by_learning_rate(v), "learning_rate", -0.1),
        (lambda v: O.scale_by_momentum(v), "momentum", 1.0),
        (lambda v: O.scale_by_book_nesterov(v), "momentum", -0.5),
        (lambda v: O.scale_by_adagrad(v), "eps", -1e-7),
        (lambda v: O.scale_by_rmsprop(decay_rate=v), "decay_rate", 1.5),
        (lambda v: O.scale_by_rmsprop(eps=v), "eps", float("nan")),
        (lambda v: O.scale_by_book_adam(beta1=v), "beta1", 1.0),
        (lambda v: O.scale_by_book_adam(beta2=v), "beta2", -0.1),
        (lambda v: O.scale_by_adadelta(rho=v), "rho", 2.0),
        (lambda v: O.scale_by_adadelta(eps=v), "eps", 0.0),
        (lambda v: O.clip_by_global_norm(v), "max_norm", 0.0),
        (lambda v: O.clip_by_global_norm(v), "max_norm", float("inf")),
    ],
)
def test_block_bad_hyper_parameter(make, arg, bad):
    with pytest.raises(ValueError, match=rf"^\w+: {arg} must .* got {bad!r}"):
        make(bad)


def test_block_rejects_array_hyper_parameter():
    with pytest.raises(ValueError, match="scale_by_momentum: momentum must be a real scalar"):
        O.scale_by_momentum(jnp.array([0.9, 0.8]))

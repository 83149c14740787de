"""The training step, an epoch of steps, and evaluation: pure functions, the same for every model.

The book's training loop (DLFS1 §4.5.2, ``train_neuralnet.py``; ``common/trainer.py``) made pure:

    step(ts, (x, t), key) -> (ts, {"loss", "finite", "finite_grads"})

`ts` is a `TrainState` (params, model state, optimizer state). The gradient comes from
``grad="autodiff"`` (``jax.value_and_grad`` of ``model.loss``) or ``grad="manual"`` (the book's
backprop, ``model.manual_grad``); the optimizer is any optax ``GradientTransformation``.

* `make_step` — one step, not jitted: jit it, scan it or vmap it.
* `make_epoch` — shuffle the training set, then one `lax.scan` of the step over its mini-batches,
  in a single jitted call with the train state's buffers donated: no Python loop and no host round
  trip per step. The mini-batches of an epoch are drawn without replacement and the last
  ``N % batch_size`` samples of the shuffled order wait for the next epoch (the book draws each
  batch independently with ``np.random.choice``; an epoch here sees every sample at most once).
* `make_steps` — the same scan over mini-batches given in order (a language model's consecutive
  BPTT batches, whose recurrent state flows from one to the next through ``ts.state``).
* `make_evaluate` — loss and accuracy over a whole data set, in batches, under one `lax.scan`.

Consumption: `make_epoch` and `make_steps` delete the train state's buffers once their call
returns (the per-step guarded scan donates them to the compiled call), so the `ts` passed in is
gone afterwards (use the one returned). The drivers (`fnn.train.fit`, `fnn.lm.fit_lm`) give them
`own_copy` of a caller's train state, so the caller's stays usable.
No value check runs inside these compiled functions (NaN flows, out-of-range labels are clamped by
the gather): the drivers check their data once on the host (`fnn._checks`).

NaN/inf guard: a step whose loss, gradient or new parameters are not finite is not applied (a
`jnp.where` per leaf inside the compiled step); the flags come back with the step's metrics, and
once a step of a scan is refused the rest of the scan leaves `ts` as it was. `fnn.train.fit` turns
the flags into an error. A scan carries one flag per gradient leaf, checks the rest once at its
end, and runs again under the per-step check only when something was not finite (`_Scan`): the
same result, without most of the per-step cost (a fifth of the MLP's step on CPU).

With a `mesh` (`fnn.parallel`), each mini-batch is split over the mesh's ``"batch"`` axis.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array
from jax.sharding import Mesh

from fnn import compile_cache, parallel
from fnn import functions as F
from fnn._checks import check_set
from fnn.models._model import Model, Params, State

__all__ = [
    "GRADS", "GUARDS", "consumed", "init_train_state", "loss_and_grads", "make_epoch", "make_evaluate", "make_step",
    "make_steps", "own_copy", "TrainState",
]

# The gradient paths: ``jax.grad`` of the model's loss, or the model's hand-written backprop.
GRADS = ("autodiff", "manual")
# Where a scan of steps checks for non-finite values: once at its end (each step again only when
# that finds one), or at every step (`_Scan`).
GUARDS = ("end", "step")


class TrainState(NamedTuple):
    """Everything a training run carries from step to step."""

    params: Params      # the model's trainable pytree
    state: State        # the model's non-trained state ({} for most models; an LM's recurrent carry)
    opt_state: Any      # the optimizer's state


def init_train_state(model: Model, optimizer: optax.GradientTransformation, key: Array) -> TrainState:
    """Initialise a model's parameters and state, and the optimizer's state for them."""
    params, state = model.init(key)
    try:
        init = _optimizer_init(optimizer)
    except TypeError:  # an optimizer that cannot be hashed (a field holding a dict): not cached
        init = _optimizer_init.__wrapped__(optimizer)
    return TrainState(params, state, init(params))


@functools.lru_cache(maxsize=64)
def _optimizer_init(optimizer: optax.GradientTransformation):
    """`optimizer.init` as one program compiled for speed of compiling (it runs once): 0.13 s
    for Adam on DeepConvNet's 18 leaves against 0.5 s of small eager programs, one a leaf."""
    return compile_cache.jit_once(optimizer.init)


def consumed(tree) -> bool:
    """Was a leaf of `tree` donated to a compiled call (`make_epoch`, `make_steps`), its buffer gone?"""
    return any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree_util.tree_leaves(tree))


def own_copy(fn: str, ts: TrainState) -> TrainState:
    """A copy of a caller's train state for the donating epochs, so that the caller's arrays stay
    usable (one device copy of params and optimizer state); ValueError when a compiled call already
    consumed them."""
    if consumed(ts):
        raise ValueError(f"{fn}: train_state holds arrays that were deleted: a compiled call consumed them "
                         f"(make_epoch and make_steps donate the train state they are given); expected the "
                         f"train state that call returned")
    return jax.tree_util.tree_map(jnp.copy, ts)


def loss_and_grads(model: Model, grad: str = "autodiff") -> Callable[..., tuple[Array, Params, State]]:
    """``f(params, state, x, t, *, key) -> (loss, grads, new_state)`` by the chosen gradient path.

    ``"manual"`` is the model's hand-written backprop (DLFS1 §5.7.2); ``"autodiff"`` is
    ``jax.value_and_grad`` of its loss (the loss's second output, the model's new state, rides along).
    """
    if grad == "manual":
        return model.manual_grad
    if grad != "autodiff":
        raise ValueError(f"loss_and_grads: grad is {grad!r}, expected one of {GRADS}")
    vg = jax.value_and_grad(model.loss, has_aux=True)

    def autodiff(params, state, x, t, *, key=None):
        (loss, new_state), grads = vg(params, state, x, t, key=key)
        return loss, grads, new_state

    return autodiff


def make_step(model: Model, optimizer: optax.GradientTransformation, *, grad: str = "autodiff"):
    """The training step ``step(ts, (x, t), key) -> (ts, metrics)``: gradient, then optimizer update.

    Pure and not jitted: jit it, scan it (`make_epoch`) or vmap it as you need.

    NaN/inf guard: when the loss, a gradient or a new parameter is not finite (a NaN learning
    rate, an overflowing update), the step hands back `ts` unchanged (params, model state and
    optimizer state), so nothing is overwritten with NaN. ``metrics`` says what happened, without
    a host round trip: ``loss``, ``finite`` (a bool, False when the update was refused) and
    ``finite_grads`` (one bool per leaf of ``ts.params``, in tree order). The update is computed,
    then kept or dropped by one `jnp.where` per leaf: no `lax.cond`, no host sync.
    """
    guarded = _guarded_step(model, optimizer, grad)

    def step(ts: TrainState, batch: tuple[Array, Array], key: Array):
        return guarded(ts, batch, key, jnp.zeros((), bool))

    return step


def _plain_step(model: Model, optimizer: optax.GradientTransformation, grad: str):
    """``step(ts, batch, key) -> (new ts, loss, grads)``: gradient, then optimizer update, unchecked."""
    gradient = loss_and_grads(model, grad)

    def step(ts: TrainState, batch: tuple[Array, Array], key: Array):
        x, t = batch
        loss, grads, state = gradient(ts.params, ts.state, x, t, key=key)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        return TrainState(optax.apply_updates(ts.params, updates), state, opt_state), loss, grads

    return step


def _guarded_step(model: Model, optimizer: optax.GradientTransformation, grad: str):
    """``step(ts, batch, key, halted)``: `make_step`'s step, which also refuses when `halted`."""
    plain = _plain_step(model, optimizer, grad)

    def step(ts: TrainState, batch: tuple[Array, Array], key: Array, halted: Array):
        new, loss, grads = plain(ts, batch, key)
        finite_grads = _all_finite(grads)
        ok = jnp.isfinite(loss) & jnp.all(finite_grads) & jnp.all(_all_finite(new.params))
        keep = ok & ~halted  # refused: every leaf of ts (params, state, opt_state) as it was
        new = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, ts)
        return new, {"loss": loss, "finite": ok, "finite_grads": finite_grads}

    return step


def _all_finite(tree) -> Array:
    """One bool per leaf of `tree` (tree order): are all of its elements finite?  (L,)"""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.ones((0,), bool)
    return jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])


def _scan_steps(step, ts: TrainState, inputs, keys: Array, batch_of: Callable):
    """Scan the guarded `step` over `inputs` (one row a step) with one key a step.

    ``batch_of(row)`` makes the step's ``(x, t)`` from a row of `inputs`. After the first refused
    (non-finite) step every later step is refused too, so `ts` is the state before it.
    """
    def body(carry, row):
        ts, halted = carry
        inputs_i, key = row
        new, metrics = step(ts, batch_of(inputs_i), key, halted)
        return (new, halted | ~metrics["finite"]), metrics

    (ts, _), metrics = jax.lax.scan(body, (ts, jnp.zeros((), bool)), (inputs, keys))
    return ts, metrics


def _scan_unguarded(step, ts: TrainState, inputs, keys: Array, batch_of: Callable):
    """`_scan_steps` with the unchecked `step` (`_plain_step`): ``(ts, metrics, trusted)``.

    `trusted` is True when every step's loss and gradients (one flag a leaf, carried through the
    scan) and the final parameters are finite. Then no step was refused by the guarded scan
    either: its third test, finite new parameters, fails at a step only if the parameters stay
    non-finite to the end (each step adds its update to them, `optax.apply_updates`, and NaN or
    inf plus anything is not finite). The metrics are then those the guarded scan gives: every
    step finite.
    """
    def body(carry, row):
        ts, finite_grads = carry
        inputs_i, key = row
        new, loss, grads = step(ts, batch_of(inputs_i), key)
        return (new, finite_grads & _all_finite(grads)), loss

    n_leaves = len(jax.tree_util.tree_leaves(ts.params))
    (ts, finite_grads), losses = jax.lax.scan(body, (ts, jnp.ones((n_leaves,), bool)), (inputs, keys))
    trusted = jnp.all(jnp.isfinite(losses)) & jnp.all(finite_grads) & jnp.all(_all_finite(ts.params))
    metrics = {"loss": losses, "finite": jnp.ones(losses.shape, bool),
               "finite_grads": jnp.ones((*losses.shape, n_leaves), bool)}
    return ts, metrics, trusted


def _jit_donating(fn, mesh: Mesh | None):
    """`jax.jit` with the train state (argument 0) donated; replicated outputs on a mesh; on CPU
    at XLA's backend optimisation level 1 (of 3), which compiles DeepConvNet's epoch in 2.6-2.7 s
    instead of 3.6-3.8 s with every model's step as fast, within the noise (docs/SPEED.md)."""
    out = {} if mesh is None else {"out_shardings": parallel.replicated(mesh)}
    return compile_cache.jit(fn, 1, donate_argnums=0, **out)


class _Scan:
    """A compiled scan of training steps, guarded at its end rather than at each step.

    ``run(ts, *args) -> (ts, metrics)``. The steps run without the per-step ``jnp.where`` on every
    leaf (a fifth of a small model's step on CPU; `_scan_unguarded` keeps only a finiteness flag
    per gradient leaf); only when a loss, a gradient or the final parameters are not finite does
    the same scan run again from the same `ts` under the per-step guard (`_scan_steps`, compiled
    then), which refuses the failing step exactly as `make_step` does. The result is the guarded
    scan's in both cases. `ts` is consumed as if donated: its buffers are deleted once the call
    returns. Inside a trace (`jax.vmap` in `fnn.multi`) the guarded scan runs. ``guard="step"``
    runs the guarded scan always.
    """

    def __init__(self, fn: str, make_run: Callable, plain, guarded, mesh: Mesh | None, guard: str):
        if guard not in GUARDS:
            raise ValueError(f"{fn}: guard is {guard!r}, expected one of {GUARDS}")
        self.guard = guard
        out = {} if mesh is None else {"out_shardings": parallel.replicated(mesh)}
        # ``unchecked(ts, *args) -> (ts, metrics, trusted)``, not jitted: for a caller that checks
        # `trusted` itself and goes back to its own copy of `ts` (`fnn.multi.fit_many`)
        self.unchecked = make_run(_scan_unguarded, plain)
        self.fast = compile_cache.jit(self.unchecked, 1, **out)
        self.guarded = _jit_donating(make_run(_scan_steps, guarded), mesh)

    def __call__(self, ts: TrainState, *args):
        leaves = jax.tree_util.tree_leaves((ts, args))
        if self.guard == "step" or any(isinstance(a, jax.core.Tracer) for a in leaves):
            return self.guarded(ts, *args)
        new, metrics, trusted = self.fast(ts, *args)
        if not parallel.to_host(trusted):
            return self.guarded(ts, *args)  # the failing step found and refused, from the same ts
        kept = {id(a) for a in jax.tree_util.tree_leaves(new)}  # outputs jit forwarded from its inputs
        for a in jax.tree_util.tree_leaves(ts):
            if isinstance(a, jax.Array) and id(a) not in kept and not a.is_deleted():
                a.delete()
        return new, metrics


def make_epoch(model: Model, optimizer: optax.GradientTransformation, *, batch_size: int,
               grad: str = "autodiff", num_batches: int | None = None, mesh: Mesh | None = None,
               guard: str = "end"):
    """A jitted ``epoch(ts, x, t, key) -> (ts, metrics)`` over the whole training set (x, t).

    Shuffles with `key`, then scans `step` over ``num_batches`` (default ``N // batch_size``)
    mini-batches; every entry of ``metrics`` has one row a step (see `make_step`). `ts` is consumed.
    Once a step is refused as non-finite, the rest of the epoch leaves `ts` as it was: the
    returned state is the one before the first failing step. The guard runs once at the end of the
    scan, and each step only when that finds a non-finite value (`_Scan`; ``guard="step"``: always).

    With a `mesh` (`fnn.parallel`), each mini-batch is split over its ``"batch"`` axis and `ts`
    comes back replicated; pass `ts`, `x` and `t` replicated on the mesh (`parallel.replicate`).
    """
    def make_run(scan, step):
        def epoch(ts: TrainState, x: Array, t: Array, key: Array):
            N = x.shape[0]
            nb = N // batch_size if num_batches is None else num_batches
            perm_key, step_key = jax.random.split(key)
            order = jax.random.permutation(perm_key, N)[: nb * batch_size]
            batches = order.reshape(nb, batch_size)  # (nb, B) sample indices
            return scan(step, ts, batches, jax.random.split(step_key, nb),
                        lambda idx: parallel.shard_batch((x[idx], t[idx]), mesh))  # as is without mesh
        return epoch

    return _Scan("make_epoch", make_run, _plain_step(model, optimizer, grad), _guarded_step(model, optimizer, grad),
                 mesh, guard)


def make_steps(model: Model, optimizer: optax.GradientTransformation, *, grad: str = "autodiff",
               mesh: Mesh | None = None, guard: str = "end"):
    """A jitted ``run(ts, xs, ts_, key) -> (ts, metrics)``: the step over mini-batches in order.

    ``xs[i], ts_[i]`` is step i's mini-batch (xs (nb, B, ...)); the model state (an LM's recurrent
    carry) flows from step to step; step i's key is ``jax.random.split(key, nb)[i]``. Everything
    else is `make_epoch`'s: one `lax.scan`, `ts` consumed, the NaN guard, the metrics.
    """
    def make_run(scan, step):
        def run(ts: TrainState, xs: Array, ys: Array, key: Array):
            return scan(step, ts, (xs, ys), jax.random.split(key, xs.shape[0]),
                        lambda batch: parallel.shard_batch(batch, mesh))
        return run

    return _Scan("make_steps", make_run, _plain_step(model, optimizer, grad), _guarded_step(model, optimizer, grad),
                 mesh, guard)


def make_evaluate(model: Model, *, batch_size: int = 1000, mesh: Mesh | None = None, check: bool = True):
    """``evaluate(params, state, x, t) -> {"loss", "accuracy"}`` over a whole data set, jitted.

    Runs `model.apply` (eval mode) in batches of `batch_size` under one `lax.scan`; the last batch
    is padded and the padding masked out. Scores (N, ..., C) with labels (N, ...) or one-hot: the
    loss and accuracy average over every position. A model with its own ``evaluate`` (a seq2seq
    model's exact match of greedy answers, `fnn.models.Model`) gives each sample's loss and
    correctness instead, which are averaged the same way. With a `mesh` (`fnn.parallel`), each batch is
    split over its ``"batch"`` axis (the batch grows to a multiple of the devices, padded).

    Called eagerly, `evaluate` first checks its data on the host (`fnn._checks.check_set`: x finite,
    labels in [0, C) in their own dtype, one-hot rows that are distributions), since inside the
    compiled program a label 9 of 3 classes would be clamped and scored. Called under `jit`/`vmap`
    (inside `fnn.multi.fit_many`) the values are tracers and only shapes and dtypes are checked.
    ``check=False`` returns the bare jitted program, for a caller that checked the data once
    already (`fnn.train.fit` evaluates the same arrays after every epoch).
    """
    def evaluate(params: Params, state: State, x: Array, t: Array) -> dict[str, Array]:
        N = x.shape[0]
        B = min(batch_size, N)
        if mesh is not None:
            B = -(-B // parallel.num_shards(mesh)) * parallel.num_shards(mesh)
        nb = math.ceil(N / B)
        pad = nb * B - N
        xb = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(nb, B, *x.shape[1:])
        tb = jnp.pad(t, [(0, pad)] + [(0, 0)] * (t.ndim - 1)).reshape(nb, B, *t.shape[1:])
        mask = (jnp.arange(nb * B) < N).reshape(nb, B)

        def body(totals, inputs):
            xi, ti, mi = parallel.shard_batch(inputs, mesh)
            per_sample = (_per_sample(model, params, state, xi, ti) if model.evaluate is None
                          else model.evaluate(params, state, xi, ti))
            return (totals[0] + jnp.sum(per_sample[0] * mi),
                    totals[1] + jnp.sum(per_sample[1] * mi)), None

        zero = jnp.zeros((), jnp.result_type(x.dtype, jnp.float32) if model.evaluate is None else
                         jax.eval_shape(model.evaluate, params, state, xb[0], tb[0])[0].dtype)
        (loss_sum, correct_sum), _ = jax.lax.scan(body, (zero, zero), (xb, tb, mask))
        return {"loss": loss_sum / N, "accuracy": correct_sum / N}

    program = jax.jit(evaluate)
    if not check:
        return program

    def checked(params: Params, state: State, x: Array, t: Array) -> dict[str, Array]:
        xs = jax.ShapeDtypeStruct(jnp.shape(x), jax.dtypes.canonicalize_dtype(jnp.result_type(x)))
        if model.evaluate is not None:  # the model's own rule checks x's and t's shapes: trace it
            check_set("evaluate", "", x, t, ids=True)
            jax.eval_shape(model.evaluate, params, state, xs, t)
        else:
            scores = jax.eval_shape(lambda p, s, xi: model.apply(p, s, xi)[0], params, state, xs)
            check_set("evaluate", "", x, t, scores)
        return program(params, state, x, t)

    return checked


def _per_sample(model: Model, params: Params, state: State, x: Array, t: Array) -> tuple[Array, Array]:
    """A classifier's ``(loss (B,), correct (B,))``: cross-entropy and argmax == label of
    `model.apply`'s scores, averaged over every position of a sample."""
    scores, _ = model.apply(params, state, x, train=False)
    logp = F.log_softmax(scores.astype(jnp.float32) if scores.dtype.itemsize < 4 else scores)
    one_hot = t.shape == scores.shape
    nll = -jnp.sum(t * logp, -1) if one_hot else -jnp.take_along_axis(logp, t[..., None], axis=-1)[..., 0]
    labels = jnp.argmax(t, -1) if one_hot else t
    correct = (jnp.argmax(scores, -1) == labels).astype(logp.dtype)
    return nll.reshape(x.shape[0], -1).mean(1), correct.reshape(x.shape[0], -1).mean(1)

"""Training: one jitted step for every model, an epoch as one compiled program, and `fit`.

The book's training loop (DLFS1 §4.5.2, ``train_neuralnet.py``; ``common/trainer.py``) made pure:

    step(ts, (x, t), key) -> (ts, {"loss": loss})

`ts` is a `TrainState` (params, model state, optimizer state). The gradient comes from
``grad="autodiff"`` (``jax.value_and_grad`` of ``model.loss``) or ``grad="manual"`` (the book's
backprop, ``model.manual_grad``); the optimizer is any optax ``GradientTransformation``.

An epoch shuffles the training set and runs one `lax.scan` over its mini-batches inside a single
jitted call, with the train state's buffers donated: no Python loop and no host round trip per step.
The mini-batches of an epoch are drawn without replacement and the last ``N % batch_size`` samples of
the shuffled order wait for the next epoch (the book draws each batch independently with
``np.random.choice``; an epoch here sees every sample at most once).

Reliability: a step whose loss, gradient or new parameters are not finite is not applied (the guard
is a `jnp.where` inside the compiled step, flags come back with the epoch's losses, no extra host
sync) and `fit` raises `FloatingPointError` naming the step, the leaf and the last checkpoint.
`fit(..., checkpoint_dir=...)` writes checkpoints (`fnn.checkpoint`) that ``resume=True`` continues
bit for bit: epoch e's randomness is ``fold_in(run_key, e)``, a function of the seed and e only.

Several devices: ``fit(..., devices=4)`` runs the same epoch with each mini-batch split over the
devices and the train state copied on each (`fnn.parallel`, docs/PARALLEL.md). The argument checks,
the run's records and its checkpoint writing live in `fnn._fit_support`.
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.sharding import Mesh
from tqdm.auto import tqdm

from fnn import _fit_support as support
from fnn import checkpoint, parallel
from fnn import functions as F
from fnn._fit_support import check_data  # public here: fnn.train.check_data
from fnn.models._model import Model, Params, State

GRADS = ("autodiff", "manual")


class TrainState(NamedTuple):
    """Everything a training run carries from step to step."""

    params: Params      # the model's trainable pytree
    state: State        # the model's non-trained state ({} for most models)
    opt_state: Any      # the optimizer's state


def init_train_state(model: Model, optimizer: optax.GradientTransformation, key: Array) -> TrainState:
    """Initialise a model's parameters and state, and the optimizer's state for them."""
    params, state = model.init(key)
    return TrainState(params, state, optimizer.init(params))


def value_and_grad(model: Model, grad: str = "autodiff") -> Callable[..., tuple[Array, Params, State]]:
    """``f(params, state, x, t, *, key) -> (loss, grads, state)`` by the chosen gradient path."""
    if grad == "manual":
        return model.manual_grad
    if grad != "autodiff":
        raise ValueError(f"value_and_grad: grad is {grad!r}, expected one of {GRADS}")
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


def _guarded_step(model: Model, optimizer: optax.GradientTransformation, grad: str):
    """``step(ts, batch, key, halted)``: `make_step`'s step, which also refuses when `halted`."""
    loss_and_grads = value_and_grad(model, grad)

    def step(ts: TrainState, batch: tuple[Array, Array], key: Array, halted: Array):
        x, t = batch
        loss, grads, state = loss_and_grads(ts.params, ts.state, x, t, key=key)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        new = TrainState(optax.apply_updates(ts.params, updates), state, opt_state)
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


def make_epoch(model: Model, optimizer: optax.GradientTransformation, *, batch_size: int,
               grad: str = "autodiff", num_batches: int | None = None, mesh: Mesh | None = None):
    """A jitted ``epoch(ts, x, t, key) -> (ts, metrics)`` over the whole training set (x, t).

    Shuffles with `key`, then scans `step` over ``num_batches`` (default ``N // batch_size``)
    mini-batches; every entry of ``metrics`` has one row a step (see `make_step`). `ts` is donated.
    Once a step is refused as non-finite, the rest of the epoch leaves `ts` as it was: the
    returned state is the one before the first failing step.

    With a `mesh` (`fnn.parallel`), each mini-batch is split over its ``"batch"`` axis and `ts`
    comes back replicated; pass `ts`, `x` and `t` replicated on the mesh (`parallel.replicate`).
    """
    step = _guarded_step(model, optimizer, grad)

    def epoch(ts: TrainState, x: Array, t: Array, key: Array):
        N = x.shape[0]
        nb = N // batch_size if num_batches is None else num_batches
        perm_key, step_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, N)[: nb * batch_size]
        batches = order.reshape(nb, batch_size)  # (nb, B) sample indices
        keys = jax.random.split(step_key, nb)

        def body(carry, inputs):
            ts, halted = carry
            idx, k = inputs
            batch = parallel.shard_batch((x[idx], t[idx]), mesh)  # as is when mesh is None
            new, metrics = step(ts, batch, k, halted)
            return (new, halted | ~metrics["finite"]), metrics

        (ts, _), metrics = jax.lax.scan(body, (ts, jnp.zeros((), bool)), (batches, keys))
        return ts, metrics

    if mesh is None:
        return jax.jit(epoch, donate_argnums=0)
    return jax.jit(epoch, donate_argnums=0, out_shardings=parallel.replicated(mesh))


def make_evaluate(model: Model, *, batch_size: int = 1000, mesh: Mesh | None = None):
    """A jitted ``evaluate(params, state, x, t) -> {"loss", "accuracy"}`` over a whole data set.

    Runs `model.apply` (eval mode) in batches of `batch_size` under one `lax.scan`; the last batch
    is padded and the padding masked out. Scores (N, ..., C) with labels (N, ...) or one-hot: the
    loss and accuracy average over every position. With a `mesh` (`fnn.parallel`), each batch is
    split over its ``"batch"`` axis (the batch grows to a multiple of the devices, padded).
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
            scores, _ = model.apply(params, state, xi, train=False)
            logp = F.log_softmax(scores.astype(jnp.float32) if scores.dtype.itemsize < 4 else scores)
            one_hot = ti.shape == scores.shape
            nll = -jnp.sum(ti * logp, -1) if one_hot else -jnp.take_along_axis(
                logp, ti[..., None], axis=-1)[..., 0]
            labels = jnp.argmax(ti, -1) if one_hot else ti
            correct = (jnp.argmax(scores, -1) == labels).astype(logp.dtype)
            per_sample = nll.reshape(B, -1).mean(1), correct.reshape(B, -1).mean(1)
            return (totals[0] + jnp.sum(per_sample[0] * mi),
                    totals[1] + jnp.sum(per_sample[1] * mi)), None

        zero = jnp.zeros((), jnp.result_type(x.dtype, jnp.float32))
        (loss_sum, correct_sum), _ = jax.lax.scan(body, (zero, zero), (xb, tb, mask))
        return {"loss": loss_sum / N, "accuracy": correct_sum / N}

    return jax.jit(evaluate)


def fit(model: Model, optimizer: optax.GradientTransformation, data, *, key: Array,
        epochs: int | None = None, steps: int | None = None, batch_size: int = 100,
        grad: str = "autodiff", eval_batch_size: int = 1000, progress: bool = True,
        train_state: TrainState | None = None, desc: str | None = None,
        checkpoint_dir: str | os.PathLike | None = None, every: int = 1, keep: int = 3,
        resume: bool = False, devices: int | Sequence[jax.Device] | Mesh | None = None):
    """Train `model` on ``data = ((x_train, t_train), (x_test, t_test))`` (DLFS1 §4.5.2–4.5.3).

    Give `epochs`, or `steps` (the book counts iterations: ``steps=10000`` with batch 100 on
    60,000 samples is 16 epochs and 400 steps). After every epoch the train and test sets are
    evaluated (the book's "train acc, test acc" lines), shown on a tqdm bar.

    Returns ``(train_state, history)``; history holds per-epoch ``epoch, step, train_loss,
    train_acc, test_loss, test_acc`` lists, every step's loss in ``step_loss``, and ``seconds``
    (training only, evaluation excluded, first-epoch compile included) and ``eval_seconds``.
    Pass `train_state` to continue a run instead of initialising a new one.

    Randomness: `key` is split once into an initialisation key and a run key; epoch ``e`` (1, 2, ...)
    shuffles and draws dropout masks with ``fold_in(run_key, e)``, so any epoch's batches depend on
    the seed and the epoch number only, and a resumed run draws exactly what the uninterrupted run
    would have.

    Checkpoints (`fnn.checkpoint`): with `checkpoint_dir`, the train state, the key, the step and
    the history are written atomically every `every` epochs and after the last one, keeping the
    newest `keep`; Ctrl-C (KeyboardInterrupt) finishes the epoch in flight, writes a checkpoint
    and re-raises. ``resume=True`` continues from the newest checkpoint that verifies (a damaged
    newer one is skipped with a warning) and gives bit for bit the parameters an uninterrupted run
    would; with no checkpoint there yet it starts afresh. Settings that would change the run
    (model, batch size, gradient path, training-set size) must match the checkpoint's.

    Devices (`fnn.parallel`, docs/PARALLEL.md): ``devices=None`` trains on JAX's default device.
    A count n (the first n of `jax.devices()`), a list of devices or a `jax.sharding.Mesh` with a
    ``"batch"`` axis runs the same step data-parallel: each mini-batch is split over the devices
    (`batch_size` must be a multiple of their number), the train state and the data are copied to
    every device, and the result equals the one-device run up to float rounding. Evaluation is
    split the same way; checkpoints are gathered to the host, so a run may resume on other devices.

    Raises:
      FloatingPointError: a step's loss, gradient or updated parameter was not finite. The update
        was not applied (`make_step`); the message names the step, the first non-finite leaf and
        the last checkpoint written; the error's ``train_state`` attribute holds the parameters of
        the step before.
    """
    (x_train, t_train), (x_test, t_test) = support.unpack_data(data)
    check_data("fit", "train", x_train, t_train)
    check_data("fit", "test", x_test, t_test)
    N = x_train.shape[0]
    steps = support.check_arguments(
        N, grads=GRADS, grad=grad, batch_size=batch_size, epochs=epochs, steps=steps, every=every,
        keep=keep, eval_batch_size=eval_batch_size, resume=resume, checkpoint_dir=checkpoint_dir,
        train_state=train_state, key=key)
    per_epoch = N // batch_size
    mesh = parallel.batch_mesh(devices)  # None: one device, no sharding
    parallel.check_batch_size("fit", "batch_size", batch_size, mesh)

    x_train, t_train, x_test, t_test = (jnp.asarray(a) for a in (x_train, t_train, x_test, t_test))
    config = {"model": model.name, "batch_size": batch_size, "grad": grad, "train_size": int(N)}
    ckpt = checkpoint.latest(checkpoint_dir) if resume else None
    if ckpt is not None:
        support.check_resume(ckpt, config)
        saved_key = checkpoint.restore_key(ckpt)
        if saved_key is not None and not support.same_key(saved_key, key):
            warnings.warn(f"fit: key differs from the one of the run in {ckpt.path}; resuming "
                          f"with the checkpoint's key", stacklevel=2)
            key = saved_key
    init_key, run_key = jax.random.split(key)
    if ckpt is not None or train_state is not None:  # the shapes a TrainState must have
        template = jax.eval_shape(lambda k: init_train_state(model, optimizer, k), init_key)
    if ckpt is not None:
        ts = checkpoint.restore(ckpt, template)
    elif train_state is not None:
        support.check_train_state(model, train_state, template)
        ts = train_state
    else:
        ts = init_train_state(model, optimizer, init_key)
    support.check_labels_against_model(model, ts, x_train, t_train, "train")
    support.check_labels_against_model(model, ts, x_test, t_test, "test")
    if mesh is not None:  # a copy of the state, the data and the key on every device
        ts, x_train, t_train, x_test, t_test, run_key = parallel.replicate(
            (ts, x_train, t_train, x_test, t_test, run_key), mesh)
    leaf_names = [checkpoint.leaf_name(p)
                  for p, _ in jax.tree_util.tree_flatten_with_path(ts.params)[0]]

    evaluate = _cached_evaluate(model, batch_size=eval_batch_size, mesh=mesh)
    run = support.Run(checkpoint_dir, keep, key, config)
    if ckpt is not None:
        run.restore(ckpt)
    n_epochs = math.ceil(steps / per_epoch)
    first = run.epoch + 1
    bar = tqdm(range(first, n_epochs + 1), initial=first - 1, total=n_epochs,
               desc=desc or model.name, unit="epoch", disable=not progress)

    def finish(out, epoch: int, nb: int, t0: float) -> TrainState:
        """The epoch's one host transfer, the NaN check, evaluation, history."""
        new_ts, metrics = out
        losses, finite, finite_grads = parallel.to_host(
            (metrics["loss"], metrics["finite"], metrics["finite_grads"]))
        losses = np.asarray(losses)
        run.train_seconds += time.perf_counter() - t0
        if not np.all(finite):
            i = int(np.argmin(finite))
            raise support.non_finite(losses[i], finite_grads[i], leaf_names,
                              step=run.done + i + 1, epoch=epoch, ckpt=run.last_path, ts=new_ts)
        t0 = time.perf_counter()
        tr, te = parallel.to_host((evaluate(new_ts.params, new_ts.state, x_train, t_train),
                                 evaluate(new_ts.params, new_ts.state, x_test, t_test)))
        run.eval_seconds += time.perf_counter() - t0
        run.record(epoch, run.done + nb, losses, tr, te)  # the epoch's one change to `run`
        bar.set_postfix(loss=f"{losses.mean():.4f}", train_acc=f"{tr['accuracy']:.4f}",
                        test_acc=f"{te['accuracy']:.4f}")
        return new_ts

    pending = None
    try:
        for epoch in bar:
            nb = min(per_epoch, steps - run.done)
            epoch_fn = _cached_epoch(model, optimizer, batch_size=batch_size, grad=grad,
                                     num_batches=nb, mesh=mesh)
            t0 = time.perf_counter()
            out = epoch_fn(ts, x_train, t_train, jax.random.fold_in(run_key, epoch))
            ts, pending = None, (out, epoch, nb, t0)  # ts was donated to the epoch
            ts, pending = finish(*pending), None
            if checkpoint_dir is not None and (epoch % every == 0 or epoch == n_epochs):
                run.save(ts)
    except KeyboardInterrupt:
        if checkpoint_dir is not None:
            if pending is not None:  # the epoch in flight: wait for it, then keep it
                out, epoch, _, _ = pending
                ts = out[0] if run.epoch == epoch else finish(*pending)
            if ts is not None and run.saved_epoch != run.epoch and not support.deleted(ts):
                path = run.save(ts)
                warnings.warn(f"fit: interrupted after epoch {run.epoch}; wrote {path} (continue "
                              f"with resume=True)", stacklevel=2)
        raise
    return ts, run.history_out()


# fit compiles an epoch once per (model, optimizer, batch size, ...): a second fit with the same
# model and optimizer objects (a resumed run, a test) reuses the compiled program.
_epoch_cache = functools.lru_cache(maxsize=32)(make_epoch)
_evaluate_cache = functools.lru_cache(maxsize=32)(make_evaluate)


def _cached_epoch(model, optimizer, **kw):
    try:
        hash((model, optimizer))
    except TypeError:  # a model or optimizer holding unhashable things: compile anew
        return make_epoch(model, optimizer, **kw)
    return _epoch_cache(model, optimizer, **kw)


def _cached_evaluate(model, **kw):
    try:
        hash(model)
    except TypeError:
        return make_evaluate(model, **kw)
    return _evaluate_cache(model, **kw)

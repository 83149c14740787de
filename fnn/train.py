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
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from tqdm.auto import tqdm

from fnn import checkpoint
from fnn import functions as F
from fnn._checks import check_floating, check_labels
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

    NaN/inf guard: when the loss or a gradient is not finite, the step hands back `ts` unchanged
    (params, model state and optimizer state), so nothing is overwritten with NaN. ``metrics``
    says what happened, without a host round trip: ``loss``, ``finite`` (a bool, False when the
    update was refused) and ``finite_grads`` (one bool per leaf of ``ts.params``, in tree order).
    The check is one fused reduction per gradient leaf and one `lax.cond`, not a copy of the state.
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
        finite_grads = _all_finite(grads)
        ok = jnp.isfinite(loss) & jnp.all(finite_grads)

        def update(ts):
            updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
            return TrainState(optax.apply_updates(ts.params, updates), state, opt_state)

        new = jax.lax.cond(ok & ~halted, update, lambda ts: ts, ts)
        return new, {"loss": loss, "finite": ok, "finite_grads": finite_grads}

    return step


def _all_finite(tree) -> Array:
    """One bool per leaf of `tree` (tree order): are all of its elements finite?  (L,)"""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.ones((0,), bool)
    return jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])


def make_epoch(model: Model, optimizer: optax.GradientTransformation, *, batch_size: int,
               grad: str = "autodiff", num_batches: int | None = None):
    """A jitted ``epoch(ts, x, t, key) -> (ts, metrics)`` over the whole training set (x, t).

    Shuffles with `key`, then scans `step` over ``num_batches`` (default ``N // batch_size``)
    mini-batches; every entry of ``metrics`` has one row a step (see `make_step`). `ts` is donated.
    Once a step is refused as non-finite, the rest of the epoch leaves `ts` as it was: the
    returned state is the one before the first failing step.
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
            new, metrics = step(ts, (x[idx], t[idx]), k, halted)
            return (new, halted | ~metrics["finite"]), metrics

        (ts, _), metrics = jax.lax.scan(body, (ts, jnp.zeros((), bool)), (batches, keys))
        return ts, metrics

    return jax.jit(epoch, donate_argnums=0)


def make_evaluate(model: Model, *, batch_size: int = 1000):
    """A jitted ``evaluate(params, state, x, t) -> {"loss", "accuracy"}`` over a whole data set.

    Runs `model.apply` (eval mode) in batches of `batch_size` under one `lax.scan`; the last batch
    is padded and the padding masked out. Scores (N, ..., C) with labels (N, ...) or one-hot: the
    loss and accuracy average over every position.
    """
    def evaluate(params: Params, state: State, x: Array, t: Array) -> dict[str, Array]:
        N = x.shape[0]
        B = min(batch_size, N)
        nb = math.ceil(N / B)
        pad = nb * B - N
        xb = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(nb, B, *x.shape[1:])
        tb = jnp.pad(t, [(0, pad)] + [(0, 0)] * (t.ndim - 1)).reshape(nb, B, *t.shape[1:])
        mask = (jnp.arange(nb * B) < N).reshape(nb, B)

        def body(totals, inputs):
            xi, ti, mi = inputs
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


def check_data(fn: str, name: str, x, t) -> None:
    """Validate a data set (x, t): floating x with a sample axis, labels that fit `t`."""
    for arr, arg in ((x, f"{name} x"), (t, f"{name} t")):
        if not hasattr(arr, "shape"):
            raise TypeError(f"{fn}: {arg} is a {type(arr).__name__}, expected an array")
    check_floating(fn, f"{name} x", x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} x has shape {tuple(x.shape)}, expected (N, ...) with N >= 1")
    if t.shape[:1] != x.shape[:1]:
        raise ValueError(f"{fn}: {name} t has {t.shape[0] if t.ndim else 'no'} samples (shape "
                         f"{tuple(t.shape)}), expected {x.shape[0]} to match x {tuple(x.shape)}")


def fit(model: Model, optimizer: optax.GradientTransformation, data, *, key: Array,
        epochs: int | None = None, steps: int | None = None, batch_size: int = 100,
        grad: str = "autodiff", eval_batch_size: int = 1000, progress: bool = True,
        train_state: TrainState | None = None, desc: str | None = None,
        checkpoint_dir: str | os.PathLike | None = None, every: int = 1, keep: int = 3,
        resume: bool = False):
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

    Raises:
      FloatingPointError: a step's loss, gradient or updated parameter was not finite. The update
        was not applied (`make_step`); the message names the step, the first non-finite leaf and
        the last checkpoint written; the error's ``train_state`` attribute holds the parameters of
        the step before.
    """
    (x_train, t_train), (x_test, t_test) = _unpack_data(data)
    check_data("fit", "train", x_train, t_train)
    check_data("fit", "test", x_test, t_test)
    if grad not in GRADS:
        raise ValueError(f"fit: grad is {grad!r}, expected one of {GRADS}")
    if not _positive_int(batch_size):
        raise ValueError(f"fit: batch_size is {batch_size!r}, expected a positive integer")
    N = x_train.shape[0]
    if batch_size > N:
        raise ValueError(f"fit: batch_size is {batch_size}, larger than the training set "
                         f"({N} samples)")
    per_epoch = N // batch_size
    if (epochs is None) == (steps is None):
        raise ValueError(f"fit: give exactly one of epochs and steps (got epochs={epochs!r}, "
                         f"steps={steps!r})")
    if steps is None:
        if not _positive_int(epochs):
            raise ValueError(f"fit: epochs is {epochs!r}, expected a positive integer")
        steps = epochs * per_epoch
    elif not _positive_int(steps):
        raise ValueError(f"fit: steps is {steps!r}, expected a positive integer")
    for name, value in (("every", every), ("keep", keep), ("eval_batch_size", eval_batch_size)):
        if not _positive_int(value):
            raise ValueError(f"fit: {name} is {value!r}, expected a positive integer")
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume is True but checkpoint_dir is None, expected the folder "
                         "of the checkpoints to resume from")
    if resume and train_state is not None:
        raise ValueError("fit: got both resume=True and train_state, expected one of them "
                         "(where should the run continue from?)")
    if not (hasattr(key, "dtype") and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                       or key.shape == (2,) and key.dtype == jnp.uint32)):
        raise TypeError(f"fit: key is {type(key).__name__} {getattr(key, 'dtype', '')}"
                        f"{tuple(getattr(key, 'shape', ()))}, expected a jax.random key "
                        f"(jax.random.key(seed))")

    x_train, t_train, x_test, t_test = (jnp.asarray(a) for a in (x_train, t_train, x_test, t_test))
    config = {"model": model.name, "batch_size": batch_size, "grad": grad, "train_size": int(N)}
    ckpt = checkpoint.latest(checkpoint_dir) if resume else None
    if ckpt is not None:
        _check_resume(ckpt, config)
        saved_key = checkpoint.restore_key(ckpt)
        if saved_key is not None and not _same_key(saved_key, key):
            warnings.warn(f"fit: key differs from the one of the run in {ckpt.path}; resuming "
                          f"with the checkpoint's key", stacklevel=2)
            key = saved_key
    init_key, run_key = jax.random.split(key)
    if ckpt is not None:
        template = jax.eval_shape(lambda k: init_train_state(model, optimizer, k), init_key)
        ts = checkpoint.restore(ckpt, template)
    elif train_state is not None:
        _check_train_state(model, optimizer, train_state, init_key)
        ts = train_state
    else:
        ts = init_train_state(model, optimizer, init_key)
    _check_labels_against_model(model, ts, x_train, t_train, "train")
    _check_labels_against_model(model, ts, x_test, t_test, "test")
    leaf_names = [checkpoint.leaf_name(p)
                  for p, _ in jax.tree_util.tree_flatten_with_path(ts.params)[0]]

    evaluate = _cached_evaluate(model, batch_size=eval_batch_size)
    run = _Run(checkpoint_dir, keep, key, config)
    if ckpt is not None:
        run.restore(ckpt)
    n_epochs = math.ceil(steps / per_epoch)
    first = run.epoch + 1
    bar = tqdm(range(first, n_epochs + 1), initial=first - 1, total=n_epochs,
               desc=desc or model.name, unit="epoch", disable=not progress)

    def finish(out, epoch: int, nb: int, t0: float) -> TrainState:
        """The epoch's one host transfer, the NaN check, evaluation, history."""
        new_ts, metrics = out
        losses, finite, finite_grads = jax.device_get(
            (metrics["loss"], metrics["finite"], metrics["finite_grads"]))
        losses = np.asarray(losses)
        run.train_seconds += time.perf_counter() - t0
        if not np.all(finite):
            i = int(np.argmin(finite))
            raise _non_finite(losses[i], finite_grads[i], leaf_names,
                              step=run.done + i + 1, epoch=epoch, ckpt=run.last_path, ts=new_ts)
        t0 = time.perf_counter()
        tr, te = jax.device_get((evaluate(new_ts.params, new_ts.state, x_train, t_train),
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
                                     num_batches=nb)
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
            if ts is not None and run.saved_epoch != run.epoch and not _deleted(ts):
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


class _Run:
    """What `fit` accumulates (history, step count, timing) and how it writes checkpoints."""

    def __init__(self, directory, keep: int, key: Array, config: dict):
        self.directory, self.keep, self.key, self.config = directory, keep, key, config
        self.history: dict[str, list] = {k: [] for k in ("epoch", "step", "train_loss", "train_acc",
                                                          "test_loss", "test_acc")}
        self.step_loss: list[float] = []
        self.epoch = self.done = 0
        self.saved_epoch = None
        self.last_path = None
        self.train_seconds = self.eval_seconds = 0.0

    def restore(self, ckpt: checkpoint.Checkpoint) -> None:
        h = ckpt.meta["history"]
        for k in self.history:
            self.history[k] = list(h[k])
        self.step_loss = list(h["step_loss"])
        self.train_seconds, self.eval_seconds = h["seconds"], h["eval_seconds"]
        self.epoch = self.saved_epoch = ckpt.meta["epoch"]
        self.done = ckpt.meta["step"]
        self.last_path = ckpt.path

    def record(self, epoch: int, done: int, losses: np.ndarray, tr: dict, te: dict) -> None:
        self.epoch, self.done = epoch, done
        self.step_loss.extend(losses.tolist())
        for k, v in (("epoch", epoch), ("step", self.done), ("train_loss", float(losses.mean())),
                     ("train_acc", float(tr["accuracy"])), ("test_loss", float(te["loss"])),
                     ("test_acc", float(te["accuracy"]))):
            self.history[k].append(v)

    def history_out(self) -> dict:
        return {**{k: list(v) for k, v in self.history.items()}, "step_loss": list(self.step_loss),
                "seconds": self.train_seconds, "eval_seconds": self.eval_seconds}

    def save(self, ts: TrainState):
        self.last_path = checkpoint.save(self.directory, ts, epoch=self.epoch, step=self.done,
                                         key=self.key, history=self.history_out(),
                                         config=self.config, keep=self.keep)
        self.saved_epoch = self.epoch
        return self.last_path


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _same_key(a, b) -> bool:
    def data(k):
        return np.asarray(jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k)
    da, db = data(a), data(b)
    return da.shape == db.shape and bool(np.all(da == db))


def _deleted(tree) -> bool:
    return any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree_util.tree_leaves(tree))


def _check_resume(ckpt: checkpoint.Checkpoint, config: dict) -> None:
    saved = ckpt.meta.get("config", {})
    for name, value in config.items():
        if name in saved and saved[name] != value:
            raise checkpoint.CheckpointError(
                f"fit: resume: {name} is {value!r}, but the run in {ckpt.path} used {saved[name]!r}; "
                f"expected the same {name} (or a fresh checkpoint_dir)")


def _non_finite(loss, finite_grads, leaf_names, *, step: int, epoch: int, ckpt,
                ts: TrainState) -> FloatingPointError:
    """The error `fit` raises when step `step` was refused as non-finite (see `make_step`)."""
    bad_grad = [n for n, ok in zip(leaf_names, finite_grads, strict=True) if not ok]
    leaf = (bad_grad or [None])[0]
    if not np.isfinite(loss):
        what = f"the loss became {loss}"
        where = f"; first non-finite gradient: {leaf}" if bad_grad else ""
    else:
        what, where = f"the gradient of {leaf} became non-finite (loss {loss:.6g})", ""
    err = FloatingPointError(
        f"fit: {what} at step {step} (epoch {epoch}){where}. The step was not applied: the "
        f"parameters are those after step {step - 1}. Last good checkpoint: "
        f"{ckpt if ckpt is not None else 'none (pass checkpoint_dir= to write them)'}. "
        f"Lower the learning rate or check the data")
    err.step, err.epoch, err.leaf, err.checkpoint, err.train_state = step, epoch, leaf, ckpt, ts
    return err


def _unpack_data(data):
    """``((x_train, t_train), (x_test, t_test))`` or a clear error saying what `data` is instead."""
    def describe(d):
        if isinstance(d, (tuple, list)):
            return f"a {type(d).__name__} of {len(d)} ({', '.join(describe(e) for e in d)})"
        return f"{type(d).__name__}{tuple(d.shape) if hasattr(d, 'shape') else ''}"
    ok = (isinstance(data, (tuple, list)) and len(data) == 2
          and all(isinstance(d, (tuple, list)) and len(d) == 2 for d in data))
    if not ok:
        raise TypeError(f"fit: data is {describe(data)}, expected ((x_train, t_train), (x_test, t_test))")
    return data


def _check_train_state(model: Model, optimizer, ts, key: Array) -> None:
    """`ts` must have the structure, shapes and dtypes that `model.init` and `optimizer.init` give."""
    if not isinstance(ts, TrainState):
        raise TypeError(f"fit: train_state is a {type(ts).__name__}, expected a TrainState "
                        f"(init_train_state or a previous fit's result)")
    want = jax.eval_shape(lambda k: init_train_state(model, optimizer, k), key)
    for part in ("params", "state", "opt_state"):
        got_flat, got_def = jax.tree_util.tree_flatten_with_path(getattr(ts, part))
        want_flat, want_def = jax.tree_util.tree_flatten_with_path(getattr(want, part))
        got_names = [checkpoint.leaf_name(p) for p, _ in got_flat]
        want_names = [checkpoint.leaf_name(p) for p, _ in want_flat]
        if got_names != want_names or got_def != want_def:
            raise ValueError(f"fit: train_state.{part} has leaves {got_names}, expected "
                             f"{want_names} (from {model.name}'s init and the optimizer)")
        for name, (_, g), (_, w) in zip(want_names, got_flat, want_flat, strict=True):
            if tuple(np.shape(g)) != tuple(w.shape) or jnp.result_type(g) != w.dtype:
                raise ValueError(f"fit: train_state.{part} {name} is {jnp.result_type(g)}"
                                 f"{list(np.shape(g))}, expected {w.dtype}{list(w.shape)}")


def _check_labels_against_model(model: Model, ts: TrainState, x: Array, t: Array,
                                name: str) -> None:
    """Trace the model on x's shape (no compute) and check that the labels t fit its scores."""
    scores = jax.eval_shape(lambda p, s, xi: model.apply(p, s, xi)[0], ts.params, ts.state, x)
    check_labels(f"fit ({name} data)", t, jax.ShapeDtypeStruct(scores.shape, scores.dtype))

"""`fit`: train a model on a data set, epoch after epoch, with evaluation, checkpoints and devices.

The book's ``Trainer`` (DLFS1 §4.5.2–4.5.3, ``common/trainer.py``) around the pure step of
`fnn.step`: each epoch is one jitted call of `fnn.step.make_epoch` (one `lax.scan` over the
shuffled mini-batches), followed by one host transfer of the epoch's losses, an evaluation of the
train and test sets (`fnn.step.make_evaluate`) and, if asked, a checkpoint. This module owns what
happens around that loop: the argument checks, where the run starts (a checkpoint, a given train
state, or a fresh initialisation), the history, the checkpoint writing and the errors.

Randomness: `key` is split once into an initialisation key and a run key; epoch ``e`` (1, 2, ...)
shuffles and draws dropout masks with ``fold_in(run_key, e)``, so any epoch's batches depend on the
seed and the epoch number only, and a resumed run draws exactly what the uninterrupted run would.

Checkpoints (`fnn.checkpoint`): with ``checkpoints=Checkpoints(folder, every, keep, resume)`` (or
just the folder), the train state, the key, the step and the history are written atomically every
`every` epochs and after the last one, keeping the newest `keep`; Ctrl-C (KeyboardInterrupt)
finishes the epoch in flight, writes a checkpoint and re-raises. ``resume=True`` continues from the
newest checkpoint that verifies (a damaged newer one is skipped with a warning) and gives bit for
bit the parameters an uninterrupted run would; with no checkpoint there yet it starts afresh.
Settings that would change the run (model, batch size, gradient path, training-set size) must
match the checkpoint's.

Devices (`fnn.parallel`, docs/PARALLEL.md): ``devices=None`` trains on JAX's default device. A
count n (the first n of `jax.devices()`), a list of devices or a `jax.sharding.Mesh` with a
``"batch"`` axis runs the same step data-parallel: each mini-batch is split over the devices
(`batch_size` must be a multiple of their number), the train state and the data are copied to
every device, and the result equals the one-device run up to float rounding. Evaluation is split
the same way; checkpoints are gathered to the host, so a run may resume on other devices.

NaN/inf: a step whose loss or gradient is not finite is not applied (`fnn.step.make_step`); its
flags come back with the epoch's losses (no extra host sync) and `fit` raises
`FloatingPointError` naming the step, the leaf and the last checkpoint.
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.sharding import Mesh
from tqdm.auto import tqdm

from fnn import checkpoint, parallel
from fnn._checks import check_data, check_labels, check_positive_int
from fnn.models._model import Model
from fnn.step import GRADS, TrainState, init_train_state, make_epoch, make_evaluate


class Checkpoints(NamedTuple):
    """Where and how `fit` writes its checkpoints; ``fit(..., checkpoints="runs/a")`` means
    ``Checkpoints("runs/a")``: every epoch, the newest 3 kept, a fresh start."""

    dir: str | os.PathLike  # the folder, created if missing
    every: int = 1          # write after every `every`-th epoch (and after the last one)
    keep: int = 3           # how many of the newest checkpoints to keep
    resume: bool = False    # continue from the newest checkpoint in `dir` (a fresh start if none)


def fit(model: Model, optimizer: optax.GradientTransformation, data, *, key: Array,
        epochs: int | None = None, steps: int | None = None, batch_size: int = 100,
        grad: str = "autodiff", eval_batch_size: int = 1000, train_state: TrainState | None = None,
        checkpoints: Checkpoints | str | os.PathLike | None = None,
        devices: int | Sequence[jax.Device] | Mesh | None = None, progress: bool = True,
        desc: str | None = None) -> tuple[TrainState, dict]:
    """Train `model` on ``data = ((x_train, t_train), (x_test, t_test))`` (DLFS1 §4.5.2–4.5.3).

    Give `epochs`, or `steps` (the book counts iterations: ``steps=10000`` with batch 100 on
    60,000 samples is 16 epochs and 400 steps). After every epoch the train and test sets are
    evaluated (the book's "train acc, test acc" lines), shown on a tqdm bar. `train_state`
    continues a run instead of initialising a new one; `checkpoints` (a folder or `Checkpoints`)
    writes the run to disk and resumes it; `devices` splits each mini-batch over several devices
    (both: see the module docstring).

    Returns ``(train_state, history)``; history holds per-epoch ``epoch, step, train_loss,
    train_acc, test_loss, test_acc`` lists, every step's loss in ``step_loss``, and ``seconds``
    (training only, first-epoch compile included) and ``eval_seconds``.

    Raises:
      FloatingPointError: a step's loss or gradient was not finite. The update was not applied;
        the message names the step, the first non-finite leaf and the last checkpoint written;
        the error's ``train_state`` attribute holds the parameters of the step before.
    """
    (x, t), test = _check_data(data, ids=model.evaluate is not None)
    steps, batch_size, eval_batch_size, checkpoints = _check_arguments(
        x.shape[0], grad=grad, batch_size=batch_size, epochs=epochs, steps=steps, key=key,
        eval_batch_size=eval_batch_size, checkpoints=checkpoints, train_state=train_state)
    mesh = parallel.batch_mesh(devices)  # None: one device, no sharding
    parallel.check_batch_size("fit", "batch_size", batch_size, mesh)
    run = _Run(model, checkpoints, config={"model": model.name, "batch_size": batch_size,
                                           "grad": grad, "train_size": int(x.shape[0])}, key=key)
    ts, run_key = run.start(optimizer, train_state, sets={"train": (x, t), "test": test})
    sets = (ts, (x, t), test, run_key)  # on every device when there are several
    ts, (x, t), test, run_key = sets if mesh is None else parallel.replicate(sets, mesh)
    evaluate = _cached(make_evaluate, model, batch_size=eval_batch_size, mesh=mesh)
    run.evaluate = lambda ts: (evaluate(ts.params, ts.state, x, t), evaluate(ts.params, ts.state, *test))
    per_epoch = x.shape[0] // batch_size
    n_epochs = math.ceil(steps / per_epoch)
    run.bar = bar = tqdm(range(run.epoch + 1, n_epochs + 1), initial=run.epoch, total=n_epochs,
                         desc=desc or model.name, unit="epoch", disable=not progress)
    pending = None  # an epoch dispatched but not yet finished: what Ctrl-C must wait for
    try:
        for epoch in bar:
            nb = min(per_epoch, steps - run.done)
            epoch_fn = _cached(make_epoch, model, optimizer, batch_size=batch_size, grad=grad,
                               num_batches=nb, mesh=mesh)
            t0 = time.perf_counter()
            pending = (epoch_fn(ts, x, t, jax.random.fold_in(run_key, epoch)), epoch, nb, t0)
            ts = None  # donated to the epoch
            ts, pending = run.finish(*pending), None
            if checkpoints is not None and (epoch % checkpoints.every == 0 or epoch == n_epochs):
                run.save(ts)
    except KeyboardInterrupt:
        run.interrupted(ts, pending)
        raise
    return ts, run.history()


# ---------------------------------------------------------------------------------------------
# Checks of fit's arguments
# ---------------------------------------------------------------------------------------------


def _check_data(data, ids: bool = False):
    """``((x_train, t_train), (x_test, t_test))`` as jax arrays, each set checked, or a clear error;
    with `ids`, x holds integer ids (a model with its own ``evaluate``: seq2seq)."""
    def describe(d):
        if isinstance(d, (tuple, list)):
            return f"a {type(d).__name__} of {len(d)} ({', '.join(describe(e) for e in d)})"
        return f"{type(d).__name__}{tuple(d.shape) if hasattr(d, 'shape') else ''}"
    ok = (isinstance(data, (tuple, list)) and len(data) == 2
          and all(isinstance(d, (tuple, list)) and len(d) == 2 for d in data))
    if not ok:
        raise TypeError(f"fit: data is {describe(data)}, expected ((x_train, t_train), (x_test, t_test))")
    for name, (x, t) in zip(("train", "test"), data, strict=True):
        check_data("fit", name, x, t, ids=ids)
    return tuple((jnp.asarray(x), jnp.asarray(t)) for x, t in data)


def _check_arguments(N: int, *, grad, batch_size, epochs, steps, eval_batch_size, checkpoints,
                     train_state, key):
    """Validate `fit`'s settings for a training set of N samples.

    Returns ``(steps, batch_size, eval_batch_size, checkpoints)`` with Python ints and `checkpoints`
    as a `Checkpoints` (or None).
    """
    if grad not in GRADS:
        raise ValueError(f"fit: grad is {grad!r}, expected one of {GRADS}")
    batch_size = check_positive_int("fit", "batch_size", batch_size)
    if batch_size > N:
        raise ValueError(f"fit: batch_size is {batch_size}, larger than the training set ({N} samples)")
    if (epochs is None) == (steps is None):
        raise ValueError(f"fit: give exactly one of epochs and steps (got epochs={epochs!r}, "
                         f"steps={steps!r})")
    if steps is None:
        steps = check_positive_int("fit", "epochs", epochs) * (N // batch_size)
    steps = check_positive_int("fit", "steps", steps)
    eval_batch_size = check_positive_int("fit", "eval_batch_size", eval_batch_size)
    if checkpoints is not None and not isinstance(checkpoints, Checkpoints):
        checkpoints = Checkpoints(checkpoints)  # a folder: the defaults
    if checkpoints is not None:
        if not isinstance(checkpoints.dir, (str, os.PathLike)):
            raise TypeError(f"fit: checkpoints.dir is {checkpoints.dir!r}, expected the folder of the "
                            f"checkpoints (a str or path)")
        checkpoints = checkpoints._replace(
            every=check_positive_int("fit", "checkpoints.every", checkpoints.every),
            keep=check_positive_int("fit", "checkpoints.keep", checkpoints.keep))
        if checkpoints.resume and train_state is not None:
            raise ValueError("fit: got both checkpoints.resume=True and train_state, expected one "
                             "of them (where should the run continue from?)")
    if not (hasattr(key, "dtype") and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                       or key.shape == (2,) and key.dtype == jnp.uint32)):
        raise TypeError(f"fit: key is {type(key).__name__} {getattr(key, 'dtype', '')}"
                        f"{tuple(getattr(key, 'shape', ()))}, expected a jax.random key "
                        f"(jax.random.key(seed))")
    return steps, batch_size, eval_batch_size, checkpoints


def _check_train_state(model: Model, ts, template) -> None:
    """`ts` must have the structure, shapes and dtypes of `template` (the `jax.eval_shape` of
    ``init_train_state``)."""
    if not isinstance(ts, type(template)):
        raise TypeError(f"fit: train_state is a {type(ts).__name__}, expected a TrainState "
                        f"(init_train_state or a previous fit's result)")
    for part in ("params", "state", "opt_state"):
        got_flat, got_def = jax.tree_util.tree_flatten_with_path(getattr(ts, part))
        want_flat, want_def = jax.tree_util.tree_flatten_with_path(getattr(template, part))
        got_names = [checkpoint.leaf_name(p) for p, _ in got_flat]
        want_names = [checkpoint.leaf_name(p) for p, _ in want_flat]
        if got_names != want_names or got_def != want_def:
            raise ValueError(f"fit: train_state.{part} has leaves {got_names}, expected "
                             f"{want_names} (from {model.name}'s init and the optimizer)")
        for name, (_, g), (_, w) in zip(want_names, got_flat, want_flat, strict=True):
            if tuple(np.shape(g)) != tuple(w.shape) or jnp.result_type(g) != w.dtype:
                raise ValueError(f"fit: train_state.{part} {name} is {jnp.result_type(g)}"
                                 f"{list(np.shape(g))}, expected {w.dtype}{list(w.shape)}")


def _check_labels_against_model(model: Model, ts: TrainState, x: Array, t: Array, name: str) -> None:
    """Trace the model on x's shape (no compute) and check that the labels t fit its scores (a
    model with its own ``evaluate`` checks x and t itself: trace that)."""
    if model.evaluate is not None:
        jax.eval_shape(model.evaluate, ts.params, ts.state, x, t)
        return
    scores = jax.eval_shape(lambda p, s, xi: model.apply(p, s, xi)[0], ts.params, ts.state, x)
    check_labels(f"fit ({name} data)", t, jax.ShapeDtypeStruct(scores.shape, scores.dtype))


# ---------------------------------------------------------------------------------------------
# The run: where it starts, what it records after each epoch, how it writes checkpoints
# ---------------------------------------------------------------------------------------------


class _Run:
    """What one `fit` call keeps between epochs: history, step count, timing, checkpoints."""

    def __init__(self, model: Model, checkpoints: Checkpoints | None, config: dict, key: Array):
        self.model, self.checkpoints, self.config, self.key = model, checkpoints, config, key
        self.records: dict[str, list] = {k: [] for k in ("epoch", "step", "train_loss", "train_acc",
                                                          "test_loss", "test_acc", "step_loss")}
        self.epoch = self.done = 0
        self.saved_epoch = self.last_path = None
        self.train_seconds = self.eval_seconds = 0.0
        self.evaluate = self.bar = None  # set by fit once the data is where it trains
        self.leaf_names: list[str] = []

    def start(self, optimizer, train_state, sets: dict) -> tuple[TrainState, Array]:
        """``(ts, run_key)``: from the newest checkpoint (``resume``), `train_state`, or a new init.

        Restores the history of a resumed run, and checks that the labels of `sets` fit the model.
        """
        model, resume = self.model, self.checkpoints is not None and self.checkpoints.resume
        ckpt = checkpoint.latest(self.checkpoints.dir) if resume else None
        if ckpt is not None:
            self._restore(ckpt)
        init_key, run_key = jax.random.split(self.key)
        if ckpt is not None or train_state is not None:  # the shapes a TrainState must have
            template = jax.eval_shape(lambda k: init_train_state(model, optimizer, k), init_key)
        if ckpt is not None:
            ts = checkpoint.restore(ckpt, template)
        elif train_state is not None:
            _check_train_state(model, train_state, template)
            ts = train_state
        else:
            ts = init_train_state(model, optimizer, init_key)
        for name, (x, t) in sets.items():
            _check_labels_against_model(model, ts, x, t, name)
        self.leaf_names = [checkpoint.leaf_name(p)
                           for p, _ in jax.tree_util.tree_flatten_with_path(ts.params)[0]]
        return ts, run_key

    def _restore(self, ckpt: checkpoint.Checkpoint) -> None:
        """Continue the run of `ckpt`: its settings must be ours; its key and history become ours."""
        saved = ckpt.meta.get("config", {})
        for name, value in self.config.items():
            if name in saved and saved[name] != value:
                raise checkpoint.CheckpointError(
                    f"fit: resume: {name} is {value!r}, but the run in {ckpt.path} used "
                    f"{saved[name]!r}; expected the same {name} (or a fresh checkpoint folder)")
        saved_key = checkpoint.restore_key(ckpt)
        if saved_key is not None and not _same_key(saved_key, self.key):
            warnings.warn(f"fit: key differs from the one of the run in {ckpt.path}; resuming "
                          f"with the checkpoint's key", stacklevel=4)
            self.key = saved_key
        h = ckpt.meta["history"]
        for k in self.records:
            self.records[k] = list(h[k])
        self.train_seconds, self.eval_seconds = h["seconds"], h["eval_seconds"]
        self.epoch = self.saved_epoch = ckpt.meta["epoch"]
        self.done = ckpt.meta["step"]
        self.last_path = ckpt.path

    def finish(self, out, epoch: int, nb: int, t0: float) -> TrainState:
        """After an epoch: its one host transfer, the NaN check, evaluation, the history."""
        new_ts, metrics = out
        losses, finite, finite_grads = parallel.to_host(
            (metrics["loss"], metrics["finite"], metrics["finite_grads"]))
        losses = np.asarray(losses)
        self.train_seconds += time.perf_counter() - t0
        if not np.all(finite):
            i = int(np.argmin(finite))
            raise _non_finite(losses[i], finite_grads[i], self.leaf_names, step=self.done + i + 1,
                              epoch=epoch, ckpt=self.last_path, ts=new_ts)
        t0 = time.perf_counter()
        tr, te = parallel.to_host(self.evaluate(new_ts))
        self.eval_seconds += time.perf_counter() - t0
        self.record(epoch, self.done + nb, losses, tr, te)  # the epoch's one change to the records
        self.bar.set_postfix(loss=f"{losses.mean():.4f}", train_acc=f"{tr['accuracy']:.4f}",
                             test_acc=f"{te['accuracy']:.4f}")
        return new_ts

    def record(self, epoch: int, done: int, losses: np.ndarray, tr: dict, te: dict) -> None:
        self.epoch, self.done = epoch, done
        self.records["step_loss"].extend(losses.tolist())
        for k, v in (("epoch", epoch), ("step", done), ("train_loss", float(losses.mean())),
                     ("train_acc", float(tr["accuracy"])), ("test_loss", float(te["loss"])),
                     ("test_acc", float(te["accuracy"]))):
            self.records[k].append(v)

    def history(self) -> dict:
        return {**{k: list(v) for k, v in self.records.items()},
                "seconds": self.train_seconds, "eval_seconds": self.eval_seconds}

    def save(self, ts: TrainState):
        """Write `ts` (gathered to the host first, wherever its shards live) and the run so far."""
        self.last_path = checkpoint.save(self.checkpoints.dir, parallel.to_host(ts), epoch=self.epoch,
                                         step=self.done, key=self.key, history=self.history(),
                                         config=self.config, keep=self.checkpoints.keep)
        self.saved_epoch = self.epoch
        return self.last_path

    def interrupted(self, ts: TrainState | None, pending) -> None:
        """Ctrl-C: keep the epoch in flight (`pending`) and write a checkpoint of the run so far."""
        if self.checkpoints is None:
            return
        if pending is not None:  # the epoch in flight: wait for it, then keep it
            out, epoch, _, _ = pending
            ts = out[0] if self.epoch == epoch else self.finish(*pending)
        if ts is not None and self.saved_epoch != self.epoch and not _deleted(ts):
            path = self.save(ts)
            warnings.warn(f"fit: interrupted after epoch {self.epoch}; wrote {path} (continue "
                          f"with resume=True)", stacklevel=3)


def _non_finite(loss, finite_grads, leaf_names, *, step: int, epoch: int, ckpt,
                ts) -> FloatingPointError:
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
        f"{ckpt if ckpt is not None else 'none (pass checkpoints= to write them)'}. "
        f"Lower the learning rate or check the data")
    err.step, err.epoch, err.leaf, err.checkpoint, err.train_state = step, epoch, leaf, ckpt, ts
    return err


def _same_key(a, b) -> bool:
    def data(k):
        return np.asarray(jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k)
    da, db = data(a), data(b)
    return da.shape == db.shape and bool(np.all(da == db))


def _deleted(tree) -> bool:
    """Was a leaf of `tree` donated (its buffer handed to a compiled call)?"""
    return any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree_util.tree_leaves(tree))


# fit compiles an epoch once per (model, optimizer, batch size, ...): a second fit with the same
# model and optimizer objects (a resumed run, a test) reuses the compiled program.
_CACHES = {make_epoch: functools.lru_cache(maxsize=32)(make_epoch),
           make_evaluate: functools.lru_cache(maxsize=32)(make_evaluate)}


def _cached(make, *objects, **kw):
    """``make(*objects, **kw)``, from a cache when the model and optimizer objects are hashable."""
    try:
        hash(objects)
    except TypeError:  # a model or optimizer holding unhashable things: compile anew
        return make(*objects, **kw)
    return _CACHES[make](*objects, **kw)

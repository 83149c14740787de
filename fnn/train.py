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
just the folder), the train state, the key, the step, the history and the run's record (model,
optimizer hyper-parameters and state structure, a fingerprint of the data, batch size, gradient path:
`fnn._run`) are written atomically every `every` epochs and after the last one, keeping the newest
`keep` of this run; Ctrl-C (KeyboardInterrupt) finishes the epoch in flight, writes a checkpoint and
re-raises. `fit` holds the folder's writer lock for the whole run (a second writer gets an error). A
checkpoint folder belongs to one run: a fresh run (``resume=False``) into a folder that holds
checkpoints is refused (nothing there is overwritten or pruned). ``resume=True`` continues from the
newest checkpoint that verifies (a damaged newer one is skipped with a warning; when all are damaged
it raises and leaves them in place), says so ("fit: resumed from epoch N (path)", on the progress
line and the ``fnn`` logger), and gives bit for bit the parameters an uninterrupted run would; with no
checkpoint there yet it starts afresh. Resuming is refused when the run's record differs from the
checkpoint's (each difference named), when the checkpoint is not `fit`'s (a bare pytree of
`fnn.checkpoint.save`), or when `epochs`/`steps` is below its progress.

Devices (`fnn.parallel`, docs/PARALLEL.md): ``devices=None`` trains on JAX's default device. A
count n (the first n of `jax.devices()`), a list of devices or a `jax.sharding.Mesh` with a
``"batch"`` axis runs the same step data-parallel: each mini-batch is split over the devices
(`batch_size` must be a multiple of their number), the train state and the data are copied to
every device, and the result equals the one-device run up to float rounding. Evaluation is split
the same way; checkpoints are gathered to the host, so a run may resume on other devices.

NaN/inf: a step whose loss or gradient is not finite is not applied (`fnn.step.make_step`); its
flags come back with the epoch's losses (no extra host sync) and `fit` raises
`FloatingPointError` naming the step, the leaf and the last checkpoint.

Input: every array of `data` is checked once per call, on the host, before it is cast or compiled
(`fnn._checks.check_set`): shapes and dtypes, NaN/inf (named with the array and the first bad index,
``fit: test x[5, 0, 3, 7] is nan``), labels in range in their own dtype (int64 labels of ``2**32 + 1``
are refused, not truncated), one-hot or soft targets in [0, 1] summing to 1, and a warning for raw
pixels 0..255. Nothing is checked per step: inside the compiled epoch no value check could run.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.sharding import Mesh

from fnn import checkpoint, parallel
from fnn._checks import check_data, check_positive_int, check_set
from fnn._run import Run as _Run
from fnn._run import run_record
from fnn.files import FolderLock
from fnn.models._model import Model
from fnn.progress import bar as progress_bar
from fnn.step import GRADS, TrainState, init_train_state, make_epoch, make_evaluate, own_copy

__all__ = ["Checkpoints", "fit"]


class Checkpoints(NamedTuple):
    """Where and how `fit` writes its checkpoints; ``fit(..., checkpoints="runs/a")`` means
    ``Checkpoints("runs/a")``: every epoch, the newest 3 kept, a fresh start."""

    dir: str | os.PathLike  # the folder, created if missing
    every: int = 1          # write after every `every`-th epoch (and after the last one)
    keep: int = 3           # how many of this run's newest checkpoints to keep
    resume: bool = False    # continue the run in `dir` (a fresh start if it holds none); False: `dir`
    #                         must hold no checkpoints (a folder belongs to one run)


def fit(model: Model, optimizer: optax.GradientTransformation, data, *, key: Array,
        epochs: int | None = None, steps: int | None = None, batch_size: int = 100,
        grad: str = "autodiff", eval_batch_size: int = 1000, train_eval_size: int | None = None,
        train_state: TrainState | None = None,
        checkpoints: Checkpoints | str | os.PathLike | None = None,
        devices: int | Sequence[jax.Device] | Mesh | None = None, progress: bool = True,
        desc: str | None = None) -> tuple[TrainState, dict]:
    """Train `model` on ``data = ((x_train, t_train), (x_test, t_test))`` (DLFS1 §4.5.2–4.5.3).

    Give `epochs`, or `steps` (the book counts iterations: ``steps=10000`` with batch 100 on
    60,000 samples is 16 epochs and 400 steps). After every epoch the train and test sets are
    evaluated (the book's "train acc, test acc" lines), shown by `fnn.progress` (a bar on a
    terminal, one line an epoch in a log); `train_eval_size` evaluates only the first that many
    training samples (all by default), for models whose evaluation costs as much as training (a
    seq2seq model answers every question by greedy decoding). `train_state`
    continues a run instead of initialising a new one; `checkpoints` (a folder or `Checkpoints`)
    writes the run to disk and resumes it; `devices` splits each mini-batch over several devices
    (both: see the module docstring).

    Returns ``(train_state, history)``; history holds per-epoch ``epoch, step, train_loss,
    train_acc, test_loss, test_acc`` lists, every step's loss in ``step_loss``, and ``seconds``
    (training only, first-epoch compile included) and ``eval_seconds``.

    The caller's arrays stay usable: each epoch donates the train state's buffers to the compiled
    epoch, so a given `train_state` is copied once before the first epoch (one device copy of the
    parameters and optimizer state, far less than an epoch) and the caller keeps its own. A
    `train_state` whose buffers an earlier compiled call consumed (`make_epoch`/`make_steps`
    donate) is refused with a `ValueError` saying so.

    Raises:
      FloatingPointError: a step's loss or gradient was not finite. The update was not applied;
        the message names the step, the first non-finite leaf and the last checkpoint written;
        the error's ``train_state`` attribute holds the parameters of the step before.
      ValueError / TypeError: bad data or settings (see the module docstring's "Input").
      fnn.checkpoint.CheckpointError: the checkpoint folder holds another run, a bare pytree, only
        damaged checkpoints, or more progress than `epochs`/`steps` asks for.
      fnn.files.FolderLockedError: another process is writing into the checkpoint folder.
    """
    (x, t), test = _check_data(data, ids=model.evaluate is not None)
    train_eval_size = check_positive_int("fit", "train_eval_size", train_eval_size, or_none=True)
    steps, batch_size, eval_batch_size, checkpoints = _check_arguments(
        x.shape[0], grad=grad, batch_size=batch_size, epochs=epochs, steps=steps, key=key,
        eval_batch_size=eval_batch_size, checkpoints=checkpoints, train_state=train_state)
    init_key, run_key = jax.random.split(key)
    template = jax.eval_shape(lambda k: init_train_state(model, optimizer, k), init_key)
    (x, t), test = _check_values(model, template, {"train": (x, t), "test": test})
    mesh = parallel.batch_mesh(devices)  # None: one device, no sharding
    parallel.check_batch_size("fit", "batch_size", batch_size, mesh)
    per_epoch = x.shape[0] // batch_size
    record = None if checkpoints is None else run_record(
        model, optimizer, template, {"train": (x, t), "test": test}, batch_size=batch_size, grad=grad)
    run = _Run(model, checkpoints, key=key, record=record)
    lock = contextlib.nullcontext() if checkpoints is None else FolderLock(checkpoints.dir, "fit")
    with lock:
        target = ("epochs", epochs) if epochs is not None else ("steps", steps)
        ckpt = run.resume(target, steps, per_epoch) if checkpoints is not None else None
        if ckpt is not None:
            ts = checkpoint.restore(ckpt, template)
            run_key = jax.random.split(run.key)[1]  # the checkpoint's run
        elif train_state is not None:
            _check_train_state(model, train_state, template)
            ts = own_copy("fit", train_state)  # the epochs donate this copy, not the caller's arrays
        else:
            ts = init_train_state(model, optimizer, init_key)
        run.leaf_names = [checkpoint.leaf_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(ts.params)[0]]
        sets = (ts, (x, t), test, run_key)  # on every device when there are several
        ts, (x, t), test, run_key = sets if mesh is None else parallel.replicate(sets, mesh)
        evaluate = _cached(make_evaluate, model, batch_size=eval_batch_size, mesh=mesh, check=False)
        shown = (x, t) if train_eval_size is None else (x[:train_eval_size], t[:train_eval_size])
        run.evaluate = lambda ts: (evaluate(ts.params, ts.state, *shown), evaluate(ts.params, ts.state, *test))
        n_epochs = math.ceil(steps / per_epoch)
        run.bar = bar = progress_bar(n_epochs, desc=desc or model.name, initial=run.epoch, enabled=progress)
        if run.resumed_from is not None:
            bar.write(f"fit: resumed from epoch {run.epoch} ({run.resumed_from})")
        pending = None  # an epoch dispatched but not yet finished: what Ctrl-C must wait for
        try:
            for epoch in range(run.epoch + 1, n_epochs + 1):
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
        finally:
            bar.close()
    return ts, run.history()


# ---------------------------------------------------------------------------------------------
# Checks of fit's arguments
# ---------------------------------------------------------------------------------------------


def _check_data(data, ids: bool = False):
    """``((x_train, t_train), (x_test, t_test))`` with shapes and dtypes checked (values: `_check_values`);
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
    return tuple(tuple(d) for d in data)


def _check_values(model: Model, template: TrainState, sets: dict) -> tuple:
    """Each set's values, checked once on the host in their own dtypes (`check_set`: finite x, labels
    that fit the model's scores, raw pixels), then cast to jax arrays. A model with its own
    ``evaluate`` (seq2seq: x holds ids) checks x's and t's shapes itself: fit traces that."""
    out = []
    for name, (x, t) in sets.items():
        xs = jax.ShapeDtypeStruct(x.shape, jax.dtypes.canonicalize_dtype(x.dtype))
        ts = jax.ShapeDtypeStruct(t.shape, jax.dtypes.canonicalize_dtype(t.dtype))
        try:
            if model.evaluate is not None:
                jax.eval_shape(model.evaluate, template.params, template.state, xs, ts)
            else:
                scores = jax.eval_shape(lambda p, s, xi: model.apply(p, s, xi)[0], template.params,
                                        template.state, xs)
        except (ValueError, TypeError) as e:  # the model refuses x's shape or dtype: say which set
            raise type(e)(f"fit ({name} data): {e}") from None
        if model.evaluate is not None:
            check_set("fit", name, x, t, ids=True)
        else:
            check_set("fit", name, x, t, scores)
        out.append((jnp.asarray(x), jnp.asarray(t)))
    return tuple(out)


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
        if os.path.exists(checkpoints.dir) and not os.path.isdir(checkpoints.dir):
            raise ValueError(f"fit: checkpoints.dir {os.fspath(checkpoints.dir)!r} is a file, expected a "
                             f"folder for the checkpoints (missing or a folder)")
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

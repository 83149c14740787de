"""What `fnn.train.fit` needs around its loop: input checks, the run's records and checkpoints, errors.

Private: `fnn.train` re-exports the one public name, `check_data`. Nothing here compiles or trains;
`fit` reads top to bottom as "check, set up, run the epochs" with the details kept here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from fnn import checkpoint
from fnn._checks import check_floating, check_labels
from fnn.models._model import Model
from fnn.parallel import to_host


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


def unpack_data(data):
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


def positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_arguments(N: int, *, grads: tuple, grad, batch_size, epochs, steps, every, keep,
                    eval_batch_size, resume, checkpoint_dir, train_state, key) -> int:
    """Validate `fit`'s settings for a training set of N samples; return the number of steps."""
    if grad not in grads:
        raise ValueError(f"fit: grad is {grad!r}, expected one of {grads}")
    if not positive_int(batch_size):
        raise ValueError(f"fit: batch_size is {batch_size!r}, expected a positive integer")
    if batch_size > N:
        raise ValueError(f"fit: batch_size is {batch_size}, larger than the training set "
                         f"({N} samples)")
    if (epochs is None) == (steps is None):
        raise ValueError(f"fit: give exactly one of epochs and steps (got epochs={epochs!r}, "
                         f"steps={steps!r})")
    if steps is None:
        if not positive_int(epochs):
            raise ValueError(f"fit: epochs is {epochs!r}, expected a positive integer")
        steps = epochs * (N // batch_size)
    elif not positive_int(steps):
        raise ValueError(f"fit: steps is {steps!r}, expected a positive integer")
    for name, value in (("every", every), ("keep", keep), ("eval_batch_size", eval_batch_size)):
        if not positive_int(value):
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
    return steps


def check_train_state(model: Model, ts, template) -> None:
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


def check_labels_against_model(model: Model, ts, x: Array, t: Array, name: str) -> None:
    """Trace the model on x's shape (no compute) and check that the labels t fit its scores."""
    scores = jax.eval_shape(lambda p, s, xi: model.apply(p, s, xi)[0], ts.params, ts.state, x)
    check_labels(f"fit ({name} data)", t, jax.ShapeDtypeStruct(scores.shape, scores.dtype))


def check_resume(ckpt: checkpoint.Checkpoint, config: dict) -> None:
    """The settings that shape a run (`config`) must be those of the checkpoint's run."""
    saved = ckpt.meta.get("config", {})
    for name, value in config.items():
        if name in saved and saved[name] != value:
            raise checkpoint.CheckpointError(
                f"fit: resume: {name} is {value!r}, but the run in {ckpt.path} used {saved[name]!r}; "
                f"expected the same {name} (or a fresh checkpoint_dir)")


def same_key(a, b) -> bool:
    def data(k):
        return np.asarray(jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k)
    da, db = data(a), data(b)
    return da.shape == db.shape and bool(np.all(da == db))


def deleted(tree) -> bool:
    """Was a leaf of `tree` donated (its buffer handed to a compiled call)?"""
    return any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree_util.tree_leaves(tree))


def non_finite(loss, finite_grads, leaf_names, *, step: int, epoch: int, ckpt,
               ts) -> FloatingPointError:
    """The error `fit` raises when step `step` was refused as non-finite (see `make_step`)."""
    bad_grad = [n for n, ok in zip(leaf_names, finite_grads, strict=True) if not ok]
    leaf = (bad_grad or [None])[0]
    if not np.isfinite(loss):
        what = f"the loss became {loss}"
        where = f"; first non-finite gradient: {leaf}" if bad_grad else ""
    elif bad_grad:
        what, where = f"the gradient of {leaf} became non-finite (loss {loss:.6g})", ""
    else:  # loss and gradients finite: the optimizer's update was not (a NaN learning rate, an overflow)
        what, where = f"the updated parameters became non-finite (loss {loss:.6g})", ""
    err = FloatingPointError(
        f"fit: {what} at step {step} (epoch {epoch}){where}. The step was not applied: the "
        f"parameters are those after step {step - 1}. Last good checkpoint: "
        f"{ckpt if ckpt is not None else 'none (pass checkpoint_dir= to write them)'}. "
        f"Lower the learning rate or check the data")
    err.step, err.epoch, err.leaf, err.checkpoint, err.train_state = step, epoch, leaf, ckpt, ts
    return err


class Run:
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

    def save(self, ts):
        """Write `ts` (gathered to the host first, wherever its shards live) and the run so far."""
        self.last_path = checkpoint.save(self.directory, to_host(ts), epoch=self.epoch,
                                         step=self.done, key=self.key, history=self.history_out(),
                                         config=self.config, keep=self.keep)
        self.saved_epoch = self.epoch
        return self.last_path

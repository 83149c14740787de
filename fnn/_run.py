"""A `fit` run that can be continued: its record, where it starts, what it keeps between epochs.

Private to `fnn.train` (`fit` is the API). A run's **record** is what makes two runs the same run,
written into every checkpoint (`fnn.checkpoint.save`'s ``run``), its digest the ``run_id``:

* ``model`` (its name) and ``params`` (every parameter's path, dtype and shape);
* ``optimizer``: its hyper-parameters where they can be seen (the numbers an optax transform closes
  over: ``scale_by_learning_rate.learning_rate 0.1``, ``scale_by_adam.b1 0.9``; a schedule's
  numbers too) and ``optimizer_state``, the digest of its state's tree structure, dtypes and shapes;
* ``train_data`` and ``test_data``: each array's dtype and shape and a sha256 of the arrays as
  they train (after the cast to JAX's dtypes);
* ``batch_size`` and ``grad`` (the gradient path).

The key is saved beside the record, not in it: a resumed run continues with the checkpoint's key
(a `UserWarning` when another key was given). A fresh run (``resume=False``) into a folder that
already holds checkpoints is refused, and so is resuming a run whose record differs (naming what
differs), a checkpoint that is not `fit`'s, a target (`epochs`/`steps`) below the checkpoint's
progress, and a run that ended mid-epoch (it could not continue bit for bit). Version-1
checkpoints, written before the record existed, resume with a warning that their optimizer and
data cannot be checked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from fnn import checkpoint, parallel
from fnn.checkpoint import CheckpointError
from fnn.step import TrainState, consumed

_log = logging.getLogger("fnn")
_HISTORY = ("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "step_loss")


# ---------------------------------------------------------------------------------------------
# The run's record
# ---------------------------------------------------------------------------------------------


def describe_optimizer(optimizer) -> list[list]:
    """``[[name, value], ...]``: the numbers and flags an optax transform closes over, in order."""
    out: list[list] = []
    seen: set[int] = set()

    def walk(obj, name: str, depth: int) -> None:
        if depth > 16 or id(obj) in seen:
            return
        if obj is None or isinstance(obj, (bool, int, float, str)):
            out.append([name, obj])
        elif isinstance(obj, (np.generic, np.ndarray, jax.Array)) and not isinstance(obj, jax.core.Tracer):
            a = np.asarray(obj)
            out.append([name, a.tolist() if a.size <= 16 else f"{a.dtype}{list(a.shape)}"])
        elif isinstance(obj, (tuple, list)):
            for i, v in enumerate(obj):
                walk(v, f"{name}[{i}]", depth + 1)
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                walk(obj[k], f"{name}.{k}", depth + 1)
        elif isinstance(obj, functools.partial):
            walk((obj.func, obj.args, obj.keywords), name, depth + 1)
        elif isinstance(obj, types.FunctionType):
            seen.add(id(obj))
            fn = obj.__qualname__.split(".<locals>")[0]
            for var, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=True):
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                walk(value, f"{fn}.{var}", depth + 1)
        elif hasattr(obj, "init") and hasattr(obj, "update"):  # a GradientTransformation
            walk(obj.init, name, depth + 1)
            walk(obj.update, name, depth + 1)
        else:
            out.append([name, type(obj).__name__])

    walk(optimizer, "optimizer", 0)
    unique = []
    for item in out:  # init and update close over the same numbers
        if item not in unique:
            unique.append(item)
    return unique


def _signature(tree) -> list[str]:
    """``["W1 float64[5, 8]", ...]``: each leaf's path, dtype and shape."""
    return [f"{checkpoint.leaf_name(p)} {leaf.dtype}{list(leaf.shape)}"
            for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _data_record(x, t) -> dict:
    """dtype and shape of x and t, and a sha256 of their bytes as they train."""
    h = hashlib.sha256()
    for a in (x, t):
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return {"x": f"{x.dtype}{list(x.shape)}", "t": f"{t.dtype}{list(t.shape)}", "sha256": h.hexdigest()}


def run_record(model, optimizer, template: TrainState, sets: dict, *, batch_size: int, grad: str) -> dict:
    """The record of a `fit` run (see the module docstring); `template` is its train state's shapes."""
    state_sig = json.dumps([str(jax.tree_util.tree_structure(template.opt_state)),
                            _signature(template.opt_state)])
    return {"model": model.name, "params": _signature(template.params),
            "optimizer": describe_optimizer(optimizer),
            "optimizer_state": hashlib.sha256(state_sig.encode()).hexdigest()[:16],
            **{f"{name}_data": _data_record(x, t) for name, (x, t) in sets.items()},
            "batch_size": batch_size, "grad": grad}


def _first_difference(ours, saved) -> tuple[str, object, object] | None:
    """(where, ours, saved) of the first difference between two JSON values, or None."""
    if isinstance(ours, dict) and isinstance(saved, dict):
        for k in list(ours) + [k for k in saved if k not in ours]:
            if (d := _first_difference(ours.get(k, "missing"), saved.get(k, "missing"))) is not None:
                return (f".{k}{d[0]}" if d[0] else f".{k}"), d[1], d[2]
        return None
    if isinstance(ours, list) and isinstance(saved, list):
        for i in range(max(len(ours), len(saved))):
            a = ours[i] if i < len(ours) else "missing"
            b = saved[i] if i < len(saved) else "missing"
            if _named(a) or _named(b):  # the optimizer's [name, value]: the value, or the whole pair
                if _named(a) and _named(b) and a[0] == b[0]:
                    if (d := _first_difference(a[1], b[1])) is not None:
                        return (f".{a[0]}{d[0]}", d[1], d[2])
                elif a != b:
                    return (f"[{i}]", a, b)
            elif (d := _first_difference(a, b)) is not None:
                return (f"[{i}]{d[0]}", d[1], d[2])
        return None
    return None if ours == saved else ("", ours, saved)


def _named(x) -> bool:
    return isinstance(x, list) and len(x) == 2 and isinstance(x[0], str)


def check_same_run(ours: dict, ckpt: checkpoint.Checkpoint) -> None:
    """Raise `CheckpointError` when the run recorded in `ckpt` is not `ours`, naming each difference."""
    meta = ckpt.meta
    saved = meta.get("run")
    if saved is None and meta["version"] == 1:  # before the record: its config is all there is
        saved = {k: v for k, v in meta.get("config", {}).items() if k in ours}
        warnings.warn(f"fit: resume: {ckpt.path} was written by an older fnn (checkpoint version 1): "
                      f"only {sorted(saved)} can be checked, not the optimizer or the data", stacklevel=4)
        ours = {k: ours[k] for k in saved}
    differences = []
    for field in ours:
        d = _first_difference(ours[field], saved.get(field, "missing"))
        if d is not None:
            differences.append(f"{field}{d[0]} is {_short(d[1])}, but the run in {ckpt.path} used {_short(d[2])}")
    if differences:
        raise CheckpointError(
            "fit: resume: this is not the run the checkpoint folder holds: " + "; ".join(differences)
            + ". Expected the same run (model, optimizer, data, batch_size, grad), or a fresh checkpoint "
            "folder; to start from its parameters with other settings on purpose, load it with "
            "fnn.checkpoint.load and restore, and pass train_state= (with another folder)")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


# ---------------------------------------------------------------------------------------------
# The run between epochs
# ---------------------------------------------------------------------------------------------


class Run:
    """What one `fit` call keeps between epochs: history, step count, timing, checkpoints."""

    def __init__(self, model, checkpoints, key, record: dict | None):
        self.model, self.checkpoints, self.key, self.record_ = model, checkpoints, key, record
        self.records: dict[str, list] = {k: [] for k in _HISTORY}
        self.epoch = self.done = 0
        self.saved_epoch = self.last_path = self.resumed_from = None
        self.train_seconds = self.eval_seconds = 0.0
        self.evaluate = self.bar = None  # set by fit once the data is where it trains
        self.leaf_names: list[str] = []

    def resume(self, target: tuple[str, int], steps: int, per_epoch: int) -> checkpoint.Checkpoint | None:
        """The checkpoint to continue from (None for a fresh start), checked against this run.

        A fresh run (``resume=False``) into a folder holding checkpoints is refused; so is a folder
        whose checkpoints are all damaged (`checkpoint.latest`), another run's checkpoint, one that
        is not `fit`'s, and a target below its progress.
        """
        folder = self.checkpoints.dir
        found = checkpoint.list_checkpoints(folder)
        if not self.checkpoints.resume:
            if found:
                raise CheckpointError(
                    f"fit: checkpoints.dir {folder} already holds {len(found)} checkpoint(s) "
                    f"({', '.join(p.name for p in found[-3:])}); a fresh run would mix its checkpoints with "
                    f"theirs. Expected an empty folder: pass resume=True (--resume) to continue that run, "
                    f"or choose another folder")
            return None
        ckpt = checkpoint.latest(folder)  # raises when every checkpoint is damaged
        if ckpt is None:
            return None
        meta = ckpt.meta
        missing = [f for f in ("epoch", "step") if meta.get(f) is None]
        missing += [] if meta["has_key"] else ["key"]
        missing += [] if all(k in meta["history"] for k in _HISTORY + ("seconds", "eval_seconds")) else ["history"]
        missing += ["run"] if meta.get("run") is None and meta["version"] != 1 else []
        if missing:
            raise CheckpointError(
                f"fit: resume: {ckpt.path} lacks {', '.join(missing)}: it holds a bare pytree (written "
                f"by checkpoint.save), not a fit run; expected a checkpoint written by fit. To start from "
                f"its arrays, restore it (checkpoint.load, checkpoint.restore) and pass train_state= "
                f"with an empty checkpoint folder")
        check_same_run(self.record_, ckpt)
        done, epoch = meta["step"], meta["epoch"]
        if steps < done:
            raise CheckpointError(
                f"fit: {target[0]} is {target[1]}, but the run in {ckpt.path} is already at epoch {epoch} "
                f"({done} steps); expected {target[0]} >= {epoch if target[0] == 'epochs' else done} to "
                f"continue it (a resumed run goes on to the given total), or a fresh folder")
        if done % per_epoch and steps > done:
            raise CheckpointError(
                f"fit: resume: the run in {ckpt.path} ended mid-epoch (epoch {epoch} after {done} steps, "
                f"{per_epoch} an epoch); it cannot continue to {target[0]}={target[1]} as one run would. "
                f"Expected {target[0]} equal to its end, or a fresh folder")
        self._restore(ckpt)
        return ckpt

    def _restore(self, ckpt: checkpoint.Checkpoint) -> None:
        """Continue the run of `ckpt`: its key and history become ours."""
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
        self.last_path = self.resumed_from = ckpt.path
        _log.info("fit: resumed from epoch %d (%s)", self.epoch, ckpt.path)

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
                                         run=self.record_, keep=self.checkpoints.keep)
        self.saved_epoch = self.epoch
        return self.last_path

    def interrupted(self, ts: TrainState | None, pending) -> None:
        """Ctrl-C: keep the epoch in flight (`pending`) and write a checkpoint of the run so far."""
        if self.checkpoints is None:
            return
        if pending is not None:  # the epoch in flight: wait for it, then keep it
            out, epoch, _, _ = pending
            ts = out[0] if self.epoch == epoch else self.finish(*pending)
        if ts is not None and self.saved_epoch != self.epoch and not consumed(ts):
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
    elif bad_grad:
        what, where = f"the gradient of {leaf} became non-finite (loss {loss:.6g})", ""
    else:  # loss and gradients finite: the optimizer's update was not (a NaN learning rate, an overflow)
        what, where = f"the updated parameters became non-finite (loss {loss:.6g})", ""
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

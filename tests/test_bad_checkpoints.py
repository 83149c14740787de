"""A checkpoint folder belongs to one run: every way of continuing the wrong thing gets a clear error.

Each case is ``(call, exception, fragments)``: ``call(tmp_path)`` must raise the exception and the
message must hold every fragment (the file or argument, what was expected, what was found). What
happens to the files (left in place, never pruned) is tested in test_checkpoint.py.
"""

import fcntl
import hashlib
import json
import os
import socket

import jax
import jax.numpy as jnp
import optax
import pytest

from fnn import checkpoint, train
from fnn.files import FolderLockedError
from fnn.models import mlp
from fnn.step import init_train_state, make_epoch

from .test_train import _blobs

MODEL = mlp.model(5, [8], 3, weight_init=0.3, dtype=jnp.float64)
OPT = optax.adam(0.01)  # the objects of test_checkpoint.py: fit's compiled epochs are shared
KW = {"batch_size": 10, "progress": False}


def _fit(folder, resume=False, data=None, model=MODEL, opt=OPT, **kw):
    kw = {"key": jax.random.key(3), "epochs": 2, **KW, **kw}
    return train.fit(model, opt, _blobs() if data is None else data,
                     checkpoints=train.Checkpoints(folder, resume=resume), **kw)


def _resume_after(first: dict, second: dict):
    """A run written with `first`'s settings, then resumed with `second`'s."""
    def call(tmp):
        _fit(tmp / "run", **first)
        return _fit(tmp / "run", resume=True, **second)
    return call


def _saved(tmp, change=None, tree=None):
    """A checkpoint of a small tree whose metadata `change` edits (the metadata checksum recomputed,
    as a hand edit by someone who knows the format would)."""
    path = checkpoint.save(tmp / "c", {"a": jnp.ones(2)} if tree is None else tree, epoch=1, step=1)
    if change is not None:
        meta = json.loads(path.read_text())
        change(meta)
        body = {k: v for k, v in meta.items() if k != "meta_sha256"}
        meta["meta_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        path.write_text(json.dumps(meta))
    return path


def _load_edited(change, tree=None):
    return lambda tmp: checkpoint.load(_saved(tmp, change, tree))


def _all_damaged(tmp):
    _fit(tmp / "run")
    for npz in (tmp / "run").glob("*.npz"):
        npz.write_bytes(npz.read_bytes()[:-40])
    return _fit(tmp / "run", resume=True, epochs=3)


def _bare_then_fit(tmp):
    checkpoint.save(tmp / "run", init_train_state(MODEL, OPT, jax.random.key(0)), epoch=1, step=9)
    return _fit(tmp / "run", resume=True)


def _held_by_another_process(tmp):
    """The folder's lock held (flock) by another open file, with another writer's pid in it."""
    (tmp / "run").mkdir()
    f = open(tmp / "run" / ".writer.lock", "w")  # noqa: SIM115 - held while the save is tried
    f.write(json.dumps({"pid": 4242, "host": socket.gethostname(), "since": 0, "purpose": "fit"}))
    f.flush()
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        return checkpoint.save(tmp / "run", {"a": jnp.ones(2)}, epoch=1, step=1)
    finally:
        f.close()


def _consumed_then_fit(tmp):
    ts = init_train_state(MODEL, OPT, jax.random.key(0))
    (x, t), _ = _blobs()
    make_epoch(MODEL, OPT, batch_size=10)(ts, jnp.asarray(x), jnp.asarray(t), jax.random.key(1))
    return train.fit(MODEL, OPT, _blobs(), key=jax.random.key(0), epochs=1, train_state=ts, **KW)


CASES = {
    # --- resume: the folder's run must be this run ---------------------------------------------------
    "resume when every checkpoint is damaged": (
        _all_damaged, checkpoint.CheckpointError,
        ["every checkpoint in", "is damaged; they were left in place", "ckpt-000002.json", "ckpt-000001.json",
         "corrupt or truncated"]),
    "a fresh run into a folder holding checkpoints": (
        lambda tmp: (_fit(tmp / "run"), _fit(tmp / "run")),
        checkpoint.CheckpointError,
        ["checkpoints.dir", "already holds 2 checkpoint(s) (ckpt-000001.json, ckpt-000002.json)",
         "Expected an empty folder", "resume=True"]),
    "resume with another learning rate": (
        _resume_after({}, {"opt": optax.adam(0.02)}), checkpoint.CheckpointError,
        ["this is not the run the checkpoint folder holds", "optimizer.scale.step_size is -0.02", "used -0.01",
         "ckpt-000002.json"]),
    "resume with another optimizer": (
        _resume_after({}, {"opt": optax.sgd(0.01)}), checkpoint.CheckpointError,
        ["optimizer[0] is ['scale.step_size', -0.01]", "but the run in", "used ['scale_by_adam.mu_dtype', None]",
         "ckpt-000002.json", "Expected the same run"]),
    "resume with the same transforms in another order": (
        _resume_after({"opt": optax.chain(optax.clip(1.0), optax.sgd(0.1))},
                      {"opt": optax.chain(optax.sgd(0.1), optax.clip(1.0))}),
        checkpoint.CheckpointError, ["optimizer[0] is ['scale.step_size', -0.1]", "used ['clip.max_delta', 1.0]"]),
    "resume with other training data of the same shape": (
        _resume_after({}, {"data": _blobs(seed=1)}), checkpoint.CheckpointError,
        ["train_data.sha256 is", "but the run in", "used", "Expected the same run"]),
    "resume with a smaller training set": (
        _resume_after({}, {"data": ((_blobs()[0][0][:60], _blobs()[0][1][:60]), _blobs()[1])}),
        checkpoint.CheckpointError, ["train_data.x is 'float64[60, 5]'", "used 'float64[90, 5]'"]),
    "resume with another batch size": (
        _resume_after({}, {"batch_size": 15}), checkpoint.CheckpointError, ["batch_size is 15", "used 10"]),
    "resume with the other gradient path": (
        _resume_after({}, {"grad": "manual"}), checkpoint.CheckpointError, ["grad is 'manual'", "used 'autodiff'"]),
    "resume with another hidden size under the same name": (
        _resume_after({"model": mlp.model(5, [9], 3, weight_init=0.3, dtype=jnp.float64)._replace(name=MODEL.name)},
                      {}), checkpoint.CheckpointError, ["params[0] is 'W1 float64[5, 8]'", "used 'W1 float64[5, 9]'"]),
    "resume with epochs below the checkpoint's": (
        _resume_after({}, {"epochs": 1}), checkpoint.CheckpointError,
        ["fit: epochs is 1", "is already at epoch 2 (18 steps)", "expected epochs >= 2"]),
    "resume with steps below the checkpoint's": (
        _resume_after({}, {"epochs": None, "steps": 3}), checkpoint.CheckpointError,
        ["fit: steps is 3", "expected steps >= 18"]),
    "resume past a run that ended mid-epoch": (
        _resume_after({"epochs": None, "steps": 13}, {"epochs": None, "steps": 20}), checkpoint.CheckpointError,
        ["ended mid-epoch (epoch 2 after 13 steps, 9 an epoch)", "steps=20", "Expected steps equal to its end"]),
    "fit resumes a bare pytree of checkpoint.save": (
        _bare_then_fit, checkpoint.CheckpointError,
        ["ckpt-000001.json lacks key, history, run", "a bare pytree (written by checkpoint.save)",
         "expected a checkpoint written by fit", "train_state="]),
    # --- load: the format, its version and every field it reads --------------------------------------
    "a checkpoint without a version": (_load_edited(lambda m: m.pop("version")), checkpoint.CheckpointError,
                                       ["ckpt-000001.json has no format version", "expected one of (1, 2)"]),
    "a checkpoint of version 99": (_load_edited(lambda m: m.update(version=99)), checkpoint.CheckpointError,
                                   ["ckpt-000001.json has format version 99", "expected one of (1, 2)"]),
    "a checkpoint whose version is a string": (_load_edited(lambda m: m.update(version="2")),
                                               checkpoint.CheckpointError, ["format version '2'", "(1, 2)"]),
    "metadata without its arrays file": (_load_edited(lambda m: m.pop("arrays")), checkpoint.CheckpointError,
                                         ["field 'arrays' is 'missing'", "expected the name of its .npz file"]),
    "metadata naming a file outside the folder": (
        _load_edited(lambda m: m.update(arrays="../x/ckpt-000001.npz")), checkpoint.CheckpointError,
        ["field 'arrays' is '../x/ckpt-000001.npz'", "in the same folder"]),
    "metadata whose leaves are not a list": (_load_edited(lambda m: m.update(leaves={"a": 1})),
                                             checkpoint.CheckpointError,
                                             ["field 'leaves'", "expected a list of {path, shape, dtype}"]),
    "metadata with an object dtype": (_load_edited(lambda m: m["leaves"][0].update(dtype="object")),
                                      checkpoint.CheckpointError,
                                      ["ckpt-000001.npz: leaf a has dtype 'object'", "expected a numeric dtype"]),
    "metadata with a shape its array does not have": (
        _load_edited(lambda m: m["leaves"][0].update(shape=[3])), checkpoint.CheckpointError,
        ["leaf a is float64[2]", "its metadata says float64[3]"]),
    "metadata listing more leaves than the file holds": (
        _load_edited(lambda m: m["leaves"].append(dict(m["leaves"][0], path="b"))), checkpoint.CheckpointError,
        ["ckpt-000001.npz does not hold the arrays its metadata lists", "leaf_00001"]),
    "metadata with a negative step": (_load_edited(lambda m: m.update(step=-3)), checkpoint.CheckpointError,
                                      ["field 'step' is '-3'", "an integer >= 0 or null"]),
    "load of a folder": (lambda tmp: checkpoint.load(_saved(tmp).parent), checkpoint.CheckpointError,
                         ["is a folder", "expected a checkpoint's .json file", "checkpoint.latest(folder)"]),
    # --- save and fit's folder -----------------------------------------------------------------------
    "save: a history holding an object": (
        lambda tmp: checkpoint.save(tmp, {"a": jnp.ones(1)}, history={"loss": [object()]}), TypeError,
        ["checkpoint.save: history['loss'][0] is a object", "expected numbers, strings, lists, dicts or arrays"]),
    "save: a string leaf": (lambda tmp: checkpoint.save(tmp, {"name": "mlp", "W": jnp.ones(2)}), TypeError,
                            ["checkpoint.save: leaf name is a str of dtype <U3", "expected an array of numbers"]),
    "save: a key leaf": (lambda tmp: checkpoint.save(tmp, {"key": jax.random.key(0)}), TypeError,
                         ["checkpoint.save: leaf key is a", "key<fry>", "jax.random.key_data(key)"]),
    "save: into a file": (lambda tmp: (tmp / "f").write_text("x") and checkpoint.save(tmp / "f", {"a": jnp.ones(1)}),
                          checkpoint.CheckpointError, ["checkpoint.save:", "/f is a file", "expected a folder"]),
    "save: a negative epoch": (lambda tmp: checkpoint.save(tmp, {"a": jnp.ones(1)}, epoch=-1), ValueError,
                               ["checkpoint.save: epoch is -1", "an integer >= 0"]),
    "save: a second writer": (_held_by_another_process, FolderLockedError,
                              ["another process is writing here (pid 4242 on host", "fit since",
                               "expected one writer at a time", ".writer.lock"]),
    "fit: checkpoints.dir is a file": (
        lambda tmp: (tmp / "f").write_text("x") and train.fit(MODEL, OPT, _blobs(), key=jax.random.key(0),
                                                              epochs=1, checkpoints=tmp / "f", **KW),
        ValueError, ["fit: checkpoints.dir", "/f' is a file", "expected a folder"]),
    "fit: a train_state consumed by make_epoch": (
        _consumed_then_fit, ValueError,
        ["fit: train_state holds arrays that were deleted", "make_epoch and make_steps donate",
         "expected the train state that call returned"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_checkpoints_get_a_clear_error(name, tmp_path):
    call, error, fragments = CASES[name]
    with pytest.raises(error) as info:
        call(tmp_path)
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{name}: the message lacks {missing}:\n{message}"


def test_damaged_checkpoints_are_left_in_place(tmp_path):
    """The damaged files of the first case are still there after the error (nothing was pruned)."""
    with pytest.raises(checkpoint.CheckpointError):
        _all_damaged(tmp_path)
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith(".")) == [
        "ckpt-000001.json", "ckpt-000001.npz", "ckpt-000002.json", "ckpt-000002.npz"]
    assert not os.path.exists(tmp_path / "run" / "ckpt-000003.json")

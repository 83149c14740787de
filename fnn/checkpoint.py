"""Checkpoints of a training run: written atomically, checksummed, never pickled.

A checkpoint is two files in one folder, named by the epoch it ends::

    ckpt-000012.npz    the arrays: every leaf of the TrainState (params, model state, optimizer
                       state) as ``leaf_00000, leaf_00001, ...``, and the run's RNG key data
    ckpt-000012.json   what the arrays mean: each leaf's tree path, shape and dtype, the key's
                       implementation, step and epoch, the history so far, the run's settings,
                       the sha256 of the .npz file and of the JSON body itself

The tree *structure* is not stored as code: `restore` rebuilds it from a `target` pytree of the same
structure (``init_train_state`` or its `jax.eval_shape`), and checks every leaf's path, shape and
dtype against it, so an optax state (NamedTuples, tuples) comes back as the very same types.
Nothing is ever unpickled (``np.load(allow_pickle=False)``).

Writes are atomic: each file goes to a temporary file in the same folder, is fsynced and renamed
with `os.replace`, then the folder is fsynced. The .npz is written first and the .json last, so a
checkpoint exists only once its .json does. `latest` verifies both checksums and, when the newest
checkpoint is corrupt or truncated, warns and falls back to the one before. `save` keeps the newest
`keep` checkpoints and deletes older ones.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._checks import check_int, check_positive_int
from fnn.files import fsync_dir, write_atomic

__all__ = ["Checkpoint", "CheckpointError", "latest", "leaf_name", "list_checkpoints", "load",
           "restore", "save"]

FORMAT = "fnn-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{6,})\.json$")


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the run it should continue."""


class Checkpoint(NamedTuple):
    """A loaded checkpoint: its .json metadata, its arrays (numpy, in leaf order), its path."""

    meta: dict[str, Any]
    leaves: list[np.ndarray]
    key_data: np.ndarray | None
    path: Path


def leaf_name(path) -> str:
    """A tree path as a readable name: ``W2``, ``opt_state/0/mu/W2`` (not ``['W2']``)."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _body_sha(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return _sha256(json.dumps(body, sort_keys=True).encode())


def _key_parts(key) -> tuple[np.ndarray | None, str | None]:
    """(raw key data, implementation name) of a typed key; (the array, None) for a legacy uint32 key."""
    if key is None:
        return None, None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
    return np.asarray(key), None


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The .json files of `directory`'s checkpoints, oldest first (by epoch)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(directory: str | os.PathLike, tree, *, epoch: int, step: int, key=None,
         history: dict | None = None, config: dict | None = None, keep: int | None = 3) -> Path:
    """Write `tree` (any pytree of arrays, e.g. a `TrainState`) as checkpoint ``ckpt-<epoch>``.

    Args:
      directory: the checkpoint folder, created if missing.
      tree: the pytree to save; its leaves are copied to the host.
      epoch, step: how far the run is (the epoch this checkpoint ends, the steps done).
      key: the run's base `jax.random` key (typed or legacy uint32), saved as its raw data.
      history: JSON-able training history (lists of numbers), restored as it was.
      config: JSON-able settings of the run that a resume must match (batch size, model name...).
      keep: how many checkpoints to keep (the newest); ``None`` keeps all.

    Returns:
      The path of the checkpoint's .json file.
    """
    epoch = check_int("checkpoint.save", "epoch", epoch, 0)
    keep = check_positive_int("checkpoint.save", "keep", keep, or_none=True)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    host = jax.device_get([leaf for _, leaf in flat])
    arrays = {f"leaf_{i:05d}": np.asarray(a) for i, a in enumerate(host)}
    leaves_meta = [{"path": leaf_name(p), "shape": list(np.shape(a)), "dtype": str(np.asarray(a).dtype)}
                   for (p, _), a in zip(flat, host, strict=True)]
    for name, a in list(arrays.items()):
        if np.dtype(a.dtype.str) != a.dtype:  # bfloat16 & co.: .npy cannot name them
            arrays[name] = a.view(f"u{a.dtype.itemsize}")
    key_data, key_impl = _key_parts(key)
    if key_data is not None:
        arrays["key_data"] = key_data
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()

    stem = f"ckpt-{epoch:06d}"
    meta = {"format": FORMAT, "version": VERSION, "epoch": epoch, "step": int(step),
            "arrays": f"{stem}.npz", "sha256": _sha256(payload), "leaves": leaves_meta,
            "key_impl": key_impl, "has_key": key_data is not None,
            "history": history or {}, "config": config or {}}
    meta["meta_sha256"] = _body_sha(meta)
    write_atomic(directory / f"{stem}.npz", payload)
    write_atomic(directory / f"{stem}.json", (json.dumps(meta, indent=1) + "\n").encode())
    fsync_dir(directory)
    for stale in directory.glob(".ckpt-*.part"):  # left by a writer that was killed mid-write
        stale.unlink(missing_ok=True)
    if keep is not None:
        for old in list_checkpoints(directory)[:-keep]:
            old.with_suffix(".npz").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        fsync_dir(directory)
    return directory / f"{stem}.json"


def load(path: str | os.PathLike) -> Checkpoint:
    """Read and verify one checkpoint (its .json path); raise `CheckpointError` if it is damaged."""
    path = Path(path)
    where = f"checkpoint.load: {path}"
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{where}: unreadable metadata ({type(e).__name__}: {e})") from e
    found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    if found != FORMAT:
        raise CheckpointError(f"{where}: format is {found!r}, expected {FORMAT!r}")
    if meta.get("meta_sha256") != _body_sha(meta):
        raise CheckpointError(f"{where}: the metadata's checksum does not match its contents")
    npz = path.with_name(meta["arrays"])
    try:
        payload = npz.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{where}: arrays file {npz.name} is missing ({e})") from e
    got = _sha256(payload)
    if got != meta["sha256"]:
        raise CheckpointError(f"{where}: {npz.name} has sha256 {got[:16]}... ({len(payload)} bytes), "
                              f"expected {meta['sha256'][:16]}... (corrupt or truncated)")
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        leaves = []
        for i, info in enumerate(meta["leaves"]):
            a = z[f"leaf_{i:05d}"]
            want = jnp.dtype(info["dtype"])
            leaves.append(a.view(want) if a.dtype != want else a)
        key_data = z["key_data"] if meta.get("has_key") else None
    return Checkpoint(meta, leaves, key_data, path)


def latest(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint of `directory` that verifies, or None when there is none.

    A damaged newer checkpoint (bad checksum, truncated, unreadable) gives a `UserWarning` naming
    it, and the one before is tried.
    """
    for path in reversed(list_checkpoints(directory)):
        try:
            return load(path)
        except CheckpointError as e:
            warnings.warn(f"{e}; falling back to the previous checkpoint", stacklevel=2)
    return None


def restore(ckpt: Checkpoint, target):
    """The checkpoint's arrays as a pytree of `target`'s structure (checked leaf by leaf).

    `target` is a pytree with the structure, shapes and dtypes the arrays must have (concrete
    arrays or `jax.ShapeDtypeStruct` from `jax.eval_shape`).
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    where = f"checkpoint.restore: {ckpt.path}"
    if len(flat) != len(ckpt.leaves):
        raise CheckpointError(f"{where}: holds {len(ckpt.leaves)} arrays, expected {len(flat)} "
                              f"(the target's leaves); was it written by another model or optimizer?")
    out = []
    for (p, leaf), a, info in zip(flat, ckpt.leaves, ckpt.meta["leaves"], strict=True):
        name = leaf_name(p)
        if info["path"] != name:
            raise CheckpointError(f"{where}: leaf {len(out)} is {info['path']!r}, expected {name!r}")
        if tuple(a.shape) != tuple(leaf.shape) or a.dtype != leaf.dtype:
            raise CheckpointError(f"{where}: {name} is {a.dtype}{list(a.shape)}, expected "
                                  f"{leaf.dtype}{list(leaf.shape)}")
        out.append(jnp.asarray(a))
    return jax.tree_util.tree_unflatten(treedef, out)


def restore_key(ckpt: Checkpoint):
    """The run's key saved in `ckpt` (typed if it was typed), or None."""
    if ckpt.key_data is None:
        return None
    impl = ckpt.meta.get("key_impl")
    data = jnp.asarray(ckpt.key_data)
    return jax.random.wrap_key_data(data, impl=impl) if impl else data

"""Checkpoints of a training run: written atomically, checksummed, never pickled, one writer at a time.

A checkpoint is two files in one folder, numbered by the epoch it ends::

    ckpt-000012.npz    the arrays: every leaf of the pytree (a `TrainState`: params, model state,
                       optimizer state) as ``leaf_00000, leaf_00001, ...``, and the run's RNG key data
    ckpt-000012.json   what the arrays mean: the format and its `VERSION`, each leaf's tree path,
                       shape and dtype, the key's implementation, step and epoch, the history so far,
                       the run's record and its digest ``run_id``, the sha256 of the .npz file and of
                       the JSON body itself

`save` writes any pytree: `fit` gives its epoch, step, key, history and run record (the model, the
optimizer, the data, the settings: see `fnn.train`); a bare pytree needs none of them and is numbered
one past the newest checkpoint in the folder. `load` reads both kinds (one format); what a checkpoint
lacks for `fit` to continue it is `fit`'s error to report. The tree *structure* is not stored as
code: `restore` rebuilds it from a `target` pytree of the same structure (``init_train_state`` or its
`jax.eval_shape`) and checks every leaf's path, shape and dtype, so an optax state comes back as the
very same types. Nothing is ever unpickled (``np.load(allow_pickle=False)``); the metadata is checked
field by field (an unknown or missing `version` is an error, not a `KeyError`).

Writes are atomic: each file goes to a temporary file in the same folder, is fsynced and renamed with
`os.replace`, then the folder is fsynced; the .npz is written first and the .json last, so a
checkpoint exists only once its .json does. One process writes into a folder at a time: `save` (and
`fit`, for its whole run) holds the folder's `fnn.files.FolderLock`; a second writer gets a clear
error, a lock left by a dead process is taken over with a warning, and only then are ``.part`` files
left by a dead writer deleted. `save` keeps the newest `keep` checkpoints *of the same run* (same
``run_id``): it never deletes the one it just wrote, another run's files, or a file it cannot read.
`latest` verifies both checksums and, when the newest checkpoint is damaged, warns and falls back to
the one before; when every one is damaged it raises, naming each file and what is wrong with it, and
leaves them all in place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._checks import check_int, check_positive_int
from fnn.files import FolderLock, fsync_dir, write_atomic

__all__ = ["Checkpoint", "CheckpointError", "FORMAT", "VERSION", "latest", "leaf_name", "list_checkpoints",
           "load", "restore", "restore_key", "run_id", "save"]

FORMAT = "fnn-checkpoint"
VERSION = 2          # 2: the run record and run_id; a bare pytree's epoch and step may be null
READABLE = (1, 2)    # version 1 lacks the run record, which fit then cannot check (it warns)
_NAME = re.compile(r"^ckpt-(\d{6,})\.json$")
_ARRAYS = re.compile(r"ckpt-\d{6,}\.npz")


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


def run_id(run: dict | None) -> str | None:
    """The digest of a run record (16 hex digits): checkpoints with the same one belong to one run."""
    return None if run is None else _sha256(json.dumps(run, sort_keys=True).encode())[:16]


def _key_parts(key) -> tuple[np.ndarray | None, str | None]:
    """(raw key data, implementation name) of a typed key; (the array, None) for a legacy uint32 key."""
    if key is None:
        return None, None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
    return np.asarray(key), None


def _jsonable(x, where: str):
    """`x` with numpy/JAX scalars and arrays as Python numbers and lists, or a clear TypeError."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(x).tolist()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"checkpoint.save: {where} is a {type(x).__name__}, expected numbers, strings, "
                    f"lists, dicts or arrays (JSON-able)")


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The .json files of `directory`'s checkpoints, oldest first (by number)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(directory: str | os.PathLike, tree, *, epoch: int | None = None, step: int | None = None,
         key=None, history: dict | None = None, config: dict | None = None, run: dict | None = None,
         keep: int | None = 3) -> Path:
    """Write `tree` (any pytree of arrays, e.g. a `TrainState`) as a checkpoint in `directory`.

    Args:
      directory: the checkpoint folder, created if missing. Held with `fnn.files.FolderLock` while
        writing (`FolderLockedError` when another live process writes there).
      tree: the pytree to save; its leaves are copied to the host.
      epoch: the epoch this checkpoint ends, its number (``ckpt-<epoch>``); None numbers it one
        past the newest checkpoint in the folder (a bare pytree).
      step: the steps done, or None.
      key: the run's base `jax.random` key (typed or legacy uint32), saved as its raw data.
      history: training history (numbers, numpy or JAX scalars and arrays, lists, dicts), saved as JSON.
      config: JSON-able settings of your own, restored as they were.
      run: the record of the run this checkpoint belongs to (`fit` writes its model, optimizer, data
        and settings); its digest `run_id` groups checkpoints for pruning.
      keep: how many checkpoints of this run to keep (the newest); ``None`` keeps all.

    Returns:
      The path of the checkpoint's .json file.
    """
    keep = check_positive_int("checkpoint.save", "keep", keep, or_none=True)
    if epoch is not None:
        epoch = check_int("checkpoint.save", "epoch", epoch, 0)
    if step is not None:
        step = check_int("checkpoint.save", "step", step, 0)
    meta_rest = {"history": _jsonable(history or {}, "history"), "config": _jsonable(config or {}, "config"),
                 "run": None if run is None else _jsonable(run, "run")}
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"checkpoint.save: {directory} is a file, expected a folder for the checkpoints")
    with FolderLock(directory, "checkpoint.save"):
        for stale in directory.glob(".ckpt-*.part"):  # left by a writer that died: we hold the lock
            stale.unlink(missing_ok=True)
        number = epoch if epoch is not None else 1 + max(
            (int(_NAME.match(p.name).group(1)) for p in list_checkpoints(directory)), default=0)
        stem = f"ckpt-{number:06d}"
        payload, leaves_meta, key_impl, has_key = _arrays(tree, key)
        meta = {"format": FORMAT, "version": VERSION, "epoch": epoch, "step": step, "arrays": f"{stem}.npz",
                "sha256": _sha256(payload), "leaves": leaves_meta, "key_impl": key_impl, "has_key": has_key,
                **meta_rest, "run_id": run_id(meta_rest["run"])}
        meta["meta_sha256"] = _body_sha(meta)
        write_atomic(directory / f"{stem}.npz", payload)
        write_atomic(directory / f"{stem}.json", (json.dumps(meta, indent=1) + "\n").encode())
        fsync_dir(directory)
        if keep is not None:
            _prune(directory, directory / f"{stem}.json", meta["run_id"], keep)
    return directory / f"{stem}.json"


def _arrays(tree, key) -> tuple[bytes, list[dict], str | None, bool]:
    """The .npz bytes of `tree`'s leaves (and the key), the leaves' metadata, the key's impl."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    for p, leaf in flat:
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if not (jnp.issubdtype(dtype, jnp.number) or dtype == np.bool_):
            hint = (" (save jax.random.key_data(key), or pass the run's key as key=)"
                    if jnp.issubdtype(dtype, jax.dtypes.prng_key) else "")
            raise TypeError(f"checkpoint.save: leaf {leaf_name(p) or '(the tree)'} is a {type(leaf).__name__} "
                            f"of dtype {dtype}, expected an array of numbers{hint}")
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
    return buf.getvalue(), leaves_meta, key_impl, key_data is not None


def _prune(directory: Path, written: Path, run: str | None, keep: int) -> None:
    """Delete the oldest checkpoints of run `run` beyond `keep`: never `written`, never a checkpoint
    of another run or one whose metadata cannot be read."""
    ours = []
    for path in list_checkpoints(directory):
        try:
            same = path != written and json.loads(path.read_text()).get("run_id") == run
        except (OSError, ValueError, AttributeError):
            same = False
        if same:
            ours.append(path)
    for old in ours[: max(0, len(ours) - (keep - 1))]:
        old.with_suffix(".npz").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    fsync_dir(directory)


def load(path: str | os.PathLike) -> Checkpoint:
    """Read and verify one checkpoint (its .json, or its .npz); `CheckpointError` names the file and
    what is wrong: unreadable, another format, an unknown version, a bad checksum, a missing field."""
    path = Path(path)
    if path.suffix == ".npz":
        path = path.with_suffix(".json")
    where = f"checkpoint.load: {path}"
    if path.is_dir():
        raise CheckpointError(f"{where} is a folder, expected a checkpoint's .json file "
                              f"(checkpoint.latest(folder) gives the newest one)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{where}: unreadable metadata ({type(e).__name__}: {e})") from e
    found = meta.get("format") if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"
    if found != FORMAT:
        raise CheckpointError(f"{where}: format is {found!r}, expected {FORMAT!r}")
    version = meta.get("version")
    if version not in READABLE or isinstance(version, bool):
        what = "has no format version" if version is None else f"has format version {version!r}"
        raise CheckpointError(f"{where} {what}, expected one of {READABLE} (written by another "
                              f"version of fnn?)")
    if meta.get("meta_sha256") != _body_sha(meta):
        raise CheckpointError(f"{where}: the metadata's checksum does not match its contents")
    _check_fields(meta, where)
    npz = path.with_name(meta["arrays"])
    try:
        payload = npz.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{where}: arrays file {npz.name} is missing ({e})") from e
    got = _sha256(payload)
    if got != meta["sha256"]:
        raise CheckpointError(f"{where}: {npz.name} has sha256 {got[:16]}... ({len(payload)} bytes), "
                              f"expected {meta['sha256'][:16]}... (corrupt or truncated)")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            leaves = [_leaf(z[f"leaf_{i:05d}"], info, f"{where}: {npz.name}")
                      for i, info in enumerate(meta["leaves"])]
            key_data = z["key_data"] if meta["has_key"] else None
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{where}: {npz.name} does not hold the arrays its metadata lists "
                              f"({type(e).__name__}: {e})") from e
    return Checkpoint(meta, leaves, key_data, path)


def _check_fields(meta: dict, where: str) -> None:
    """Every field `load` and `fit` read, of the type they expect (a clear error, not a KeyError)."""
    def bad(field, expected):
        found = meta.get(field, "missing")
        raise CheckpointError(f"{where}: field {field!r} is {str(found)[:80]!r}, expected {expected}")
    if not isinstance(meta.get("arrays"), str) or not _ARRAYS.fullmatch(meta["arrays"]):
        bad("arrays", "the name of its .npz file (ckpt-NNNNNN.npz) in the same folder")
    if not isinstance(meta.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]):
        bad("sha256", "64 hex digits")
    leaves = meta.get("leaves")
    if not isinstance(leaves, list) or not all(
            isinstance(i, dict) and isinstance(i.get("path"), str) and isinstance(i.get("dtype"), str)
            and isinstance(i.get("shape"), list) and all(type(d) is int and d >= 0 for d in i["shape"])
            for i in leaves):
        bad("leaves", "a list of {path, shape, dtype}")
    if not isinstance(meta.get("has_key"), bool):
        bad("has_key", "true or false")
    for field in ("epoch", "step"):
        if meta.get(field) is not None and (type(meta[field]) is not int or meta[field] < 0):
            bad(field, "an integer >= 0 or null")
    for field in ("history", "config"):
        if not isinstance(meta.get(field, {}), dict):
            bad(field, "a JSON object")
    if not isinstance(meta.get("run"), (dict, type(None))):
        bad("run", "a JSON object or null")


def _leaf(a: np.ndarray, info: dict, where: str) -> np.ndarray:
    """A leaf as saved (bfloat16 & co. were stored as unsigned ints), checked against its metadata."""
    try:
        want = jnp.dtype(info["dtype"])
    except TypeError:
        want = None
    if want is None or not (jnp.issubdtype(want, jnp.number) or want == np.bool_):
        raise CheckpointError(f"{where}: leaf {info['path']} has dtype {info['dtype']!r}, expected a numeric dtype")
    if np.dtype(want.str) != want and a.dtype == np.dtype(f"u{want.itemsize}"):
        a = a.view(want)  # bfloat16 & co. were stored as unsigned integers of their size
    if a.dtype != want or list(a.shape) != info["shape"]:
        raise CheckpointError(f"{where}: leaf {info['path']} is {a.dtype}{list(a.shape)}, its metadata "
                              f"says {info['dtype']}{info['shape']}")
    return a


def latest(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint of `directory` that verifies, or None when the folder holds none.

    A damaged newer checkpoint (bad checksum, truncated, unreadable) gives a `UserWarning` naming
    it, and the one before is tried. When every checkpoint is damaged, `CheckpointError` names each
    file and what is wrong with it; the files are left in place.
    """
    failures = []
    for path in reversed(list_checkpoints(directory)):
        try:
            ckpt = load(path)
        except CheckpointError as e:
            failures.append(str(e))
            continue
        for failure in failures:
            warnings.warn(f"{failure}; falling back to the previous checkpoint", stacklevel=2)
        return ckpt
    if failures:
        raise CheckpointError(f"checkpoint.latest: every checkpoint in {directory} is damaged; they were "
                              f"left in place:\n  " + "\n  ".join(failures))
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

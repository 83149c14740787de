"""fnn.checkpoint and fit's checkpoints: atomic, checksummed, resumed bit for bit, even after SIGKILL."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import checkpoint, train
from fnn.models import mlp
from fnn.step import init_train_state
from fnn.train import Checkpoints
from fnn.train import _Run as Run

from .test_train import _blobs

MODEL = mlp.model(5, [8], 3, weight_init=0.3, dtype=jnp.float64)
OPT = optax.adam(0.01)  # one object, so fit's compiled epochs are shared between the tests
KW = {"batch_size": 10, "progress": False}


def _bits_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(la, lb, strict=True))


def test_save_load_restore_round_trip_keeps_every_bit_and_type(tmp_path):
    ts = init_train_state(MODEL, OPT, jax.random.key(1))
    key = jax.random.key(42)
    path = checkpoint.save(tmp_path, ts, epoch=3, step=27, key=key, history={"epoch": [1, 2, 3]},
                           config={"batch_size": 10})
    ck = checkpoint.load(path)
    back = checkpoint.restore(ck, jax.eval_shape(lambda: ts))
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(ts)  # optax NamedTuples
    assert _bits_equal(back, ts)
    assert ck.meta["epoch"] == 3 and ck.meta["step"] == 27 and ck.meta["history"]["epoch"] == [1, 2, 3]
    assert _bits_equal(jax.random.key_data(checkpoint.restore_key(ck)), jax.random.key_data(key))
    assert not list(tmp_path.glob("*.part")), "no temporary files left behind"
    with np.load(tmp_path / "ckpt-000003.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == {f"leaf_{i:05d}" for i in range(len(ck.leaves))} | {"key_data"}


def test_bfloat16_leaves_survive(tmp_path):
    tree = {"W": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3) / 3}
    back = checkpoint.restore(checkpoint.load(checkpoint.save(tmp_path, tree, epoch=1, step=1)), tree)
    assert back["W"].dtype == jnp.bfloat16 and _bits_equal(back, tree)


def test_keeps_the_newest_k(tmp_path):
    for e in range(1, 6):
        checkpoint.save(tmp_path, {"a": jnp.ones(2) * e}, epoch=e, step=e, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["ckpt-000004.json", "ckpt-000005.json"]
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["ckpt-000004.npz", "ckpt-000005.npz"]


@pytest.mark.parametrize("damage", ["truncate_npz", "flip_npz_byte", "delete_npz", "truncate_json",
                                    "edit_json"])
def test_a_damaged_newest_checkpoint_warns_and_falls_back(tmp_path, damage):
    for e in (1, 2):
        checkpoint.save(tmp_path, {"a": jnp.full(100, float(e))}, epoch=e, step=e)
    npz, js = tmp_path / "ckpt-000002.npz", tmp_path / "ckpt-000002.json"
    if damage == "truncate_npz":
        npz.write_bytes(npz.read_bytes()[:-50])
    elif damage == "flip_npz_byte":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0x01
        npz.write_bytes(bytes(data))
    elif damage == "delete_npz":
        npz.unlink()
    elif damage == "truncate_json":
        js.write_text(js.read_text()[:40])
    else:  # a bit-rotted number that still parses
        js.write_text(js.read_text().replace('"step": 2', '"step": 3'))
    with pytest.raises(checkpoint.CheckpointError, match="ckpt-000002"):
        checkpoint.load(js)
    with pytest.warns(UserWarning, match="ckpt-000002.*falling back"):
        ck = checkpoint.latest(tmp_path)
    assert ck.meta["epoch"] == 1
    assert float(checkpoint.restore(ck, {"a": jnp.zeros(100)})["a"][0]) == 1.0


def test_restore_names_the_mismatched_leaf(tmp_path):
    ts = init_train_state(MODEL, OPT, jax.random.key(0))
    ck = checkpoint.load(checkpoint.save(tmp_path, ts, epoch=1, step=1))
    other = init_train_state(mlp.model(5, [9], 3, dtype=jnp.float64), OPT, jax.random.key(0))
    match = r"params/W1 is float64\[5, 8\], expected float64\[5, 9\]"
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.restore(ck, other)


def test_fit_resumes_bit_for_bit_in_process(tmp_path):
    data = _blobs()
    ref, h_ref = train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=4, **KW)
    train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=2, checkpoints=tmp_path, **KW)
    ts, h = train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=4,
                      checkpoints=Checkpoints(tmp_path, resume=True), **KW)
    assert _bits_equal(ts, ref)
    for k in ("epoch", "step", "step_loss", "train_loss", "test_acc", "test_loss"):
        assert h[k] == h_ref[k], k
    # resuming a finished run returns its state without training
    again, h2 = train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=4,
                          checkpoints=Checkpoints(tmp_path, resume=True), **KW)
    assert _bits_equal(again, ref) and h2["step_loss"] == h_ref["step_loss"]


def test_fit_resume_refuses_other_settings(tmp_path):
    data = _blobs()
    train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=1, checkpoints=tmp_path, **KW)
    with pytest.raises(checkpoint.CheckpointError, match="batch_size is 15, but the run in .* used 10"):
        train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=2,
                  checkpoints=Checkpoints(tmp_path, resume=True), batch_size=15, progress=False)


def test_ctrl_c_writes_a_checkpoint_then_reraises(tmp_path, monkeypatch):
    data = _blobs()
    real, calls = Run.record, []

    def record(self, *args):  # Ctrl-C right after epoch 2 was recorded (every=5: nothing saved yet)
        real(self, *args)
        calls.append(self.epoch)
        if self.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Run, "record", record)
    with pytest.warns(UserWarning, match="interrupted after epoch 2"), pytest.raises(KeyboardInterrupt):
        train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=4, checkpoints=Checkpoints(tmp_path, every=5), **KW)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["ckpt-000002.json"]
    monkeypatch.setattr(Run, "record", real)
    ts, _ = train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=4,
                      checkpoints=Checkpoints(tmp_path, resume=True), **KW)
    ref, _ = train.fit(MODEL, OPT, data, key=jax.random.key(3), epochs=4, **KW)
    assert _bits_equal(ts, ref)


# ---------------------------------------------------------------------------------------------
# SIGKILL at a random moment, resume, compare with an uninterrupted run: bit for bit.
# ---------------------------------------------------------------------------------------------

CHILD = textwrap.dedent('''
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import optax
    from fnn import train
    from fnn.models import mlp

    ckpt_dir, out, epochs = sys.argv[1] or None, sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (4, 16))
    t = rng.integers(0, 4, 300).astype(np.int32)
    x = centers[t] + rng.normal(0, 1, (300, 16))
    data = (x[:200], t[:200]), (x[200:], t[200:])
    model = mlp.model(16, [32], 4, dtype=jnp.float64)
    ts, history = train.fit(model, optax.adam(3e-3), data, key=jax.random.key(11), epochs=epochs,
                            batch_size=20, eval_batch_size=100, progress=False,
                            checkpoints=ckpt_dir and train.Checkpoints(ckpt_dir, resume=True))
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(ts)]
    np.savez(out, *leaves, step_loss=np.asarray(history["step_loss"]))
''')
EPOCHS = 30


def _child(script, ckpt_dir, out):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, str(script), str(ckpt_dir or ""), str(out), str(EPOCHS)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _newest_epoch(ckpt_dir) -> int:
    found = checkpoint.list_checkpoints(ckpt_dir)
    return int(found[-1].stem.split("-")[1]) if found else 0


def test_sigkill_at_a_random_step_then_resume_gives_the_same_bits(tmp_path):
    rnd = random.Random()  # a different moment every run; printed for reproduction
    kill_after, delay = rnd.randint(1, EPOCHS // 2), rnd.uniform(0.0, 0.05)
    print(f"killing after checkpoint {kill_after} + {delay * 1e3:.0f} ms")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ckpt = tmp_path / "ckpt"
    reference = _child(script, None, tmp_path / "reference.npz")  # runs alongside
    victim = _child(script, ckpt, tmp_path / "never.npz")
    deadline = time.monotonic() + 600  # a loaded machine starts JAX slowly
    while _newest_epoch(ckpt) < kill_after and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    assert victim.poll() is None, "the run ended before it could be killed: " + victim.stdout.read().decode()
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = _newest_epoch(ckpt)
    assert 1 <= killed_at < EPOCHS and not (tmp_path / "never.npz").exists()

    resumed = _child(script, ckpt, tmp_path / "resumed.npz")
    for proc in (resumed, reference):
        output = proc.communicate(timeout=600)[0].decode()
        assert proc.returncode == 0, output
    with np.load(tmp_path / "reference.npz") as a, np.load(tmp_path / "resumed.npz") as b:
        assert a.files == b.files
        for name in a.files:
            assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name
    last = json.loads(checkpoint.list_checkpoints(ckpt)[-1].read_text())
    assert last["epoch"] == EPOCHS and len(last["history"]["epoch"]) == EPOCHS


# ---------------------------------------------------------------------------------------------
# A folder belongs to one run: what happens to the files (the errors: test_bad_checkpoints.py).
# ---------------------------------------------------------------------------------------------


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith("ckpt-")}


def test_a_refused_fresh_run_leaves_the_other_runs_files_as_they_were(tmp_path):
    train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=4, checkpoints=tmp_path, **KW)
    before = _snapshot(tmp_path)
    assert list(before) == [f"ckpt-00000{e}.{s}" for e in (2, 3, 4) for s in ("json", "npz")]
    with pytest.raises(checkpoint.CheckpointError, match="already holds 3 checkpoint"):
        train.fit(MODEL, optax.sgd(0.1), _blobs(), key=jax.random.key(3), epochs=1, checkpoints=tmp_path, **KW)
    assert _snapshot(tmp_path) == before


def test_pruning_keeps_each_runs_newest_and_never_touches_another_run(tmp_path):
    tree = {"a": jnp.ones(2)}
    for e in (7, 8, 9):  # another run, further along
        checkpoint.save(tmp_path, tree, epoch=e, step=e, run={"name": "other"}, keep=3)
    others = _snapshot(tmp_path)
    for e in (1, 2, 3, 4):
        path = checkpoint.save(tmp_path, tree, epoch=e, step=e, run={"name": "mine"}, keep=2)
        assert path.exists(), "the checkpoint just written is never pruned"
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["ckpt-000003.json", "ckpt-000004.json", "ckpt-000007.json", "ckpt-000008.json",
                     "ckpt-000009.json"]
    assert {k: v for k, v in _snapshot(tmp_path).items() if k in others} == others
    assert checkpoint.load(tmp_path / "ckpt-000004.json").meta["run_id"] == checkpoint.run_id({"name": "mine"})


def test_a_bare_pytree_is_saved_without_epoch_or_step_and_loads_with_the_same_load(tmp_path):
    first = checkpoint.save(tmp_path, {"W": jnp.arange(3.0)})
    second = checkpoint.save(tmp_path, {"W": jnp.arange(3.0) * 2})
    assert (first.name, second.name) == ("ckpt-000001.json", "ckpt-000002.json")
    ck = checkpoint.load(second)
    assert ck.meta["epoch"] is None and ck.meta["step"] is None and ck.meta["run"] is None
    assert checkpoint.restore(ck, {"W": jnp.zeros(3)})["W"].tolist() == [0.0, 2.0, 4.0]
    assert checkpoint.latest(tmp_path).path == second
    assert checkpoint.load(second.with_suffix(".npz")).path == second  # either file names the checkpoint


def test_fit_checkpoints_load_with_checkpoint_load(tmp_path):
    ts, _ = train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=2, checkpoints=tmp_path, **KW)
    ck = checkpoint.load(tmp_path / "ckpt-000002.json")
    assert ck.meta["version"] == checkpoint.VERSION and ck.meta["epoch"] == 2 and ck.meta["step"] == 18
    run = ck.meta["run"]
    assert run["model"] == MODEL.name and run["batch_size"] == 10 and run["grad"] == "autodiff"
    assert ["scale_by_adam.b1", 0.9] in run["optimizer"] and ["scale.step_size", -0.01] in run["optimizer"]
    assert run["train_data"]["x"] == "float64[90, 5]" and len(run["train_data"]["sha256"]) == 64
    assert _bits_equal(checkpoint.restore(ck, jax.eval_shape(lambda: ts)), ts)


def test_numpy_and_jax_numbers_in_the_history_are_saved(tmp_path):
    history = {"loss": [np.float32(0.5), jnp.float64(0.25)], "n": np.int64(3), "acc": np.array([0.5, 1.0])}
    ck = checkpoint.load(checkpoint.save(tmp_path, {"a": jnp.ones(1)}, epoch=1, step=1, history=history))
    assert ck.meta["history"] == {"loss": [0.5, 0.25], "n": 3, "acc": [0.5, 1.0]}


def _hold_lock_and_die(folder):
    code = f"import os\nfrom fnn.files import FolderLock\nFolderLock({str(folder)!r}, 'fit').__enter__()\nos._exit(0)\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_lock_left_by_a_dead_writer_is_taken_over_with_a_warning(tmp_path):
    _hold_lock_and_die(tmp_path)
    assert "pid" in (tmp_path / ".writer.lock").read_text()
    (tmp_path / ".ckpt-000009.npz.abc.part").write_bytes(b"half a file of the writer that died")
    with pytest.warns(UserWarning, match=r"took over the writer lock left by a process that is no longer "
                                         r"running \(pid \d+ on host .*, fit since"):
        checkpoint.save(tmp_path, {"a": jnp.ones(1)}, epoch=1, step=1)
    assert not (tmp_path / ".ckpt-000009.npz.abc.part").exists()  # the dead writer's leftovers go
    assert (tmp_path / ".writer.lock").read_text() == ""  # released


def test_a_live_writers_part_files_are_never_deleted(tmp_path):
    import fcntl

    from fnn.files import FolderLockedError

    part = tmp_path / ".ckpt-000009.npz.abc.part"
    part.write_bytes(b"being written")
    with open(tmp_path / ".writer.lock", "w") as f:  # another writer, alive
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FolderLockedError, match="another process is writing here"):
            checkpoint.save(tmp_path, {"a": jnp.ones(1)}, epoch=1, step=1)
        with pytest.raises(FolderLockedError):
            train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=1, checkpoints=tmp_path, **KW)
    assert part.read_bytes() == b"being written" and not checkpoint.list_checkpoints(tmp_path)


def test_fit_holds_the_lock_for_its_run_and_releases_it_after_an_error(tmp_path):
    from fnn.files import FolderLock

    seen = []
    real = Run.record

    def record(self, *args):
        real(self, *args)
        seen.append(FolderLock.holds(tmp_path))
        raise RuntimeError("stop")

    Run.record = record
    try:
        with pytest.raises(RuntimeError, match="stop"):
            train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=2, checkpoints=tmp_path, **KW)
    finally:
        Run.record = real
    assert seen == [True] and not FolderLock.holds(tmp_path)
    with FolderLock(tmp_path):  # free for the next writer
        pass


def test_fit_says_where_it_resumed(tmp_path, capsys, caplog):
    train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=1, checkpoints=tmp_path, **KW)
    with caplog.at_level("INFO", logger="fnn"):
        train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=2, batch_size=10, progress=True,
                  checkpoints=Checkpoints(tmp_path, resume=True))
    expected = f"fit: resumed from epoch 1 ({tmp_path / 'ckpt-000001.json'})"
    assert expected in capsys.readouterr().err
    assert expected in caplog.text


def test_a_version_1_checkpoint_resumes_with_a_warning(tmp_path):
    """Checkpoints written before the run record: their config is checked, the rest cannot be."""
    train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=2, checkpoints=tmp_path, **KW)
    for path in checkpoint.list_checkpoints(tmp_path):
        meta = json.loads(path.read_text())
        meta.update(version=1, config={"model": MODEL.name, "batch_size": 10, "grad": "autodiff",
                                       "train_size": 90})
        for field in ("run", "run_id"):
            del meta[field]
        meta["meta_sha256"] = checkpoint._body_sha(meta)
        path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"older fnn \(checkpoint version 1\).*not the optimizer or the data"):
        ts, _ = train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=3,
                          checkpoints=Checkpoints(tmp_path, resume=True), **KW)
    ref, _ = train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=3, **KW)
    assert _bits_equal(ts, ref)
    path = checkpoint.list_checkpoints(tmp_path)[0]
    for p in checkpoint.list_checkpoints(tmp_path)[1:]:  # leave only a version-1 checkpoint
        p.unlink()
    with pytest.raises(checkpoint.CheckpointError, match="batch_size is 15, but the run in .* used 10"), \
            pytest.warns(UserWarning, match="version 1"):
        train.fit(MODEL, OPT, _blobs(), key=jax.random.key(3), epochs=3, batch_size=15, progress=False,
                  checkpoints=Checkpoints(tmp_path, resume=True))
    assert path.exists()

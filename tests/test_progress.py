"""fnn.progress: a bar on a terminal, one plain line per epoch in a log (never a carriage return),
for fit, fit_many and fit_lm; the numbers do not depend on it."""

import io
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import lm, multi, optim, progress, train
from fnn.data.corpus import generated_corpus
from fnn.models import mlp, rnnlm


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_mode_follows_the_stream_and_fnn_progress(monkeypatch):
    monkeypatch.delenv("FNN_PROGRESS", raising=False)
    assert progress.mode(file=io.StringIO()) == "log"
    assert progress.mode(file=_Terminal()) == "bar"
    assert progress.mode(False, file=_Terminal()) == "off"
    for forced in progress.MODES:
        monkeypatch.setenv("FNN_PROGRESS", forced)
        assert progress.mode(file=io.StringIO()) == forced
    assert progress.mode(False) == "off"  # progress=False wins over the variable


def test_a_log_gets_one_line_per_epoch_and_heartbeats_only_within(monkeypatch):
    monkeypatch.delenv("FNN_PROGRESS", raising=False)
    out = io.StringIO()
    with progress.bar(4, desc="run", file=out) as p:
        for e in range(4):
            p.update(0, line=False, loss=1.0)  # within the epoch: no line before the 30-s heartbeat
            p.update(loss=0.5 / (e + 1), acc=0.25 * e)
        p.write("a message")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 5 and lines[-1] == "a message"
    assert re.fullmatch(r"run: epoch 1/4  loss=0\.5000 acc=0\.0000  \[\d+\.\d s\]", lines[0]), lines[0]
    assert lines[3].startswith("run: epoch 4/4  loss=0.1250 acc=0.7500")


def test_off_writes_nothing():
    out = _Terminal()
    with progress.bar(3, desc="run", file=out, enabled=False) as p:
        p.update(loss=1.0)
        p.write("resumed")
    assert out.getvalue() == ""


def _blobs(N=60, D=4, C=3):
    x = jax.random.normal(jax.random.key(0), (N, D))
    return x, jnp.argmax(x[:, :C], axis=1)


MODEL = mlp.model(4, [6], 3, weight_init=0.3, dtype=jnp.float64)


def _epoch_lines(err: str, desc: str) -> list[str]:
    assert "\r" not in err
    return [line for line in err.splitlines() if line.startswith(f"{desc}: ")]


def test_fit_logs_one_line_per_epoch(monkeypatch, capsys):
    monkeypatch.setenv("FNN_PROGRESS", "log")
    x, t = _blobs()
    _, h = train.fit(MODEL, optax.adam(0.01), ((x, t), (x, t)), key=jax.random.key(0), epochs=3,
                     batch_size=20, desc="blobs")
    lines = _epoch_lines(capsys.readouterr().err, "blobs")
    assert [line.split("  ")[0] for line in lines] == [f"blobs: epoch {e}/3" for e in (1, 2, 3)]
    assert f"test_acc={h['test_acc'][-1]:.4f}" in lines[-1]


def test_fit_many_logs_its_epochs_and_the_numbers_do_not_change(monkeypatch, capsys):
    monkeypatch.setenv("FNN_PROGRESS", "log")
    x, t = _blobs()
    keys = jax.random.split(jax.random.key(1), 2)
    kw = {"epochs": 3, "batch_size": 20, "eval_data": {"val": (x, t)}}
    _, shown = multi.fit_many(MODEL, optim.sgd(0.1), (x, t), keys, desc="two", **kw)
    lines = _epoch_lines(capsys.readouterr().err, "two")
    assert [line.split("  ")[0] for line in lines] == [f"two: epoch {e}/3" for e in (1, 2, 3)]
    assert f"val_acc={float(np.mean(shown['val_acc'][:, -1])):.4f}" in lines[-1]
    _, quiet = multi.fit_many(MODEL, optim.sgd(0.1), (x, t), keys, progress=False, **kw)
    assert capsys.readouterr().err == ""
    for k in ("step_loss", "val_acc", "val_loss"):
        np.testing.assert_array_equal(shown[k], quiet[k])


def test_fit_many_calls_the_host_at_most_progress_calls_times(monkeypatch):
    x, t = _blobs()
    seen = []
    run = multi.make_fit_many(MODEL, optim.sgd(0.1), epochs=45, batch_size=30, eval_names=("val",),
                              on_epoch=lambda e, loss, acc: seen.append(int(e)))
    jax.block_until_ready(run(jax.random.split(jax.random.key(0), 2), jnp.zeros(2), x, t, ((x, t),)))
    jax.effects_barrier()
    every = -(-45 // multi.PROGRESS_CALLS)  # 3
    assert seen == [e for e in range(1, 46) if e % every == 0 or e == 45]


def test_fit_lm_logs_one_line_per_epoch(monkeypatch, capsys):
    monkeypatch.setenv("FNN_PROGRESS", "log")
    corpus, *_ = generated_corpus(600, vocab_size=6)
    _, h = lm.fit_lm(rnnlm.rnnlm(6, 4, 4), optax.adam(0.01), corpus, key=jax.random.key(0), epochs=2,
                     batch_size=5, time_size=10, eval_interval=3, val_corpus=corpus[:400], desc="lm")
    lines = _epoch_lines(capsys.readouterr().err, "lm")
    per_epoch = 599 // 50
    assert [line.split("  ")[0] for line in lines] == [f"lm: step {per_epoch * e}/{2 * per_epoch}" for e in (1, 2)]
    assert "epoch=2" in lines[1] and f"val_ppl={h['val_ppl'][-1]:.4f}" in lines[1]


@pytest.mark.slow  # ~15 s on 2 busy cores
def test_a_quick_experiment_logs_plain_lines_without_a_terminal(tmp_path):
    """`fnn run NAME --quick 2> log`: one line an epoch, no carriage return."""
    env = {k: v for k, v in os.environ.items() if k != "FNN_PROGRESS"}
    proc = subprocess.run([sys.executable, "-m", "fnn.cli", "run", "dlfs2_ch5_simple_rnnlm", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _epoch_lines(proc.stderr, "dlfs2_ch5_simple_rnnlm")
    epochs = [int(re.search(r"epoch=(\d+)", line).group(1)) for line in lines]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 10

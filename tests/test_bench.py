"""Smoke test of scripts/bench.py: tiny shapes, valid JSON and markdown; its NumPy references are right.

The timing itself is not tested (the machine decides it); what is tested is that the benchmark
runs end to end, reports what it promises, says "not available" instead of crashing, counts FLOPs
as documented, and that the NumPy reference it times computes the book's gradients (a numerical
gradient check on small float64 shapes). torch / flax parts run only when installed.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench():
    return importlib.import_module("scripts.bench")


def test_quick_mlp_writes_json_and_markdown(bench, tmp_path):
    impls = ["fnn_manual", "numpy", "jax_ref"]
    if importlib.util.find_spec("torch") is not None:
        impls.append("torch")
    bench.main(["--quick", "--models", "mlp", "--impls", ",".join(impls), "--fresh", "",
                "--out", str(tmp_path)])
    report = json.loads((tmp_path / "bench.json").read_text())
    res = report["models"]["mlp"]
    assert res["train_gflop"] == pytest.approx(3 * bench.forward_flops("mlp", bench.QUICK["mlp"]) / 1e9)
    for impl in impls:
        info = res["impls"][impl]
        assert info["available"], info
        assert info["steps_per_s"]["median"] > 0
        assert len(info["seconds_per_step"]) == 2
        assert np.isfinite(info["loss_after_warmup"])
    assert res["impls"]["matmul_peak"]["steps_per_s"]["median"] > 0
    assert res["ratios"]["fnn_best"] == "fnn_manual"
    assert res["ratios"]["fnn_best/numpy"]["median"] > 0
    assert any(t["target"].startswith("fnn best") for t in res["targets"])
    md = (tmp_path / "bench.md").read_text()
    assert "## mlp" in md and "| fnn_manual |" in md and "| target | clock | measured | met |" in md


def test_missing_module_is_not_available(bench):
    with pytest.raises(bench.UnavailableError, match="not importable"):
        bench._import("fnn.models.no_such_model")


def test_flop_counts(bench):
    want = 2 * 100 * (784 * 100 + 3 * 100 * 100 + 100 * 10)
    assert bench.forward_flops("mlp", bench.CONFIGS["mlp"]) == want
    # SimpleConvNet: conv 30@5x5 on 28x28 -> 24x24, then affine 30*12*12 -> 100 -> 10
    want = 2 * 100 * (24 * 24 * 30 * 25 + 4320 * 100 + 100 * 10)
    assert bench.forward_flops("simple_convnet", bench.CONFIGS["simple_convnet"]) == want
    # LSTM LM: x Wx and h Wh (4H gates), the output projection H x V, every step and sequence
    want = 2 * 20 * 35 * ((100 + 100) * 400 + 100 * 10000)
    assert bench.forward_flops("lstm_lm", bench.CONFIGS["lstm_lm"]) == want


def _numerical_check(net, params, n_entries=4, eps=1e-5):
    """Central differences of net.loss_and_grads()'s loss at a few entries of every parameter.

    Tolerance 1e-3 relative: the book's loss is ``-log(y_t + 1e-7)``, whose exact gradient is not
    quite the ``(y - t) / N`` of its backward (1e-4 relative where y_t ~ 1e-3).
    """
    _, grads = net.loss_and_grads()[:2]
    rng = np.random.default_rng(0)
    for name, p in params.items():
        for idx in rng.integers(0, p.size, n_entries):
            old = p.flat[idx]
            p.flat[idx] = old + eps
            up = net.loss_and_grads()[0]
            p.flat[idx] = old - eps
            down = net.loss_and_grads()[0]
            p.flat[idx] = old
            num = (up - down) / (2 * eps)
            assert grads[name].flat[idx] == pytest.approx(num, rel=1e-3, abs=1e-7), (name, idx)


@pytest.mark.parametrize("model", ["mlp", "simple_convnet", "lstm_lm", "gru_lm"])
def test_numpy_reference_gradients(bench, model):
    bnp = bench.bnp
    cfg = dict(bench.QUICK[model])
    x, t = bench.make_data(model, cfg)
    if model == "mlp":
        net = bnp.mlp(cfg, x.astype(np.float64), t)
    elif model == "simple_convnet":
        net = bnp.convnet(bench.cnn_layers(model, cfg), cfg, x.astype(np.float64), t)
    else:
        net = bnp.RnnLM(cfg, x, t, cfg["family"])
        net.h = net.h + 0.1  # a carried state, as in the middle of a stateful run
        net.h, net.c = net.h.astype(np.float64), (net.c + 0.2).astype(np.float64)
    for k in net.params:
        net.params[k] = net.params[k].astype(np.float64)
        if k.startswith("b") or k.endswith("_b"):
            net.params[k] += 0.01 * np.arange(net.params[k].size)  # nonzero biases
    _numerical_check(net, net.params)


def test_data_parallel_path_needs_two_devices(bench):
    """fnn_*_dp splits the batch over the process's devices; with one there is nothing to split."""
    import jax

    for model in ("mlp", "lstm_lm"):  # the LMs as fnn.lm.fit_lm(devices=n) runs them
        cfg = bench.QUICK[model]
        if jax.device_count() == 1:
            with pytest.raises(bench.UnavailableError, match=rf"1 device\(s\) for a batch of {cfg['batch']}"):
                bench.build(model, cfg, "fnn_manual_dp", *bench.make_data(model, cfg))

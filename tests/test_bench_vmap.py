"""Smoke test of scripts/bench_vmap.py: tiny shapes, valid JSON and markdown, consistent numbers.

The timing itself is not tested (the machine decides it); what is tested is that the benchmark
runs end to end, reports what it promises, and that the vmapped program it times trains the same
model 0 as the one-model program (same key, same data).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench_vmap():
    return importlib.import_module("scripts.bench_vmap")


def test_quick_mlp_writes_json_and_markdown(bench_vmap, tmp_path):
    bench_vmap.main(["--quick", "--models", "mlp", "--grads", "manual", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "bench_vmap.json").read_text())
    K, steps = report["K"], report["steps"]
    (res,) = report["results"]
    assert (res["model"], res["grad"]) == ("mlp", "manual")
    assert set(res["impls"]) == {"k1", f"k{K}", f"loop_k{K}"}
    for info in res["impls"].values():
        assert len(info["seconds_per_call"]) == report["repeats"]
        assert info["samples_per_s_total"] == pytest.approx(info["models"] * info["samples_per_s_per_model"])
        assert info["samples_per_s_per_model"] == pytest.approx(steps * res["batch"] / info["median_s"])
    k1, kK = res["impls"]["k1"]["loss_after_warmup"], res["impls"][f"k{K}"]["loss_after_warmup"]
    assert len(k1) == 1 and len(kK) == K and np.all(np.isfinite(kK))
    assert kK[0] == pytest.approx(k1[0], rel=1e-4)  # model 0 has the same key in both programs
    assert len(set(np.round(kK, 6))) > 1  # the other seeds train differently
    assert res["speedup_vs_K_x_k1"]["median"] > 0 and res["speedup_vs_loop"]["median"] > 0
    md = (tmp_path / "bench_vmap.md").read_text()
    assert "| mlp | manual | k1 |" in md and f"k{K} / ({K} x k1)" in md


def test_unknown_model_is_an_error(bench_vmap):
    with pytest.raises(SystemExit):
        bench_vmap.main(["--quick", "--models", "resnet"])

"""Same seed, same machine, CPU: two runs of an experiment's quick mode give identical bits.

Compared: every number of result.json except the timings (config, metrics, per-epoch history,
every step's loss) and, for ch5_train_neuralnet, the trained parameters in its final checkpoint,
array by array, byte by byte. The runs are in this process (a subprocess each would cost seconds of
imports); each run builds new model and optimizer objects, so fit traces and compiles anew.
"""

import json

import numpy as np

from fnn import checkpoint, cli

RUNS = {  # experiment -> extra arguments that keep it to a second or two
    "ch5_train_neuralnet": ["--steps", "42"],
    "ch4_train_neuralnet": ["--steps", "28"],
}


def _without_timings(x):
    """`x` minus every field that measures time (they differ between any two runs)."""
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items()
                if not any(w in k for w in ("second", "ratio", "created", "versions"))}
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def _run(name, out):
    args = ["run", name, "--quick", "--seed", "3", "--out", str(out), "--no-progress", *RUNS[name]]
    if name == "ch5_train_neuralnet":
        args += ["--checkpoint-dir", str(out / "ckpt")]
    assert cli.main(args) == 0
    return json.loads((out / "result.json").read_text())


def test_two_runs_of_two_experiments_give_identical_bits(tmp_path):
    for name in RUNS:
        a, b = (_run(name, tmp_path / f"{name}-{i}") for i in (1, 2))
        assert a["metrics"] and a["history"]["step_loss"], name
        assert _without_timings(a) == _without_timings(b), name  # exact float equality
    ck = [checkpoint.latest(tmp_path / f"ch5_train_neuralnet-{i}" / "ckpt") for i in (1, 2)]
    assert ck[0].meta["step"] == 42 and ck[0].meta["leaves"] == ck[1].meta["leaves"]
    for x, y in zip(ck[0].leaves, ck[1].leaves, strict=True):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert np.asarray(ck[0].key_data).tobytes() == np.asarray(ck[1].key_data).tobytes()

"""The persistent compilation cache: programs land on disk, and the switches work."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fnn import compile_cache

PROGRAM = textwrap.dedent("""
    import sys
    from fnn import compile_cache
    print(compile_cache.enable())
    import jax, jax.numpy as jnp
    jax.block_until_ready(jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((8, 8))))
""")


def _run(env_value: str, tmp_path: Path) -> str:
    env = {**os.environ, "FNN_COMPILE_CACHE": env_value, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_compiled_programs_are_written_and_read_back(tmp_path):
    folder = tmp_path / "xla"
    assert _run(str(folder), tmp_path) == str(folder)
    entries = sorted(p.name for p in folder.iterdir())
    assert any(name.startswith("jit__lambda") for name in entries), entries
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    _run(str(folder), tmp_path)  # the second process finds every program: nothing new is written
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


@pytest.mark.parametrize("value", ["0", "off", "OFF", "false"])
def test_the_variable_turns_it_off(value, tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_COMPILE_CACHE", value)
    assert compile_cache.directory() is None


def test_enable_does_nothing_when_turned_off(tmp_path):
    assert _run("0", tmp_path) == "None"


def test_default_folder_is_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("FNN_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.directory() == tmp_path / "fnn" / "xla"


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot create the cache folder .*FNN_COMPILE_CACHE"):
        compile_cache.enable(blocker / "xla")


# compile_cache.jit: a program compiled at another XLA optimisation level, top level or nested.

def test_jit_at_a_lower_level_gives_the_same_values_to_rounding_top_level_and_nested():
    """LLVM's code differs by level (contractions, vectorisation): a few values of a random
    draw differ in their last bit, none by more (float64 here)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def draw(key):
        return {"W": jax.random.normal(key, (7, 5)), "b": jnp.zeros(5)}

    want = jax.jit(draw)(jax.random.key(3))
    for level in (0, 1):
        once = compile_cache.jit(draw, level)
        got = {"top": once(jax.random.key(3)),
               "vmap": jax.tree.map(lambda a: a[0], jax.vmap(once)(jax.random.key(3)[None])),
               "jit, concrete key": jax.jit(lambda f=once: f(jax.random.key(3)))()}
        for where, out in got.items():
            for name in want:
                np.testing.assert_allclose(out[name], want[name], rtol=1e-15, atol=1e-300,
                                           err_msg=f"level {level}, {where}")


def test_cpu_options_name_the_level_and_refuse_a_bad_one():
    import jax
    if jax.default_backend() == "cpu":
        assert compile_cache.cpu_options(0) == {"xla_backend_optimization_level": 0}
    with pytest.raises(ValueError, match="level is 4, expected 0, 1, 2 or 3"):
        compile_cache.cpu_options(4)

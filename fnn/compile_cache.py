"""A persistent cache of compiled XLA programs, so a script's second run does not compile again.

A fresh Python process spends most of the seconds before its first training step compiling: the
DeepConvNet step takes about 15 s of XLA compilation on a 2-core CPU, the MLP about 2 s. JAX can keep
what it compiled on disk and load it the next time the same program is built (same shapes, same
jax/jaxlib, same device and flags), which turns those seconds into a file read::

    import fnn.compile_cache
    fnn.compile_cache.enable()          # ~/.cache/fnn/xla, or $FNN_COMPILE_CACHE

The ``fnn`` command enables it for every experiment. ``FNN_COMPILE_CACHE=0`` (or ``off``) turns
it off; any other value of ``FNN_COMPILE_CACHE`` is the folder to use. The folder only ever holds
compiled programs keyed by a hash of the program, the compiler options and the versions, and JAX
does not bound its size: deleting it is always safe and costs one compilation per program.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax

from fnn.files import cache_dir

__all__ = ["OFF", "cpu_options", "directory", "enable", "jit", "jit_once"]

OFF = ("0", "off", "false", "no")


def directory() -> Path | None:
    """The folder `enable` uses by default: ``$FNN_COMPILE_CACHE`` when it names one, else
    ``~/.cache/fnn/xla`` (`fnn.files.cache_dir`); None when the variable turns it off."""
    value = os.environ.get("FNN_COMPILE_CACHE", "").strip()
    if value.lower() in OFF:
        return None
    return Path(value).expanduser() if value else cache_dir("xla")


def enable(path: str | os.PathLike | None = None) -> Path | None:
    """Keep compiled programs in `path` (default: `directory`) and load them from there.

    Every program is kept however quickly it compiled (JAX's default keeps only those over 1 s;
    the many small ones of a fresh process add up to seconds). Returns the folder, or None when
    ``FNN_COMPILE_CACHE`` turns the cache off and no `path` is given. Call it before the first
    `jax.jit` program runs; programs compiled earlier are not written.
    """
    folder = Path(path).expanduser() if path is not None else directory()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"compile_cache.enable: cannot create the cache folder {folder} ({err}); "
                      f"expected a writable folder (set FNN_COMPILE_CACHE to another one, or to 0 "
                      f"to turn the cache off)") from err
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def cpu_options(level: int) -> dict:
    """`jax.jit`'s ``compiler_options`` for XLA's backend optimisation `level` (0-3; XLA's default
    is 3) on CPU, and none on another backend. Most of a fresh process's seconds before its first
    step are LLVM's code generation at level 3, and it buys nothing for a program that runs once:
    DeepConvNet's initialisation (one random draw per layer) compiles in 0.8 s at level 0 instead
    of 5.2 s, to the same values up to rounding (a few differ in their last bit). fnn compiles its
    inits at level 0 and its training scans at level 1 (`fnn.step`, `fnn.multi`; measured in
    docs/SPEED.md)."""
    if not 0 <= level <= 3:
        raise ValueError(f"cpu_options: level is {level!r}, expected 0, 1, 2 or 3")
    return {"xla_backend_optimization_level": level} if jax.default_backend() == "cpu" else {}


def jit(fn, level: int, **kw):
    """`jax.jit(fn, **kw)` compiled at XLA backend optimisation `level` on CPU (`cpu_options`).
    JAX takes compiler options only on a top-level call: inside another trace (`fit_many`'s
    `jax.vmap` over models, a user's `jit`) the call is the plain jitted function's."""
    top, nested = jax.jit(fn, compiler_options=cpu_options(level), **kw), jax.jit(fn, **kw)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves((args, kwargs))):
            return nested(*args, **kwargs)
        try:
            return top(*args, **kwargs)
        except ValueError as e:  # concrete arguments, but inside a trace all the same
            if "compiler_options" not in str(e):
                raise
            return nested(*args, **kwargs)

    return call


def jit_once(fn):
    """`jit` at level 0, for a program that runs once (an initialisation)."""
    return jit(fn, 0)

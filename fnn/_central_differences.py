"""The engine of `fnn.gradient`'s numerical gradient: compiled loops of central differences (DLFS1 §4.4).

`Loops(f, leaves, treedef, counts)` plans one loop per group of leaves: a leaf with at least
`OWN_LOOP` coordinates to check gets its own, in which only that leaf changes, so XLA computes
what comes before it (the layers below) once and not at every step; the other leaves share one
loop over their concatenation (one program to compile, not one per leaf). A loop is a `lax.scan`
over (coordinate, step) pairs, one evaluation of f a step with one element moved by the step
(``chunk=k``: k evaluations at a time under `vmap`); each is compiled once and runs in up to
`BLOCKS` calls of equal length (for the progress bar, and side by side on the cores, one call a
core: an evaluation this small runs on one), and again for `Loops.differences` at other
coordinates or another step h (the step is an argument, not a constant).

When nothing is traced, the bookkeeping (indices, padding, the quotient) happens in NumPy on the
host, so nothing but the loops is compiled. Under an outer `jit`/`vmap` the loops are traced
into the caller's program.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

OWN_LOOP = 4096  # a leaf with at least this many coordinates to check gets its own compiled loop
BLOCKS = 16  # a loop runs in up to this many calls (progress bar, cores); every call has the same length
RECHECK_TOL = 1e-6  # a numerical entry further than this from jax.grad's (relative to the leaf) is rechecked
RECHECK_STEP = 100  # ... with the step h / RECHECK_STEP


class Loops:
    """The compiled central-difference loops of `f` at the point `leaves` (see the module doc).

    `counts[i]`: how many coordinates of leaf i the first call of `differences` checks (it sizes
    the groups and the blocks). `chunk`: evaluations per step (1: a plain scan, fastest on CPU).
    """

    def __init__(self, f, leaves, treedef, counts, *, chunk: int, traced: bool):
        self.f, self.leaves, self.treedef, self.chunk, self.traced = f, leaves, treedef, chunk, traced
        big = [i for i, n in enumerate(counts) if n >= OWN_LOOP]
        rest = [i for i, n in enumerate(counts) if 0 < n < OWN_LOOP]
        self.groups = [[i] for i in big] + ([rest] if rest else [])
        self.block = {}  # group number -> coordinates per call
        self.run = {}    # group number -> the compiled loop

    def prepare(self, indices, h: float, pool) -> None:
        """Trace every loop now and compile it on `pool` (a thread pool: XLA compiles without
        the GIL, so this overlaps other work, such as compiling the exact gradients)."""
        for g, group in enumerate(self.groups):
            if g not in self.run and any(len(indices[i]) for i in group):
                flat, others, args, _ = self._inputs(g, group, indices, h)
                self.run[g] = compile_cpu(self._loop(group), (flat, others, *args[0]), level=1, pool=pool)

    def differences(self, indices, h: float, bar) -> dict:
        """{leaf i: (f(x + h e_k) - f(x - h e_k)) / 2h for k in indices[i]} (flat indices)."""
        out = {}
        for g, group in enumerate(self.groups):
            if any(len(indices[i]) for i in group):
                out.update(self._group(g, group, indices, h, bar))
        return out

    def _inputs(self, g: int, group: list, indices, h: float):
        """The group's flat vector, the other leaves, the calls' (indices, steps), the count."""
        xp = jnp if self.traced else np
        offsets = np.cumsum([0, *(math.prod(jnp.shape(self.leaves[i])) for i in group)])
        coords = np.concatenate([np.asarray(indices[i], np.int64) + o for i, o in zip(group, offsets, strict=False)])
        n = len(coords)
        if g not in self.block:
            self.block[g] = n if self.traced else -(-n // min(BLOCKS, max(1, n // 128)))
        block = self.block[g]
        calls = -(-n // block)
        padded = np.zeros(block * calls, np.int32)  # the padding evaluates coordinate 0, discarded
        padded[:n] = coords
        flat = xp.concatenate([xp.ravel(xp.asarray(self.leaves[i])) for i in group])
        others = [leaf for i, leaf in enumerate(self.leaves) if i not in group]
        steps = np.tile(np.array([h, -h], np.dtype(flat.dtype)), block)  # x + h, then x - h
        args = [(np.repeat(padded[c * block:(c + 1) * block], 2), steps) for c in range(calls)]
        if not self.traced:
            flat = jnp.asarray(flat)
            args = [(jnp.asarray(idx), jnp.asarray(st)) for idx, st in args]
        return flat, others, args, n

    def _group(self, g: int, group: list, indices, h: float, bar) -> dict:
        flat, others, args, n = self._inputs(g, group, indices, h)
        if g not in self.run:
            loop = self._loop(group)
            self.run[g] = loop if self.traced else compile_cpu(loop, (flat, others, *args[0]), level=1)
        if isinstance(self.run[g], Future):
            self.run[g] = self.run[g].result()
        block, run = self.block[g], self.run[g]
        if self.traced:
            losses = [run(flat, others, idx, st) for idx, st in args]
        else:  # the calls run side by side, one a core: XLA:CPU runs one small evaluation on one
            with ThreadPoolExecutor(min(len(args), _cores())) as pool:
                futures = [pool.submit(lambda a=a: jax.block_until_ready(run(flat, others, *a))) for a in args]
                losses = []
                for c, future in enumerate(futures):
                    losses.append(future.result())
                    bar.update(min(block, n - c * block))
        y = (jnp.concatenate(losses) if self.traced else np.concatenate(jax.device_get(losses)))
        y = y[:2 * n].reshape(n, 2)
        diff = (y[:, 0] - y[:, 1]) / (2 * h)
        splits = np.cumsum([len(indices[i]) for i in group])[:-1]
        return dict(zip(group, (jnp if self.traced else np).split(diff, splits), strict=True))

    def _loop(self, group):
        """(flat, others, idx (2B,), steps (2B,)) -> the 2B losses f(x + steps[j] e_idx[j])."""
        shapes = [jnp.shape(self.leaves[i]) for i in group]
        offsets = np.cumsum([0, *(math.prod(s) for s in shapes)])

        def evaluate(flat, others, idx, step):
            moved = flat.at[idx].set(flat[idx] + step)
            rest = iter(others)
            new = [moved[offsets[group.index(i)]:offsets[group.index(i) + 1]].reshape(shapes[group.index(i)])
                   if i in group else next(rest) for i in range(len(self.leaves))]
            return self.f(self.treedef.unflatten(new))

        def loop(flat, others, idx, steps):
            if self.chunk == 1:
                return jax.lax.scan(lambda _, a: (None, evaluate(flat, others, *a)), None, (idx, steps))[1]
            return jax.lax.map(lambda a: evaluate(flat, others, *a), (idx, steps), batch_size=self.chunk)

        return loop


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def compile_cpu(fn, args, level: int, pool=None):
    """`fn` jitted and compiled for `args`; on CPU at LLVM optimisation `level` (0 or 1), which
    compiles a big network 2-3x faster than the default, at the same speed for these programs
    (their time is in matmuls and convolutions, library calls that the level does not touch).
    With a thread `pool`, traced here and compiled there: returns a `Future`."""
    lowered = jax.jit(fn).lower(*args)

    def build():
        if jax.default_backend() == "cpu":
            with contextlib.suppress(Exception):  # an XLA without this option: compile as usual
                return lowered.compile(compiler_options={"xla_backend_optimization_level": level})
        return lowered.compile()

    return build() if pool is None else pool.submit(build)


class Progress:
    """A tqdm bar on a terminal; elsewhere (a log, a pipe) a few plain lines at 25/50/75/100 %.
    Silent for the first `delay` seconds, so a short check prints nothing."""

    def __init__(self, total: int, desc: str, *, enabled: bool, delay: float = 2.0, stream=None):
        self.enabled, self.total, self.desc, self.delay = enabled and total > 0, total, desc, delay
        self.stream = stream or sys.stderr
        self.done, self.start, self.next_mark, self.bar = 0, time.perf_counter(), 0.25, None
        if self.enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="coord", delay=delay, file=self.stream,
                            leave=False)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        elapsed = time.perf_counter() - self.start
        if self.enabled and self.done >= self.next_mark * self.total:
            if elapsed >= self.delay:
                print(f"{self.desc}: {self.done:,} done ({self.done / self.total:.0%}), {elapsed:.1f} s",
                      file=self.stream, flush=True)
            while self.next_mark <= self.done / self.total:
                self.next_mark += 0.25

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def recheck(loops, num: list, auto: list, manual: list, indices: list, h: float, value: float,
             dtype) -> tuple[int, ...]:
    """Evaluate again, with step h / RECHECK_STEP, the coordinates where the numerical gradient is
    more than RECHECK_TOL (relative to the leaf) from jax.grad's, and keep the new value where it
    agrees and the error shrank tenfold: the old step straddled a kink (ReLU, max pool) or met
    curvature. `num` is updated in place; returns how many coordinates changed, per leaf."""
    counts = [0] * len(num)
    eps = float(np.finfo(np.dtype(dtype)).eps)
    scales = [max(np.max(np.abs(a), initial=0.0), np.max(np.abs(m), initial=0.0))
              for a, m in zip(auto, manual, strict=True)]
    suspects = []
    for i, idx in enumerate(indices):
        err = np.abs(np.ravel(num[i])[idx] - np.ravel(auto[i])[idx])
        suspects.append(idx[err > RECHECK_TOL * scales[i]])
    n = sum(len(s) for s in suspects)
    if eps > 1e-15 or n == 0 or n > max(10, sum(len(i) for i in indices) // 10):
        return tuple(counts)  # float32 (noise, not kinks) or too many to be kinks: keep as is
    h2 = h / RECHECK_STEP
    values = loops.differences(suspects, h2, Progress(0, "", enabled=False))
    for i, idx in enumerate(suspects):
        if len(idx):
            flat_num, flat_auto = num[i].reshape(-1), np.ravel(auto[i])
            err1, err2 = np.abs(flat_num[idx] - flat_auto[idx]), np.abs(values[i] - flat_auto[idx])
            ok = (err2 <= max(RECHECK_TOL * scales[i], 10 * eps * abs(value) / h2)) & (err2 < err1 / 10)
            flat_num[idx[ok]] = values[i][ok]
            counts[i] = int(np.sum(ok))
    return tuple(counts)

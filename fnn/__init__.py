"""fnn: Deep Learning from Scratch as a small, fast, functional JAX library.

Submodules (each imported on first use: ``import fnn`` itself loads neither JAX nor NumPy, so
``fnn.lm.fit_lm`` works after ``import fnn`` and the ``fnn`` command answers at once):

    functions      activations and losses (DLFS1 ch3-4)
    init           weight initialisers (DLFS1 §6.2)
    gradient       numerical gradient, gradient descent, the three-way gradient check (DLFS1 ch4-5)
    perceptron     perceptron gates and the perceptron rule (DLFS1 ch2)
    layers         forward/backward pairs (DLFS1 ch5-7, DLFS2 ch5-8)
    optim          the book's optimizers as optax transforms (DLFS1 §6.1), gradient clipping
    data           MNIST, embedded digits, IDX, PTB, generated corpora, the books' weights
    models         init/apply/loss/manual_grad bundles (Model): MLPs, CNNs, RNN language models
    step           the jitted step, an epoch as one lax.scan, evaluation (TrainState)
    train          fit: epochs, evaluation, checkpoints (train.Checkpoints), several devices
    multi          fit_many: M models (seeds, hyper-parameters) in one vmapped program
    lm             language models: truncated-BPTT training (fit_lm), perplexity, text generation
    checkpoint     atomic, checksummed checkpoints
    parallel       data parallelism over several devices
    progress       progress bars on a terminal, one line per epoch in a log
    files          cache and data folders, atomic writes
    compile_cache  the persistent cache of compiled XLA programs
    cli            the ``fnn`` command (``fnn list``, ``fnn run NAME``)

docs/DESIGN.md shows how the modules hang together (floors that only point down, the contracts).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_SUBMODULES = ("checkpoint", "cli", "compile_cache", "data", "files", "functions", "gradient", "init",
               "layers", "lm", "models", "multi", "optim", "parallel", "perceptron", "progress", "step",
               "train")

__all__ = [*_SUBMODULES, "__version__"]

if TYPE_CHECKING:  # what static tools see; at run time `__getattr__` imports on first use
    from fnn import (  # noqa: F401
        checkpoint,
        cli,
        compile_cache,
        data,
        files,
        functions,
        gradient,
        init,
        layers,
        lm,
        models,
        multi,
        optim,
        parallel,
        perceptron,
        progress,
        step,
        train,
    )


def __getattr__(name: str):
    """``fnn.lm`` and the other submodules, imported when first asked for."""
    if name in _SUBMODULES:
        return importlib.import_module(f"fnn.{name}")  # the import binds it: next time no call
    raise AttributeError(f"module 'fnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})

"""fnn: Deep Learning from Scratch as a small, fast, functional JAX library.

    functions   activations and losses (DLFS1 ch3-4)      gradient   numerical gradient, gradient check (ch4-5)
    init        weight initialisers (ch6.2)                layers     forward/backward pairs (ch5-7, DLFS2 ch5-6)
    models      init/apply/manual_grad bundles (Model)     optim      the book's optimizers as optax transforms (ch6.1)
    data        MNIST, embedded digits, IDX, PTB, the books' weights
    step        the jitted step, an epoch as one lax.scan, evaluation (TrainState)
    train       fit: epochs, evaluation, checkpoints (train.Checkpoints), several devices
    multi       fit_many: M models (seeds, hyper-parameters) in one vmapped program, fit with a model axis
    lm          language models: truncated-BPTT training (fit_lm), perplexity, text generation

docs/DESIGN.md shows how the modules hang together (floors that only point down, the contracts).
"""

__version__ = "0.1.0"

from fnn import data, functions, gradient, init, layers, lm, models, multi, optim, step, train  # noqa: E402

__all__ = ["data", "functions", "gradient", "init", "layers", "lm", "models", "multi", "optim", "step", "train",
           "__version__"]

"""fnn: Deep Learning from Scratch as a small, fast, functional JAX library.

    from fnn import functions, layers, models, train, data, gradient
"""

__version__ = "0.1.0"

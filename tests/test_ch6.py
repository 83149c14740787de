"""Chapter-6 experiments: their pure parts against direct NumPy transcriptions of the book's code."""

import jax
import numpy as np

from fnn import optim
from fnn_experiments import ch6_optimizer_compare_naive as naive
from fnn_experiments import ch6_weight_init_activation_histogram as hist
from fnn_experiments._common import smooth


def _book_paths(steps):
    """ch06/optimizer_compare_naive.py's SGD(lr=0.95) and Momentum(lr=0.1) on df = (x/10, 2y)."""
    out = {}
    for name in ("SGD", "Momentum"):
        p, v, pts = np.array(naive.INIT), np.zeros(2), [np.array(naive.INIT)]
        for _ in range(steps):
            g = np.array([p[0] / 10.0, 2.0 * p[1]])
            if name == "SGD":
                p = p - 0.95 * g
            else:
                v = 0.9 * v - 0.1 * g
                p = p + v
            pts.append(p)
        out[name] = np.array(pts)
    return out


def test_trajectories_equal_the_books_update_rules():
    book = _book_paths(naive.STEPS)
    for name, (rule, lr) in [("SGD", ("sgd", 0.95)), ("Momentum", ("momentum", 0.1))]:
        np.testing.assert_allclose(naive.path(optim.get(rule, learning_rate=lr)), book[name],
                                   rtol=1e-12, atol=1e-14)


def test_activation_statistics_follow_the_book():
    key = jax.random.key(0)
    relu_small = np.asarray(hist.activations(key, "relu", 0.01))
    relu_he = np.asarray(hist.activations(key, "relu", "he"))
    sig_big = np.asarray(hist.activations(key, "sigmoid", 1.0))
    assert relu_small.shape == (hist.LAYERS, hist.N, hist.NODES)
    assert relu_small[-1].std() < 1e-4 * relu_small[0].std()          # vanishes layer by layer
    assert 0.5 < relu_he[-1].std() / relu_he[0].std() < 2.0            # He keeps the scale
    assert np.mean((sig_big[-1] < 0.05) | (sig_big[-1] > 0.95)) > 0.5  # saturates at 0 and 1


def test_smooth_keeps_length_and_constants():
    x = np.full(50, 3.0)
    np.testing.assert_allclose(smooth(x), x)
    assert smooth(np.arange(100.0)).shape == (100,)

"""The LESSON checks of the DLFS1 ch6-ch8 experiments can fail: each accepts a result that shows the
book's lesson (numbers measured in quick mode, seed 0) and refuses the same result turned into the
opposite lesson. tests/test_experiments.py runs them on real quick runs."""

import copy
import importlib

import pytest


def _lesson(name):
    return importlib.import_module(f"fnn_experiments.{name}").LESSON


def _set(path: str, value):
    """A change of the result at `path` (keys joined by "/") to `value`."""
    def change(result):
        *keys, last = path.split("/")
        node = result
        for k in keys:
            node = node[k]
        node[last] = value
    return change


CASES = {
    "ch6_overfit": (
        {"metrics": {"plain": {"train_acc": 1.0, "gap": 0.116}, "weight_decay": {"train_acc": 0.933, "gap": 0.093},
                     "dropout": {"train_acc": 0.5, "gap": 0.090}}},
        _set("metrics/dropout/gap", 0.12)),  # dropout widening the gap: an earlier quick run
    "ch6_weight_init_compare": (
        {"metrics": {"std=0.01": {"final_loss": 2.303, "hidden_unit_spread": [0.07, 0.07, 0.06, 0.07]},
                     "Xavier": {"final_loss": 1.67, "hidden_unit_spread": [0.27, 0.70, 0.66, 0.69]},
                     "He": {"final_loss": 0.296, "hidden_unit_spread": [0.36, 0.99, 0.98, 0.93]},
                     "zeros": {"final_loss": 2.303, "hidden_unit_spread": [0.0, 0.0, 0.0, 0.0]}}},
        _set("metrics/zeros/hidden_unit_spread", [0.0, 1e-7, 0.0, 0.0])),  # units no longer identical
    "ch6_optimizer_compare_mnist": (
        {"metrics": {"SGD": {"final_loss": 0.252}, "Momentum": {"final_loss": 0.038},
                     "AdaGrad": {"final_loss": 0.027}, "Adam": {"final_loss": 0.011},
                     "Nesterov": {"final_loss": 0.031}, "AdaDelta": {"final_loss": 0.015}}},
        _set("metrics/SGD/final_loss", 0.02)),
    "ch7_apply_filter": (
        {"metrics": {"edge_correlation": {"Sobel vertical edges": {"d/dx": 0.99, "d/dy": 0.33},
                                          "Sobel horizontal edges": {"d/dx": 0.32, "d/dy": 1.0}}}},
        _set("metrics/edge_correlation/Sobel vertical edges", {"d/dx": 0.33, "d/dy": 0.99})),  # transposed
    "ch7_gradient_check": (
        {"metrics": {"h=0.0001": {"backprop vs numerical": {"W1": 8.9e-13, "b2": 5.2e-5},
                                  "backprop vs jax.grad": {"W1": 1.3e-19, "b2": 1.3e-18}},
                     "h=1e-06": {"backprop vs numerical": {"W1": 8.6e-11, "b2": 7.8e-11},
                                 "backprop vs jax.grad": {"W1": 1.3e-19, "b2": 1.3e-18}}}},
        _set("metrics/h=1e-06/backprop vs jax.grad/b2", 1e-9)),  # a backward off by 1e-9
    "ch7_train_convnet": (
        {"quick": True, "metrics": {"test_acc": 0.847, "mlp_test_acc": 0.783}},
        _set("metrics/mlp_test_acc", 0.83)),
    "ch8_augmentation": (
        {"metrics": {"plain_train_acc": 0.863, "plain_test_acc": 0.561, "augmented_train_acc": 0.777,
                     "augmented_test_acc": 0.672, "test_acc_gain": 0.111}},
        _set("metrics/test_acc_gain", -0.039)),  # an earlier quick run: augmentation hurting
    "ch8_deep_convnet": (
        {"quick": True, "config": {"test_size": 360}, "metrics": {"test_acc": 344 / 360, "misclassified": 16}},
        _set("metrics/misclassified", 20)),
    "ch8_convnet_seeds": (
        {"metrics": {"all_finite": True, "test_acc": {"min": 0.93, "max": 0.96, "std": 0.008}}},
        _set("metrics/test_acc", {"min": 0.10, "max": 0.96, "std": 0.2})),  # one seed that did not learn
}


@pytest.mark.parametrize("name", list(CASES))
def test_lesson_accepts_the_lesson_and_refuses_its_opposite(name):
    result, opposite = CASES[name]
    _lesson(name)(copy.deepcopy(result))
    wrong = copy.deepcopy(result)
    opposite(wrong)
    with pytest.raises(AssertionError):
        _lesson(name)(wrong)

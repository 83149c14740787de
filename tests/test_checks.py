"""fnn._checks: one check per idea; integer settings accept NumPy integers and refuse bools."""

import numpy as np
import pytest

from fnn import _checks as C
from fnn import perceptron
from fnn.data import corpus


@pytest.mark.parametrize("value", [1, 10, np.int64(10), np.int32(3), np.uint8(7)])
def test_positive_integers_pass_and_come_back_as_int(value):
    got = C.check_positive_int("f", "n", value)
    assert got == int(value) and type(got) is int


@pytest.mark.parametrize("value", [0, -1, np.int64(0), True, False, np.bool_(True), 2.0, "3", None])
def test_everything_else_is_refused_with_the_argument_named(value):
    with pytest.raises(ValueError, match=r"^f: n is .*, expected a positive integer$"):
        C.check_positive_int("f", "n", value)


def test_or_none_and_minimum():
    assert C.check_positive_int("f", "rows", None, or_none=True) is None
    with pytest.raises(ValueError, match="rows is 0, expected a positive integer or None"):
        C.check_positive_int("f", "rows", 0, or_none=True)
    assert C.check_int("f", "epoch", np.int64(0), 0) == 0
    with pytest.raises(ValueError, match="epoch is -1, expected an integer >= 0"):
        C.check_int("f", "epoch", -1, 0)
    with pytest.raises(ValueError, match="length is 2, expected an integer > order"):
        C.check_int("f", "length", 2, 3, expected="an integer > order (2)")


def test_numpy_integers_reach_the_library_as_settings():
    xs, ts, _ = corpus.bptt_batches(np.arange(101) % 7, np.int64(5), np.int64(4))
    assert xs.shape == (5, 5, 4) and ts.shape == (5, 5, 4)
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    _, errors = perceptron.perceptron_learn(x, np.array([0, 1]), epochs=np.int64(3))
    assert errors.shape == (3,)
    with pytest.raises(ValueError, match="perceptron_learn: epochs is True, expected a positive integer"):
        perceptron.perceptron_learn(x, np.array([0, 1]), epochs=True)


def test_check_data_names_the_set_and_the_mismatch():
    with pytest.raises(ValueError, match=r"g: val t has 2 samples \(shape \(2,\)\), expected 3"):
        C.check_data("g", "val", np.zeros((3, 4)), np.zeros(2, np.int32))
    with pytest.raises(TypeError, match="g: train x is a list, expected an array"):
        C.check_data("g", "train", [[0.0]], np.zeros(1))

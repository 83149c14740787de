"""The numbers the book prints in chapters 2–5, as the experiments compute them (experiments/ch2_*..ch5_*)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import perceptron as P
from fnn.gradient import gradient_descent, numerical_diff, numerical_gradient
from fnn_experiments import ch3_activations, ch4_numerical_diff, ch4_simple_net, ch5_buy_apple
from fnn_experiments.ch3_neuralnet_mnist import BOOK_ACCURACY, accuracy


def test_xor_hidden_layer_is_the_books_table():
    x1, x2 = P.INPUTS[:, 0], P.INPUTS[:, 1]
    s1, s2 = P.NAND(x1, x2), P.OR(x1, x2)
    rows = np.stack([np.asarray(a) for a in (x1, x2, s1, s2, P.AND(s1, s2))], axis=1)
    np.testing.assert_array_equal(rows, [[0, 0, 1, 0, 0], [1, 0, 1, 1, 1], [0, 1, 1, 1, 1],
                                         [1, 1, 0, 1, 0]])  # DLFS1 Fig. 2-12


def test_ch3_printed_values():
    values = ch3_activations.compute()
    for key, book in ch3_activations.BOOK.items():
        np.testing.assert_allclose(values[key], book, rtol=5e-8, atol=5e-9, err_msg=key)  # 8 digits
    assert np.all(np.isnan(values["softmax_naive_large"]))


def test_ch4_numerical_diff_is_bit_exact():
    f = ch4_numerical_diff.function_1
    assert float(numerical_diff(f, jnp.float64(5.0))) == 0.1999999999990898
    assert float(numerical_diff(f, jnp.float64(10.0))) == 0.2999999999986347


def test_ch4_gradient_method_book_runs():
    def grad_f(x):
        return numerical_gradient(lambda v: jnp.sum(v ** 2), x)

    init_x = jnp.array([-3.0, 4.0])
    x, path = gradient_descent(grad_f, init_x, lr=0.1, step_num=100)
    assert path.shape == (101, 2)
    np.testing.assert_allclose(x, [-6.11110793e-10, 8.14814391e-10], rtol=1e-8)
    x, _ = gradient_descent(grad_f, init_x, lr=1e-10, step_num=100)
    np.testing.assert_allclose(x, [-2.99999994, 3.99999992], rtol=1e-8)


def test_ch4_simple_net_matches_the_book():
    W, x, t = jnp.array(ch4_simple_net.BOOK_W), jnp.array([0.6, 0.9]), jnp.array([0.0, 0.0, 1.0])
    book = ch4_simple_net.BOOK
    np.testing.assert_allclose(ch4_simple_net.predict(W, x), book["predict"], atol=1e-8)
    loss = ch4_simple_net.loss(W, x, t)
    assert abs(float(loss) - book["loss"]) < 1e-8  # the printed W is rounded to 8 digits
    dW = numerical_gradient(lambda w: ch4_simple_net.loss(w, x, t), W)
    np.testing.assert_allclose(dW, book["dW"], atol=1e-8)
    np.testing.assert_allclose(dW, jax.grad(ch4_simple_net.loss)(W, x, t), atol=1e-9)


def test_ch5_shopping_graphs():
    apple = ch5_buy_apple.buy_apple()
    assert float(apple["price"]) == pytest.approx(220.0, abs=1e-12)
    assert (float(apple["dapple"]), float(apple["dtax"])) == (2.2, 200.0)
    assert float(apple["dapple_num"]) == pytest.approx(110.0, abs=1e-12)
    both = ch5_buy_apple.buy_apple_orange()
    assert int(both["price"]) == 715 and float(both["dtax"]) == 650.0
    assert float(both["dorange"]) == 3.3000000000000003  # the book prints this float
    assert int(both["dorange_num"]) == 165 and float(both["dall_price"]) == 1.1


@pytest.mark.data
def test_ch3_pretrained_network_scores_09352_on_mnist(data_dir):
    from fnn.data import load_mnist
    from fnn.data.weights import load_book_weights

    if not (data_dir / "book" / "sample_weight.pkl").is_file():
        pytest.skip("needs $FNN_DATA_DIR/book/sample_weight.pkl")
    network = {k: jnp.asarray(v) for k, v in load_book_weights("sample_weight.pkl", download=False).items()}
    _, (x_test, t_test) = load_mnist(data_dir=data_dir / "mnist", download=False)
    assert accuracy(network, x_test, t_test) == pytest.approx(BOOK_ACCURACY, abs=5e-5)

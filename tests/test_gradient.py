"""fnn.gradient: numerical differentiation against known derivatives, and the gradient check."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import _central_differences as central_differences
from fnn import gradcheck_cli
from fnn import gradient as G
from fnn.models import mlp


def test_numerical_diff_book_example():
    def f(x):  # DLFS1 §4.3.2: y = 0.01 x^2 + 0.1 x, f'(5) = 0.2, f'(10) = 0.3
        return 0.01 * x**2 + 0.1 * x

    np.testing.assert_allclose(G.numerical_diff(f, 5.0), 0.2, rtol=1e-9)
    np.testing.assert_allclose(G.numerical_diff(f, 10.0), 0.3, rtol=1e-9)


def test_numerical_gradient_of_pytree_matches_exact():
    def f(p):
        return jnp.sum(p["a"] ** 3) + jnp.sin(p["b"]).sum() * p["c"]

    params = {"a": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.1, 0.2, 0.3]),
              "c": jnp.array(1.5)}
    num = G.numerical_gradient(f, params, h=1e-5)
    exact = jax.grad(f)(params)
    for k in params:
        np.testing.assert_allclose(num[k], exact[k], rtol=1e-8, atol=1e-10)
    assert jax.tree_util.tree_structure(num) == jax.tree_util.tree_structure(params)


def test_numerical_gradient_book_values():
    def f(x):  # DLFS1 §4.4: f(x0, x1) = x0^2 + x1^2
        return jnp.sum(x**2)

    for point, grad in [([3.0, 4.0], [6.0, 8.0]), ([0.0, 2.0], [0.0, 4.0]), ([3.0, 0.0], [6.0, 0.0])]:
        np.testing.assert_allclose(G.numerical_gradient(f, jnp.array(point)), grad, atol=1e-8)


def test_numerical_gradient_chunks_give_the_same_answer():
    def f(x):
        return jnp.sum(jnp.tanh(x) * jnp.arange(x.size).reshape(x.shape))

    x = jax.random.normal(jax.random.key(1), (7, 5))
    np.testing.assert_allclose(G.numerical_gradient(f, x, chunk=3), G.numerical_gradient(f, x),
                               rtol=1e-14)


def test_gradient_descent_book_example():
    def f(x):
        return jnp.sum(x**2)

    x, path = G.gradient_descent(jax.grad(f), jnp.array([-3.0, 4.0]), lr=0.1, step_num=100)
    np.testing.assert_allclose(x, [-3.0 * 0.8**100, 4.0 * 0.8**100], rtol=1e-10)  # x <- 0.8 x
    assert path.shape == (101, 2)
    np.testing.assert_array_equal(path[0], [-3.0, 4.0])
    # a learning rate too large diverges, too small barely moves (DLFS1 §4.4.1)
    big, _ = G.gradient_descent(jax.grad(f), jnp.array([-3.0, 4.0]), lr=10.0, step_num=100)
    small, _ = G.gradient_descent(jax.grad(f), jnp.array([-3.0, 4.0]), lr=1e-10, step_num=100)
    assert np.all(np.abs(big) > 1e10)
    np.testing.assert_allclose(small, [-3.0, 4.0], rtol=1e-7)


def test_gradient_check_detects_a_wrong_gradient():
    def f(p):
        return jnp.sum(p["w"] ** 2) + p["b"] ** 3

    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    right = G.gradient_check(lambda p: {"w": 2 * p["w"], "b": 3 * p["b"] ** 2}, f, params)
    assert G.max_error(right["manual_vs_autodiff"]) < 1e-15
    assert G.max_error(right["manual_vs_numerical"]) < 1e-8
    wrong = G.gradient_check(lambda p: {"w": 2 * p["w"], "b": 2 * p["b"] ** 2}, f, params)
    assert wrong["manual_vs_autodiff"]["b"] == pytest.approx(1 / 3)
    assert wrong["manual_vs_autodiff"]["w"] == 0.0


def test_gradient_check_names_a_mismatched_tree():
    with pytest.raises(ValueError, match="grad_manual returned a tree of structure"):
        G.gradient_check(lambda p: {"x": p["w"]}, lambda p: jnp.sum(p["w"]), {"w": jnp.ones(2)})


def test_relative_error_is_scaled_by_the_leaf():
    err = G.relative_error({"a": jnp.array([1e-12, 10.0])}, {"a": jnp.array([0.0, 10.0])})
    assert err["a"] == pytest.approx(1e-13)
    assert G.relative_error(jnp.zeros(3), jnp.zeros(3)) == 0.0


# --------------------------------------------------------------------------------------------
# The gradient check for real models: speed, sampling, precision, the table, the command
# --------------------------------------------------------------------------------------------


def _small_mlp(seed=0, N=3, sizes=(5, [3], 4), dtype=jnp.float64):
    model = mlp.model(*sizes, dtype=dtype)
    params, state = model.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(N, sizes[0])), dtype)
    t = jnp.asarray(rng.integers(0, sizes[2], N))
    return model, params, state, x, t


def _book_loop(f, params, h):
    """The book's numerical_gradient (common/gradient.py): one coordinate at a time, in Python."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    f = jax.jit(f)
    out = []
    for i, leaf in enumerate(leaves):
        flat = np.asarray(leaf).ravel().copy()
        grad = np.zeros_like(flat)
        for idx in range(flat.size):
            tmp = flat[idx]
            values = []
            for x_idx in (tmp + h, tmp - h):
                flat[idx] = x_idx
                new = list(leaves)
                new[i] = jnp.asarray(flat.reshape(leaf.shape))
                values.append(float(f(treedef.unflatten(new))))
            flat[idx] = tmp
            grad[idx] = (values[0] - values[1]) / (2 * h)
        out.append(grad.reshape(leaf.shape))
    return treedef.unflatten(out)


@pytest.mark.parametrize("own_loop,chunk", [(4096, 1), (8, 1), (8, 4)])
def test_compiled_loop_equals_the_books_one_coordinate_loop(monkeypatch, own_loop, chunk):
    """Every coordinate, with a leaf in its own loop (own_loop 8: W1, W2) or all in one, scanned one
    evaluation a step or vmapped 4 at a time: the book's loop's numbers to float64 rounding."""
    monkeypatch.setattr(central_differences, "OWN_LOOP", own_loop)
    model, params, state, x, t = _small_mlp()

    def f(p):
        return model.loss(p, state, x, t)[0]

    got = G.numerical_gradient(f, params, h=1e-4, chunk=chunk)
    want = _book_loop(f, params, 1e-4)
    # rounding: two losses of ~1, each to ~1e-16, divided by 2h = 2e-4
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-11), got, want)
    exact = jax.grad(f)(params)  # and both are gradients: truncation error ~h^2
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-7), got, exact)


def test_sampling_checks_exactly_the_sampled_coordinates():
    model, params, state, x, t = _small_mlp()

    def f(p):
        return model.loss(p, state, x, t)[0]

    indices = G.sample_indices(params, 3, 7)
    assert [len(i) for i in indices] == [3, 3, 3, 3]  # W1 (5, 3), W2 (3, 4), b1 (3,), b2 (4,)
    got = G.numerical_gradient(f, params, 1e-5, sample=3, sample_key=7)
    exact = jax.grad(f)(params)
    for g, e, idx in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(exact), indices,
                         strict=True):
        checked = np.flatnonzero(np.isfinite(np.ravel(g)))
        np.testing.assert_array_equal(checked, idx)  # NaN everywhere else
        np.testing.assert_allclose(np.ravel(g)[idx], np.ravel(e)[idx], atol=1e-9)
    result = G.gradient_check(lambda p: model.manual_grad(p, state, x, t)[1], f, params, sample=3,
                              sample_key=7, progress=False)
    assert result.checked == (3, 3, 3, 3)
    for n, idx in zip(jax.tree_util.tree_leaves(result.numerical), indices, strict=True):
        np.testing.assert_array_equal(np.flatnonzero(np.isfinite(np.ravel(n))), idx)


def test_sample_indices_counts_fractions_and_keys():
    params = {"a": jnp.zeros((10, 10)), "b": jnp.zeros(4)}
    assert [len(i) for i in G.sample_indices(params, 0.1)] == [10, 1]  # ceil(0.4) = 1
    assert [len(i) for i in G.sample_indices(params, 5)] == [5, 4]     # b has only 4
    assert [len(i) for i in G.sample_indices(params)] == [100, 4]
    same = G.sample_indices(params, 5, jax.random.key(3))
    np.testing.assert_array_equal(same[0], G.sample_indices(params, 5, jax.random.key(3))[0])
    assert not np.array_equal(same[0], G.sample_indices(params, 5, jax.random.key(4))[0])
    assert all(np.all(np.diff(i) > 0) for i in same)  # sorted, no repeats
    with pytest.raises(ValueError, match="sample is 0, expected a count >= 1"):
        G.sample_indices(params, 0)
    with pytest.raises(ValueError, match=r"sample is 1.5, expected a fraction in \(0, 1\]"):
        G.sample_indices(params, 1.5)


def test_a_wrong_backward_is_caught():
    """The classic slip: ReLU's backward without its mask (DLFS1 §5.5.1). W1 and b1 come out wrong."""
    model, params, state, x, t = _small_mlp(N=4)

    def wrong_manual(p):
        _, g, _ = model.manual_grad(p, state, x, t)
        h = x @ p["W1"] + p["b1"][None]
        scores = jnp.maximum(h, 0) @ p["W2"] + p["b2"][None]
        dscores = (jax.nn.softmax(scores) - jax.nn.one_hot(t, 4)) / x.shape[0]
        dh = dscores @ p["W2"].T  # forgot "* (h > 0)"
        return {**g, "W1": x.T @ dh, "b1": dh.sum(0)}

    result = G.gradient_check(wrong_manual, lambda p: model.loss(p, state, x, t)[0], params, progress=False)
    assert not result.ok()
    assert result.largest("manual_vs_autodiff") > 1e-2 and result.largest("manual_vs_numerical") > 1e-2
    assert result["manual_vs_autodiff"]["W2"] < 1e-14 and result["manual_vs_autodiff"]["W1"] > 1e-2
    assert result["autodiff_vs_numerical"]["W1"] < 1e-7  # the reference paths agree
    right = G.gradient_check(lambda p: model.manual_grad(p, state, x, t)[1],
                             lambda p: model.loss(p, state, x, t)[0], params, progress=False)
    assert right.ok()


def test_float32_inputs_are_checked_in_float64_or_warned_about():
    with jax.enable_x64(False):  # as a user's session: float32 everywhere
        model, params, state, x, t = _small_mlp(dtype=jnp.float32)
        assert params["W1"].dtype == jnp.float32

        def f(p):
            return model.loss(p, state, x, t)[0]

        def manual(p):
            return model.manual_grad(p, state, x, t)[1]

        result = G.gradient_check(manual, f, params, progress=False)  # default: cast to float64
        assert result.dtype == "float64" and result.ok(1e-6, 1e-6)
        assert result.autodiff["W1"].dtype == np.float64
        with pytest.warns(G.PrecisionWarning, match=r"computed in float32.*eps\*\|f\|/h = 1.2e-07"):
            low = G.gradient_check(manual, f, params, h=1e-4, dtype=None, progress=False)
        assert low.dtype == "float32"
        assert low.largest("manual_vs_numerical") > 1e-4  # what the warning is about
        model_check = G.model_gradient_check(model, params, state, x, t, progress=False)
        assert model_check.dtype == "float64" and model_check.ok(1e-6, 1e-6)


def test_table_and_the_old_mapping_interface():
    model, params, state, x, t = _small_mlp()
    result = G.model_gradient_check(model, params, state, x, t, progress=False)
    text = str(result)
    assert "hand vs autodiff" in text and "hand vs numerical" in text and "autodiff vs numerical" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line[:2] in ("W1", "b1", "W2", "b2")}
    assert set(rows) == {"W1", "b1", "W2", "b2"} and "(5, 3)" in rows["W1"]
    assert "the book's print, mean |hand - numerical|: W1:" in text
    assert set(result) == set(G.PAIRS)
    assert G.max_error(result["manual_vs_numerical"]) == result.largest("manual_vs_numerical")
    quick = G.model_gradient_check(model, params, state, x, t, numerical=False)
    assert list(quick) == ["manual_vs_autodiff"] and quick.numerical is None
    assert "hand vs numerical" not in str(quick) and "hand vs autodiff" in str(quick)


def test_a_zero_gradient_before_batch_norm_is_named_not_failed():
    """The bias before a batch norm has gradient 0: relative errors of rounding noise, named as such."""
    model = mlp.model(6, [4], 3, use_batchnorm=True, weight_init=1.0, dtype=jnp.float64)
    params, state = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (5, 6))
    t = jnp.array([0, 1, 2, 0, 1])
    result = G.model_gradient_check(model, params, state, x, t, progress=False)
    assert result.noise_level_leaves() == ["b1"]
    assert result.ok() and "b1: gradient ~0" in str(result)


def test_numerical_gradient_under_jit_and_vmap_matches_eager():
    def f(x):
        return jnp.sum(jnp.sin(x) * x)

    x = jnp.linspace(-1.0, 1.0, 6)
    eager = G.numerical_gradient(f, x, 1e-5)
    np.testing.assert_allclose(jax.jit(lambda v: G.numerical_gradient(f, v, 1e-5))(x), eager, rtol=1e-10)
    batched = jax.vmap(lambda v: G.numerical_gradient(f, v, 1e-5))(jnp.stack([x, 2 * x]))
    np.testing.assert_allclose(batched[0], eager, rtol=1e-10)
    np.testing.assert_allclose(batched[1], jax.grad(f)(2 * x), atol=1e-8)


def test_progress_off_a_terminal_is_a_few_plain_lines():
    stream = io.StringIO()
    bar = central_differences.Progress(1000, "gradient_check: 1,000 coordinates", enabled=True, delay=0.0,
                                       stream=stream)
    for _ in range(100):
        bar.update(10)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert 1 <= len(lines) <= 4 and "\r" not in stream.getvalue()
    assert lines[-1].startswith("gradient_check: 1,000 coordinates: 1,000 done (100%)")
    silent = io.StringIO()  # a check shorter than the delay prints nothing
    bar = central_differences.Progress(1000, "x", enabled=True, delay=60.0, stream=silent)
    bar.update(1000)
    assert silent.getvalue() == ""


@pytest.mark.parametrize("argv,leaves", [
    (["two_layer_net", "--sample", "2", "--batch", "1"], ["W1", "W2", "b1", "b2"]),
    (["simple_rnnlm", "--sample", "2", "--batch", "1"], ["affine.W", "embed.W", "rnn.Wh", "rnn.Wx"]),
])
def test_the_gradcheck_command_prints_the_table(capsys, argv, leaves):
    assert gradcheck_cli.main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fnn gradcheck {argv[0]}:")
    names = [line.split()[0] for line in out.splitlines() if line and line.split()[0] in leaves]
    assert names == leaves
    assert "hand vs numerical" in out and out.rstrip().splitlines()[-1].startswith("ok:")


def test_the_gradcheck_command_refuses_an_unknown_model(capsys):
    with pytest.raises(SystemExit):
        gradcheck_cli.main(["resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_a_kink_within_h_is_rechecked_with_a_smaller_step():
    """x_1 = 3e-6 sits within h = 1e-5 of ReLU's kink: the central difference there is
    (3e-6 + 1e-5 - 0) / 2e-5 = 0.65, not 1. At h = 1e-7 it is 1 again, and the check says so."""
    x = jnp.array([0.5, 3e-6, -0.7, 2.0])

    def f(v):
        return jnp.sum(jax.nn.relu(v))

    np.testing.assert_allclose(G.numerical_gradient(f, x, 1e-5)[1], 0.65, rtol=1e-9)
    result = G.gradient_check(lambda v: (v > 0).astype(v.dtype), f, x, progress=False)
    assert result.rechecked == (1,) and result.ok()
    np.testing.assert_allclose(result.numerical, [1.0, 1.0, 0.0, 1.0], atol=1e-8)
    assert "rechecked with h = 1e-07" in str(result)
    wrong = G.gradient_check(lambda v: (v > 0.1).astype(v.dtype), f, x, progress=False)  # a wrong mask
    assert wrong.rechecked == (1,) and not wrong.ok()  # the kink forgiven, not the mistake
    assert wrong["manual_vs_numerical"] == pytest.approx(1.0)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"numerical_gradient: f returned shape \(2,\) and dtype float64, "
                                         r"expected a floating scalar"):
        G.numerical_gradient(lambda x: x * 2, jnp.ones(2))
    with pytest.raises(ValueError, match="gradient_check: dtype is 'float16', expected 'float64' or None"):
        G.gradient_check(lambda x: x, jnp.sum, jnp.ones(2), dtype="float16")
    with pytest.raises(ValueError, match="numerical_gradient: chunk is 0, expected a positive integer"):
        G.numerical_gradient(jnp.sum, jnp.ones(2), chunk=0)
    with pytest.raises(TypeError, match="numerical_gradient: params leaf b has dtype int"):
        G.numerical_gradient(lambda p: jnp.sum(p["a"]), {"a": jnp.ones(2), "b": jnp.arange(2)})

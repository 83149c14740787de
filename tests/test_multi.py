"""fnn.multi: M models in one vmapped program train exactly as M separate `fit` runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import multi, optim
from fnn.models import mlp
from fnn.train import fit


def _data(N=40, D=5, C=3):
    x = jax.random.normal(jax.random.key(0), (N, D))
    t = jax.random.randint(jax.random.key(1), (N,), 0, C)
    return x, t


def test_each_model_equals_its_own_fit_run():
    """Model m of fit_many (lr hyper-parameter, batch norm + dropout) == fit(key=keys[m], lr=lrs[m])."""
    x, t = _data()
    m = mlp.model(5, [6], 3, weight_init=0.5, use_batchnorm=True, drop_rate=0.2, dtype=jnp.float64)
    keys = jax.random.split(jax.random.key(2), 2)
    lrs = jnp.array([0.1, 0.03])
    ts, h = multi.fit_many(m, lambda lr: optim.momentum(lr), (x, t), keys, hparams=lrs, epochs=2,
                           batch_size=10, eval_data={"train": (x, t)})
    assert h["step_loss"].shape == (2, 8) and h["train_acc"].shape == (2, 2)
    assert h["finite"].shape == (2, 2) and bool(h["finite"].all())
    for i in range(2):
        ts1, h1 = fit(m, optim.momentum(float(lrs[i])), ((x, t), (x, t)), key=keys[i], epochs=2,
                      batch_size=10, progress=False)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14),
                               multi.index((ts.params, ts.state), i), (ts1.params, ts1.state))
        np.testing.assert_allclose(h["step_loss"][i], h1["step_loss"], rtol=1e-12)
        np.testing.assert_allclose(h["train_acc"][i], h1["train_acc"], rtol=1e-14)
    assert float(jnp.max(jnp.abs(ts.params["W1"][0] - ts.params["W1"][1]))) > 1e-3


def test_traced_init_scale_and_weight_decay():
    """The model itself may depend on hyper-parameters (init scale, weight decay)."""
    x, t = _data()
    hp = {"std": jnp.array([0.01, 1.0]), "wd": jnp.array([0.0, 0.1])}
    ts, _ = multi.fit_many(
        lambda h: mlp.model(5, [6], 3, weight_init=h["std"], weight_decay=h["wd"], dtype=jnp.float64),
        optim.sgd(0.1), (x, t), jax.random.split(jax.random.key(0), 2), hparams=hp, epochs=1,
        batch_size=20)
    assert ts.params["W1"].shape == (2, 5, 6)
    assert float(jnp.std(ts.params["W1"][0])) < 0.05 < float(jnp.std(ts.params["W1"][1]))


def test_bad_arguments_are_named():
    x, t = _data()
    m = mlp.model(5, [6], 3, dtype=jnp.float64)
    keys = jax.random.split(jax.random.key(0), 3)
    with pytest.raises(ValueError, match=r"fit_many: hparams\['lr'\] has shape \(2,\), expected a "
                                         r"leading axis of 3"):
        multi.fit_many(m, optim.sgd(0.1), (x, t), keys, hparams={"lr": jnp.ones(2)}, epochs=1)
    with pytest.raises(ValueError, match="fit_many: keys has shape"):
        multi.fit_many(m, optim.sgd(0.1), (x, t), jax.random.key(0), epochs=1)
    with pytest.raises(ValueError, match="fit_many: batch_size is 100, larger than the training set"):
        multi.fit_many(m, optim.sgd(0.1), (x, t), keys, epochs=1)


def test_seeds_with_fits_data_give_fits_history():
    """fit's data form, no hyper-parameters: model m's history is fit(key=keys[m])'s, field by field."""
    x, t = _data()
    xt, tt = _data(N=15)
    m = mlp.model(5, [6], 3, dtype=jnp.float64)
    keys = jax.vmap(jax.random.key)(jnp.arange(3))
    data = ((x, t), (xt, tt))
    ts, h = multi.fit_many(m, optim.adam(0.01), data, keys, epochs=3, batch_size=10)
    assert h["test_acc"].shape == (3, 3) and h["train_loss"].shape == (3, 3)
    assert h["compile_seconds"] > 0 and h["seconds"] > 0
    i = 2
    _, h1 = fit(m, optim.adam(0.01), data, key=jax.random.key(i), epochs=3, batch_size=10,
                progress=False)
    hi = multi.index(h, i)
    assert hi["seconds"] == h["seconds"]
    for k in ("epoch", "step"):
        np.testing.assert_array_equal(hi[k], h1[k])
    for k in ("train_loss", "train_acc", "test_loss", "test_acc", "step_loss"):
        np.testing.assert_allclose(hi[k], h1[k], rtol=1e-12, err_msg=k)


def test_a_model_whose_learning_rate_is_nan_is_refused_and_the_others_train_as_alone():
    """The steps run unchecked and an epoch whose end is not finite runs again with each step
    checked (`fnn.step._Scan`): model 1 (lr NaN) keeps its initial parameters and says it was
    refused; model 0 trains exactly as in a run without it, and as `make_fit_many` (each step
    checked, one program) gives, to rounding (another program)."""
    x, t = _data()
    m = mlp.model(5, [6], 3, weight_init=0.5, dtype=jnp.float64)
    keys = jax.random.split(jax.random.key(2), 2)
    lrs = jnp.array([0.1, jnp.nan])
    kw = {"epochs": 2, "batch_size": 10, "eval_data": {"train": (x, t)}, "progress": False}
    ts, h = multi.fit_many(m, optim.sgd, (x, t), keys, hparams=lrs, **kw)
    assert h["finite"].tolist() == [[True, True], [False, False]]
    ts0, _ = multi.fit_many(m, optim.sgd, (x, t), keys[:1], hparams=lrs[:1], **kw)
    init, _ = multi.fit_many(m, optim.sgd, (x, t), keys[1:], hparams=jnp.array([0.0]), **kw)
    np.testing.assert_allclose(ts.params["W1"][0], ts0.params["W1"][0], rtol=1e-12)  # programs differ: rounding
    np.testing.assert_array_equal(ts.params["W1"][1], init.params["W1"][0])  # lr 0: never moved
    run = multi.make_fit_many(m, optim.sgd, epochs=2, batch_size=10, eval_names=("train",))
    ts_one, h_one = run(keys, lrs, x, t, ((x, t),))
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), ts.params, ts_one.params)
    np.testing.assert_array_equal(h["finite"], h_one["finite"])

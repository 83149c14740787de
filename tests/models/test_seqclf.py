"""fnn.models.seqclf: three-way gradient check of the row-by-row LSTM/GRU classifier, shapes."""

import jax
import jax.numpy as jnp
import pytest

from fnn.gradient import gradient_check, max_error
from fnn.models import seqclf


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_seqclf_three_way(family):
    model = seqclf.model(4, 3, 5, family=family, rows=6, dtype=jnp.float64)
    params, state = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3, 24))  # flattened 6 x 4 images
    t = jnp.array([0, 4, 2])
    f = jax.jit(lambda p: model.loss(p, state, x, t)[0])
    manual = jax.jit(lambda p: model.manual_grad(p, state, x, t)[1])
    errors = gradient_check(manual, f, params)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors


def test_seqclf_shapes_and_errors():
    model = seqclf.model(8, 6, 10)
    params, state = model.init(jax.random.key(0))
    for x in (jnp.zeros((2, 64)), jnp.zeros((2, 1, 8, 8)), jnp.zeros((2, 8, 8))):
        assert model.apply(params, state, x)[0].shape == (2, 10)
    with pytest.raises(ValueError, match=r"seqclf: x has shape \(2, 63\)"):
        model.apply(params, state, jnp.zeros((2, 63)))

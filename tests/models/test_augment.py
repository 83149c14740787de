"""fnn.models.augment: a model whose training loss sees augmented batches and whose apply does not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.data import augment as A
from fnn.models.augment import augmented

from ..data.test_augment import images


@pytest.mark.slow
def test_augmented_model_trains_on_augmented_batches_and_evaluates_plain():
    from fnn.models import mlp

    m = mlp.model(16, [5], 3, dtype=jnp.float64)
    am = augmented(m, max_shift=1, max_degrees=0)
    params, state = m.init(jax.random.key(0))
    x, t = images(N=4, C=1, H=4, W=4), jnp.array([0, 1, 2, 0])
    np.testing.assert_array_equal(am.apply(params, state, x)[0], m.apply(params, state, x)[0])
    key = jax.random.key(5)
    k_aug, k = jax.random.split(key)
    want = m.loss(params, state, A.augment(k_aug, x, max_shift=1, max_degrees=0), t, key=k)[0]
    both = jax.jit(lambda p: (am.loss(p, state, x, t, key=key)[0],
                              am.manual_grad(p, state, x, t, key=key)[0]))
    loss, manual_loss = both(params)  # both gradient paths see the same augmented batch
    np.testing.assert_allclose(loss, want, rtol=1e-12)
    np.testing.assert_allclose(manual_loss, want, rtol=1e-12)
    with pytest.raises(ValueError, match="key is None"):
        am.loss(params, state, x, t)

"""Shared test set-up: float64 everywhere, rank promotion is an error (docs/DESIGN.md, "Tests")."""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


def _data_dir() -> Path | None:
    d = os.environ.get("FNN_DATA_DIR")
    return Path(d) if d else None


@pytest.fixture
def data_dir():
    """`$FNN_DATA_DIR`, or skip: tests that need full MNIST / PTB / the book's weights use this."""
    d = _data_dir()
    if d is None or not d.is_dir():
        pytest.skip("needs FNN_DATA_DIR (full MNIST, PTB, the book's weights)")
    return d

"""Models as pure functions: `mlp` (DLFS1 ch4–6). Each module's constructor returns a `Model`."""

from fnn.models import mlp
from fnn.models._model import Model

__all__ = ["Model", "mlp"]

"""What `help()` and `import fnn` show: every public module says what it exports (`__all__`, which
`help()` follows), `import fnn` reaches every submodule lazily without loading JAX."""

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import fnn

MODULES = sorted(m.name for m in pkgutil.walk_packages(fnn.__path__, "fnn.")
                 if not m.name.rsplit(".", 1)[-1].startswith("_"))


def _defined(path: Path) -> set[str]:
    """The public functions and classes a module's source defines at top level (constants may stay
    out of `__all__`: some are settings of the module's own)."""
    return {node.name for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")}


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_lists_what_it_defines_in_all(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    assert [n for n in exported if not hasattr(module, n)] == [], f"{name}.__all__ names what it lacks"
    if Path(module.__file__).name != "__init__.py":  # a package re-exports: its __all__ is its choice
        hidden = _defined(Path(module.__file__)) - set(exported)
        assert not hidden, f"{name} defines {sorted(hidden)} but help() would not show them: add them to __all__"


def test_import_fnn_is_light_and_reaches_every_submodule():
    code = ("import json, sys, fnn; light = 'jax' not in sys.modules; "
            "fit_lm = callable(fnn.lm.fit_lm); print(json.dumps([light, fit_lm, 'lm' in dir(fnn)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(out.stdout) == [True, True, True]
    with pytest.raises(AttributeError, match="module 'fnn' has no attribute 'nope'"):
        fnn.nope  # noqa: B018


def test_help_of_adam_gives_optax_names_and_the_books():
    doc = fnn.optim.adam.__doc__
    assert "`b1`, `b2`, `eps` are optax's names" in doc and "`beta1`, `beta2`" in doc

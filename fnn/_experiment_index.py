"""Where the ``fnn`` command finds the experiments, without importing them (private to `fnn.cli`).

Every package named by an entry point of the group ``fnn.experiments`` (``pyproject.toml``) is
located with `importlib`, and each of its modules not starting with ``_`` is an experiment, which
`ast` reads: its docstring (the first sentence is its line in ``fnn list``) and its ``OPTIONS``.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import sys
import tokenize
from pathlib import Path
from typing import NamedTuple

__all__ = ["GROUP", "Experiment", "docstring", "entry_point_values", "experiments", "files", "read", "summary"]

# The entry-point group whose values are packages of experiments (fnn's own: ``fnn_experiments``).
GROUP = "fnn.experiments"


class Experiment(NamedTuple):
    """One experiment as `ast` reads it from its source, without importing it."""

    name: str            # ch5_train_neuralnet
    module: str          # the module to import: fnn_experiments.ch5_train_neuralnet
    path: Path           # its source file
    doc: str             # its docstring
    options: dict | None  # its OPTIONS, or None when it declares none


def summary(doc: str) -> str:
    """The first sentence of a docstring on one line: its lines up to the first that ends one."""
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
        if line.rstrip().endswith((".", "!", "?")):
            break
    return " ".join(lines)


def docstring(source: str) -> str:
    """A module's docstring, from its first tokens (quicker than parsing the whole module)."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
            continue
        return ast.literal_eval(token.string) if token.type == tokenize.STRING else ""
    return ""


def read(name: str, module: str, path: Path) -> Experiment:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    options = None
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == "OPTIONS" and node.value is not None:
            try:
                options = ast.literal_eval(node.value)
            except ValueError:  # not a literal: the experiment parses its own arguments
                options = None
    return Experiment(name, module, path, docstring(source), options)


def entry_point_values(group: str) -> list[str]:
    """The values of the entry points of `group`, as ``importlib.metadata.entry_points(group=group)``
    gives them, read from the ``entry_points.txt`` of the distributions on `sys.path` (importing
    `importlib.metadata` alone takes ~0.1 s); `importlib.metadata` itself when none is found there."""
    values = []
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:  # missing, a zip file, not a folder
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                text = Path(folder or ".", name, "entry_points.txt").read_text(encoding="utf-8")
            except OSError:
                continue
            section = None
            for line in map(str.strip, text.splitlines()):
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section == group and "=" in line and not line.startswith(("#", ";")):
                    values.append(line.split("=", 1)[1].split(":")[0].split("[")[0].strip())
    if not values:
        import importlib.metadata

        values = [entry.value for entry in importlib.metadata.entry_points(group=group)]
    return list(dict.fromkeys(values))  # a distribution seen twice on sys.path (the repo's egg-info)


def files() -> dict[str, tuple[str, Path]]:
    """Every experiment's name -> (its module, its source file), sorted by name; nothing read."""
    found: dict[str, tuple[str, Path]] = {}
    for value in entry_point_values(GROUP):
        spec = importlib.util.find_spec(value)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            for path in sorted(Path(folder).glob("*.py")):
                if not path.stem.startswith("_") and path.stem not in found:
                    found[path.stem] = (f"{value}.{path.stem}", path)
    return dict(sorted(found.items()))


def experiments() -> dict[str, str]:
    """Every experiment's name and the first sentence of its docstring, sorted by name.

    Read from the sources with `ast`, so listing imports neither JAX nor the experiments.
    """
    return {name: summary(docstring(path.read_text(encoding="utf-8")))
            for name, (_, path) in files().items()}

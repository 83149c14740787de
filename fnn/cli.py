"""The ``fnn`` command: ``fnn list`` and ``fnn run NAME [--quick] [--out DIR] [--seed N]``.

The experiments live outside the library (the repo's ``experiments/`` folder, installed as the
package ``fnn_experiments``). fnn finds them without importing them: every package named by an
entry point of the group ``fnn.experiments`` (``pyproject.toml``) is located with `importlib`, and
each of its modules not starting with ``_`` is an experiment whose docstring `ast` reads. Only
``fnn run NAME`` imports an experiment, and runs its ``main(argv)``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

# The entry-point group whose values are packages of experiments (fnn's own: ``fnn_experiments``).
GROUP = "fnn.experiments"


def _index() -> dict[str, tuple[str, str]]:
    """Every experiment's name -> (its module, the first line of its docstring), sorted by name."""
    found: dict[str, tuple[str, str]] = {}
    for entry in importlib.metadata.entry_points(group=GROUP):
        spec = importlib.util.find_spec(entry.value)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            for path in sorted(Path(folder).glob("*.py")):
                if path.stem.startswith("_") or path.stem in found:
                    continue
                doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
                found[path.stem] = (f"{entry.value}.{path.stem}", doc.strip().split("\n")[0])
    return dict(sorted(found.items()))


def experiments() -> dict[str, str]:
    """Every experiment's name and the first line of its docstring, sorted by name.

    Read from the source with `ast`, so listing imports neither JAX nor the experiments.
    """
    return {name: line for name, (_, line) in _index().items()}


def _run(name: str, argv: Sequence[str]) -> int:
    index = _index()
    if name not in index:
        close = difflib.get_close_matches(name, index, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        where = (f"`fnn list` shows all {len(index)}" if index else
                 f"no experiments are installed: the entry-point group {GROUP!r} is empty; "
                 f"install fnn with pip")
        print(f"fnn run: no experiment named {name!r}{hint} ({where})", file=sys.stderr)
        return 2
    from fnn import compile_cache

    compile_cache.enable()  # a second run of a script loads its compiled programs from disk
    module = importlib.import_module(index[name][0])
    module.main(list(argv))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fnn`` console script."""
    p = argparse.ArgumentParser(prog="fnn", description="Deep Learning from Scratch, in JAX: "
                                "run the books' experiments.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the experiments, one a line, name first")
    run = sub.add_parser("run", help="run an experiment: fnn run NAME [--quick] [--out DIR] "
                         "[--seed N] [its own options; see fnn run NAME --help]",
                         add_help=False)
    run.add_argument("name")
    args, rest = p.parse_known_args(argv)
    if args.command == "list":
        if rest:
            p.error(f"unrecognized arguments: {' '.join(rest)}")
        items = experiments()
        width = max(map(len, items), default=0)
        for name, line in items.items():
            print(f"{name:<{width}}  {line}")
        return 0
    return _run(args.name, rest)


if __name__ == "__main__":
    sys.exit(main())

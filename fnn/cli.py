"""The ``fnn`` command: ``fnn list`` and ``fnn run NAME [--quick] [--out DIR] [--seed N]``."""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path


def experiments() -> dict[str, str]:
    """Every experiment's name and the first line of its docstring, sorted by name.

    Read from the source with `ast`, so listing imports neither JAX nor the experiments.
    """
    import experiments as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        path = Path(info.module_finder.path) / f"{info.name}.py"
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found[info.name] = doc.strip().split("\n")[0]
    return dict(sorted(found.items()))


def _run(name: str, argv: Sequence[str]) -> int:
    known = experiments()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"fnn run: no experiment named {name!r}{hint} (`fnn list` shows all "
              f"{len(known)})", file=sys.stderr)
        return 2
    from fnn import compile_cache

    compile_cache.enable()  # a second run of a script loads its compiled programs from disk
    module = importlib.import_module(f"experiments.{name}")
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

"""The ``fnn`` command: ``fnn list``, ``fnn run NAME`` (or ``all``), ``fnn gradcheck``, ``fnn report``.

It answers at once: listing, help and argument errors import neither JAX nor an experiment. The
experiments live outside the library (the repo's ``experiments/`` folder, installed as the package
``fnn_experiments``). fnn finds them without importing them (`fnn._experiment_index`: the
packages named by the entry points of the group ``fnn.experiments``), and `ast` reads each one:

* its docstring: the first sentence is its line in ``fnn list``, the first paragraph its help;
* ``OPTIONS``, a literal dict of its own options (``{"--epochs": {"type": "count", "help": ...}}``,
  argparse's keywords with `type` named: ``int``, ``count`` (a whole number >= 1: epochs, steps,
  seeds, words), ``float``, ``str``, ``path`` or ``folder``),
  which `parser` adds to the options every experiment has (``--quick``, ``--seed``, ``--out``,
  ``--no-progress``, ``--debug``).

``fnn run NAME`` parses the arguments with that parser first (``--help`` and mistakes end there),
then imports the experiment and calls its ``main(argv)``, which builds the same parser. An
experiment without ``OPTIONS`` parses its own arguments: it is imported even for ``--help``.

The errors fnn raises on purpose (data not found, a refused checkpoint or file, a bad argument, a
non-finite loss, a checkpoint folder locked by another run: `OSError`, `ValueError`, `TypeError`,
`FloatingPointError` and the error classes of fnn) end a command with
one line on stderr and exit status 1; ``--debug`` or ``FNN_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fnn._experiment_index import GROUP, Experiment, experiments
from fnn._experiment_index import files as _files
from fnn._experiment_index import read as _read

__all__ = ["GROUP", "SEED_MAX", "Experiment", "experiments", "main", "parser", "quick_time", "run_many"]

# ``jax.random.key(seed)`` keeps the seed modulo 2**32 (JAX's default 32-bit mode): 2**32 is seed 0
# again and -1 is 2**32 - 1, so these are the seeds that give different runs.
SEED_MAX = 2**32 - 1
# Beside a package's experiments: their measured ``--quick`` times (``scripts/quick_times.py``).
QUICK_TIMES = "quick_seconds.json"
# The errors a command reports in one line, with every error class fnn defines (`_known`).
KNOWN_ERRORS = (OSError, ValueError, TypeError, FloatingPointError)
# Commands served by other modules of fnn, each with ``main(argv) -> int``: (module, help).
DELEGATES = {"gradcheck": ("fnn.gradcheck_cli", "compare a model's hand-written, automatic and "
                           "numerical gradients, layer by layer (fnn gradcheck --help)"),
             "report": ("fnn.report", "collect the experiments' results into one page "
                        "(fnn report --help)")}


# ---------------------------------------------------------------------------------------------
# An experiment's arguments
# ---------------------------------------------------------------------------------------------


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: expected 0 to {SEED_MAX} (jax.random.key keeps the seed "
            f"modulo 2**32, so any other seed repeats one of these)")
    return value


def _folder(text: str) -> Path:
    path = Path(text).expanduser()
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise argparse.ArgumentTypeError(
                f"{part} is {'a file' if part.is_file() else 'not a folder'}; expected a folder "
                f"(created if missing)")
    return path


def _count(text: str) -> int:
    """A number of things (epochs, steps, seeds, words): a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected a count of at least 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; expected a count of at least 1")
    return value


TYPES: dict[str, Callable[[str], Any]] = {"int": int, "count": _count, "float": float, "str": str, "path": Path,
                                          "folder": _folder}


def quick_time(folder: str | os.PathLike, name: str) -> str | None:
    """``"about 25 s on 2 CPU cores"``: the measured ``--quick`` time of experiment `name`, from
    ``quick_seconds.json`` in the experiments' `folder` (None when it has no entry)."""
    import json

    try:
        table = json.loads((Path(folder) / QUICK_TIMES).read_text(encoding="utf-8"))
        seconds, machine = float(table["seconds"][name]), table["machine"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    about = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.2g} s"
    return f"about {about} on {machine}"


def parser(name: str, doc: str | None, options: dict | None = None, *,
           quick_seconds: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of experiment `name`: the options every experiment has, then its own.

    `doc` is the experiment's docstring (its first paragraph is the description); `options` maps
    each of its own flags to argparse keywords, with `type` a name from `TYPES`; `quick_seconds`
    is what `quick_time` says. ``--seed`` takes 0 to `SEED_MAX`; ``--out`` (and any ``folder``
    option) refuses a path that is a file, before anything runs.
    """
    p = argparse.ArgumentParser(prog=f"fnn run {name}", description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = "a small run on embedded or generated data, nothing to download"
    p.add_argument("--quick", action="store_true",
                   help=f"{quick} ({quick_seconds})" if quick_seconds else quick)
    p.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help=f"the random seed, 0 to {SEED_MAX} (default 0)")
    p.add_argument("--out", type=_folder, default=None, metavar="DIR",
                   help=f"output folder (default results/{name})")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show the traceback (also: FNN_DEBUG=1)")
    for flag, spec in (options or {}).items():
        spec = dict(spec)
        if "type" in spec:
            if spec["type"] not in TYPES:
                raise ValueError(f"parser: {name}'s option {flag} has type {spec['type']!r}, "
                                 f"expected one of {sorted(TYPES)}")
            spec["type"] = TYPES[spec["type"]]
        p.add_argument(flag, **spec)
    return p


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _debug(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("FNN_DEBUG", "").strip().lower() not in ("", "0", "no",
                                                                                          "false", "off")


def _is_data_not_found(err: BaseException) -> bool:
    download = sys.modules.get("fnn.data.download")  # loaded if a data set was looked for
    return download is not None and isinstance(err, download.DataNotFoundError)


def _known(err: BaseException) -> bool:
    """An error fnn raises on purpose: one of `KNOWN_ERRORS`, or of a class fnn defines (a
    `fnn.files.FolderLockedError`, say); anything else is a bug whose traceback should show."""
    return isinstance(err, KNOWN_ERRORS) or any(c.__module__.split(".")[0] == "fnn" for c in type(err).__mro__)


def _guarded(prog: str, call: Callable[[], Any], *, debug: bool, quick: bool = True) -> int:
    """Run `call`; a known error (`_known`) becomes one line on stderr and status 1 (with
    a hint to try ``--quick`` when data was not found and `quick` was not given)."""
    try:
        code = call()
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug or not _known(err):
            raise
        hint = "\nOr try --quick: it runs on embedded data, nothing to download." if (
            not quick and _is_data_not_found(err)) else ""
        print(f"{prog}: {type(err).__name__}: {err}{hint}\n(--debug or FNN_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


def _not_found(name: str, names: Sequence[str]) -> int:
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    where = (f"`fnn list` shows all {len(names)}" if names else
             f"no experiments are installed: the entry-point group {GROUP!r} is empty; install fnn with pip")
    print(f"fnn run: no experiment named {name!r}{hint} ({where})", file=sys.stderr)
    return 2


def _run(name: str, argv: Sequence[str]) -> int:
    files = _files()
    if name not in files:
        return _not_found(name, list(files))
    exp, debug = _read(name, *files[name]), _debug(argv)
    if exp.options is not None:  # --help and mistakes are answered here, before JAX loads
        parser(name, exp.doc, exp.options, quick_seconds=quick_time(exp.path.parent, name)).parse_args(argv)
    else:  # it parses its own arguments, which may not include --debug
        argv = [a for a in argv if a != "--debug"]

    def call() -> int:
        from fnn import compile_cache

        compile_cache.enable()  # a second run of a script loads its compiled programs from disk
        importlib.import_module(exp.module).main(list(argv))
        return 0

    return _guarded(f"fnn run {name}", call, debug=debug, quick="--quick" in argv)


def run_many(names: Sequence[str], argv: Sequence[str], *, out: Path | None = None,
             env: dict | None = None) -> list[tuple[str, float, str]]:
    """Run each experiment of `names` in its own process (``fnn run NAME *argv``, ``--out
    out/NAME`` when `out` is given), one after another; returns ``(name, seconds, status)`` for
    each, status ``"ok"`` or ``"failed (exit N)"``. Their output goes to this process's."""
    import subprocess
    import time

    results = []
    for i, name in enumerate(names, start=1):
        print(f"== [{i}/{len(names)}] fnn run {name} {' '.join(argv)}".rstrip(), flush=True)
        extra = ["--out", str(out / name)] if out is not None else []
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "fnn.cli", "run", name, *argv, *extra],
                               env={**os.environ, **(env or {})})
        results.append((name, time.perf_counter() - t0, "ok" if code == 0 else f"failed (exit {code})"))
    return results


def _run_all(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="fnn run all", description="Run every experiment in turn, each in its own process; "
        "a failure does not stop the others. Ends with a table of name, seconds and status; the "
        "exit status is 1 when any failed.")
    p.add_argument("--quick", action="store_true", help="every experiment's quick mode")
    p.add_argument("--seed", type=_seed, default=None, metavar="N", help="passed to each (default 0)")
    p.add_argument("--out", type=_folder, default=None, metavar="DIR",
                   help="write experiment NAME's results into DIR/NAME (default results/NAME)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="experiments not to run")
    p.add_argument("--summary", type=Path, default=None, metavar="FILE",
                   help="also write the table as JSON to FILE")
    args = p.parse_args(argv)
    unknown = [n for n in args.skip if n not in _files()]
    if unknown:
        p.error(f"--skip: no experiment named {', '.join(unknown)} (`fnn list` shows them)")
    names = [n for n in _files() if n not in args.skip]
    passed = (["--quick"] if args.quick else []) + (["--no-progress"] if not args.progress else []) + (
        ["--seed", str(args.seed)] if args.seed is not None else [])
    results = run_many(names, passed, out=args.out)
    width = max((len(n) for n in names), default=10)
    print(f"\n{'experiment':<{width}}  {'seconds':>8}  status")
    for name, seconds, status in results:
        print(f"{name:<{width}}  {seconds:8.1f}  {status}")
    failed = [name for name, _, status in results if status != "ok"]
    print(f"{len(results)} experiments, {len(results) - len(failed)} ok, {len(failed)} failed"
          + (f": {', '.join(failed)}" if failed else ""))
    if args.summary is not None:
        import json

        args.summary.write_text(json.dumps([{"experiment": n, "seconds": round(s, 2), "status": st}
                                            for n, s, st in results], indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


RUN_HELP = """usage: fnn run NAME [--quick] [--seed N] [--out DIR] [--no-progress] [--debug] [NAME's options]
       fnn run all [--quick] [--seed N] [--out DIR] [--no-progress] [--skip NAME ...]

Run one of the books' experiments: it writes its figures and a result.json into results/NAME/
(or --out) and prints its numbers. `fnn list` shows the names; `fnn run NAME --help` shows an
experiment's options and how long --quick takes. `fnn run all` runs every experiment in turn
(`fnn run all --help`).
"""


def _top_parser(delegates: dict) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fnn", description="Deep Learning from Scratch, in JAX: run the "
                                "books' experiments.", epilog="`fnn COMMAND --help` tells more.")
    from fnn import __version__

    p.add_argument("--version", action="version", version=f"fnn {__version__}")
    p.add_argument("--debug", action="store_true", help="on an error, show the traceback (also: FNN_DEBUG=1)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="print the experiments, one a line, name first")
    sub.add_parser("run", help="run an experiment (or all): fnn run NAME [--quick] ...; see fnn run --help")
    for command, (_, text) in delegates.items():
        sub.add_parser(command, help=text)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fnn`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv[:1]:  # fnn --debug COMMAND ...: the flag travels with the command
        argv = argv[1:] + ["--debug"]
    delegates = {c: d for c, d in DELEGATES.items() if importlib.util.find_spec(d[0]) is not None}
    top = _top_parser(delegates)
    if not argv:
        top.error(f"the following arguments are required: COMMAND (one of {', '.join(['list', 'run', *delegates])})")
    if argv[0] not in ("list", "run", *delegates):
        top.parse_args(argv)  # --help, --version, or an error
        top.print_help()
        return 2
    command, rest = argv[0], argv[1:]
    if command == "list":
        rest = [a for a in rest if a != "--debug"]
        if rest:
            top.error(f"unrecognized arguments: {' '.join(rest)} (fnn list takes none)")
        items = experiments()
        width = max(map(len, items), default=0)
        for name, line in items.items():
            print(f"{name:<{width}}  {line}")
        return 0
    if command == "run":
        if not rest or rest[0] in ("-h", "--help"):
            print(RUN_HELP, end="")
            return 0 if rest else 2
        return _run_all(rest[1:]) if rest[0] == "all" else _run(rest[0], rest[1:])
    module = delegates[command][0]
    args = [a for a in rest if a != "--debug"]
    return _guarded(f"fnn {command}", lambda: importlib.import_module(module).main(args), debug=_debug(rest))


if __name__ == "__main__":
    sys.exit(main())

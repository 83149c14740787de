"""Generate ``docs/EQUATIONS.md``, the equation index: book section -> function -> file:line.

Every public function that implements a formula of the books names its section in its docstring,
as ``DLFS1 §5.6.3`` or ``DLFS2 §6.2.4`` (ranges ``§4.2.2–4.2.4`` and lists ``DLFS1 §2.3.1, §2.3.3``
count too). This script reads the docstrings of every module under ``fnn/`` with `ast` (nothing
is imported, so a module that does not import yet is still indexed) and writes one table row per
(section, function). A layer built as ``name = Layer(_name_forward, _name_backward)`` is indexed
under ``name.forward`` / ``name.backward``.

    python scripts/equations.py           # rewrite docs/EQUATIONS.md
    python scripts/equations.py --check   # exit 1 if docs/EQUATIONS.md is stale, or if a public
                                          # function of fnn/functions.py, fnn/layers/ or fnn/optim/
                                          # names no section (and is not in NO_BOOK_FORMULA)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "EQUATIONS.md"
REQUIRED = ("fnn/functions.py", "fnn/layers/", "fnn/optim/")
"""Where every public function must name its book section (a file, or a folder ending in /)."""

NO_BOOK_FORMULA = {
    "fnn/functions.py:get_activation": "looks an activation up by name",
    "fnn/functions.py:squared_loss": "linear regression's loss, from the seeds' ML basics, not the books",
    "fnn/functions.py:binary_cross_entropy": "logistic regression's loss, not in the books",
    "fnn/functions.py:binary_cross_entropy_with_logits": "logistic regression's loss, not in the books",
    "fnn/layers/core.py:activation_layer": "looks an activation layer up by name",
    "fnn/layers/recurrent.py:time_layer": "looks a time layer up by name",
    "fnn/layers/recurrent.py:zero_state": "builds the zero carry (the book's reset_state); no formula",
    "fnn/optim/alias.py:adadelta": "AdaDelta is Zeiler (2012), not in the books; its docstring cites the paper",
    "fnn/optim/transforms.py:scale_by_adadelta": "AdaDelta is Zeiler (2012), not in the books",
    "fnn/optim/alias.py:get": "looks an optimizer up by name",
    "fnn/optim/transforms.py:check_learning_rate": "argument validation",
    "fnn/optim/transforms.py:check_unit_interval": "argument validation",
    "fnn/optim/transforms.py:check_eps": "argument validation",
}
"""Public functions of the REQUIRED modules that implement no formula of the books, and why."""

_BOOK = re.compile(r"DLFS([12])\s*((?:§\s*\d+(?:\.\d+)*(?:\s*[–-]\s*\d+(?:\.\d+)*)?(?:\s*,\s*)?)+)")
_SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)(?:\s*[–-]\s*(\d+(?:\.\d+)*))?")


class Entry(NamedTuple):
    """One function: where it is, its name in the index, the sections its docstring names."""

    path: str        # repository-relative, e.g. fnn/functions.py
    line: int
    name: str        # the function's name, or "layer.forward" for a Layer's private pair
    public: bool
    summary: str     # the first sentence of the docstring
    sections: tuple  # ((book, "5.6.3", "5.6.3–5.6.4" or "5.6.3"), ...)


def sections(doc: str) -> tuple:
    """The book sections a docstring names: ``(("DLFS1", "4.2.2", "4.2.2–4.2.4"), ...)``."""
    found = []
    for m in _BOOK.finditer(doc or ""):
        for s in _SECTION.finditer(m.group(2)):
            start, end = s.group(1).rstrip("."), (s.group(2) or "").rstrip(".")
            label = f"{start}–{end}" if end else start
            key = (f"DLFS{m.group(1)}", start, label)
            if key not in found:
                found.append(key)
    return tuple(found)


def _summary(doc: str) -> str:
    first = " ".join((doc or "").strip().split("\n\n")[0].split())
    return first if len(first) <= 100 else first[:97].rstrip() + "..."


def _layer_names(tree: ast.Module) -> dict[str, str]:
    """``{"_affine_forward": "affine.forward", ...}`` from ``affine = Layer(_f, _b)`` assignments."""
    names = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "Layer"):
            for arg, part in zip(node.value.args, ("forward", "backward"), strict=False):
                if isinstance(arg, ast.Name):
                    names[arg.id] = f"{node.targets[0].id}.{part}"
    return names


def scan(root: Path = ROOT) -> list[Entry]:
    """Every module-level function under ``root/fnn``, in file and line order."""
    entries = []
    for file in sorted((root / "fnn").rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=rel)
        except SyntaxError as e:
            raise SystemExit(f"equations: {rel} does not parse ({e}); fix it and run again") from e
        layers = _layer_names(tree)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                name = layers.get(node.name, node.name)
                entries.append(Entry(rel, node.lineno, name, not node.name.startswith("_"),
                                     _summary(doc), sections(doc)))
    return entries


def missing_sections(entries: list[Entry]) -> list[Entry]:
    """Public functions of the REQUIRED modules that name no section and are not exempt."""
    def required(path):
        return any(path == r or (r.endswith("/") and path.startswith(r)) for r in REQUIRED)
    return [e for e in entries if e.public and required(e.path) and not e.sections
            and f"{e.path}:{e.name}" not in NO_BOOK_FORMULA]


def _key(section: tuple):
    book, start, _ = section
    return book, tuple(int(p) for p in start.split("."))


def render(entries: list[Entry]) -> str:
    """The Markdown of docs/EQUATIONS.md."""
    rows = sorted(((s, e) for e in entries for s in e.sections),
                  key=lambda se: (_key(se[0]), se[1].path, se[1].line))
    lines = ["# Equation index", "",
             "Generated by `python scripts/equations.py` from the docstrings under `fnn/`; do not edit.",
             "Book section -> the function that implements it -> where it is. DLFS1 is *Deep Learning",
             "from Scratch*, DLFS2 its sequel (the RNN chapters). `name.forward` / `name.backward` is",
             "a layer's pure pair (`fnn.layers`).", ""]
    book = None
    for section, e in rows:
        if section[0] != book:
            if book is not None:
                lines.append("")
            book = section[0]
            lines += [f"## {book}", "", "| Section | Function | Where | What |", "|---|---|---|---|"]
        module = e.path[:-3].replace("/", ".").removesuffix(".__init__")
        what = e.summary.replace("|", "\\|")
        lines.append(f"| §{section[2]} | `{module}.{e.name}` | [{e.path}:{e.line}](../{e.path}#L{e.line})"
                     f" | {what} |")
        if rows and (section, e) == rows[-1]:
            lines.append("")
    n_functions = len({(e.path, e.name) for _, e in rows})
    lines += [f"{len(rows)} rows, {n_functions} functions.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="exit 1 if docs/EQUATIONS.md is stale or a required section is missing")
    args = p.parse_args(argv)
    entries = scan()
    text = render(entries)
    missing = missing_sections(entries)
    for e in missing:
        print(f"equations: {e.path}:{e.line}: public function {e.name} names no book section "
              f"(\"DLFS1 §x.y\" or \"DLFS2 §x.y\") in its docstring", file=sys.stderr)
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"equations: {OUTPUT.relative_to(ROOT)} is stale; run python scripts/equations.py",
                  file=sys.stderr)
            return 1
        return 1 if missing else 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {text.count(chr(10) + '| §')} rows")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

"""docs/EQUATIONS.md is generated from the docstrings and up to date; every public function of
fnn/functions.py, fnn/layers/ and fnn/optim/ names its book section (scripts/equations.py)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("equations", ROOT / "scripts" / "equations.py")
eq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eq)


@pytest.fixture(scope="module")
def entries():
    return eq.scan(ROOT)


def test_index_is_up_to_date(entries):
    current = eq.OUTPUT.read_text(encoding="utf-8") if eq.OUTPUT.exists() else ""
    assert current == eq.render(entries), (
        "docs/EQUATIONS.md is stale: run `python scripts/equations.py` and commit the result")


def test_every_public_function_names_its_book_section(entries):
    missing = eq.missing_sections(entries)
    if missing:
        pytest.fail(
            "these public functions name no book section in their docstring (add e.g. 'DLFS1 §5.6.3', "
            "or, for a helper that implements no formula, an entry in NO_BOOK_FORMULA in "
            "scripts/equations.py):\n" + "\n".join(f"  {e.path}:{e.line} {e.name}" for e in missing),
            pytrace=False)


def test_exemptions_name_existing_public_functions(entries):
    public = {f"{e.path}:{e.name}" for e in entries if e.public}
    stale = sorted(set(eq.NO_BOOK_FORMULA) - public)
    assert not stale, f"NO_BOOK_FORMULA lists functions that no longer exist: {stale}"


def test_the_index_holds_the_core_formulas(entries):
    text = eq.render(entries)
    for row in ("| §3.2.4 | `fnn.functions.sigmoid`", "| §5.6.2 | `fnn.layers.core.affine.forward`",
                "| §4.3.1 | `fnn.gradient.numerical_diff`", "| §2.5.2 | `fnn.perceptron.XOR`"):
        assert row in text


@pytest.mark.parametrize("doc, expected", [
    ("Sigmoid (DLFS1 §3.2.4).", [("DLFS1", "3.2.4", "3.2.4")]),
    ("E (DLFS1 §4.2.2–4.2.4, §5.6.3).", [("DLFS1", "4.2.2", "4.2.2–4.2.4"), ("DLFS1", "5.6.3", "5.6.3")]),
    ("gates (DLFS1 §2.3.1, §2.3.3); LSTM (DLFS2 §6.2.4.)",
     [("DLFS1", "2.3.1", "2.3.1"), ("DLFS1", "2.3.3", "2.3.3"), ("DLFS2", "6.2.4", "6.2.4")]),
    ("DLFS1 chapter 3, see §5.6.3 alone", []),
    ("", []),
])
def test_sections_parser(doc, expected):
    assert list(eq.sections(doc)) == expected


def test_scan_finds_layers_and_missing_sections(tmp_path):
    (tmp_path / "fnn" / "layers").mkdir(parents=True)
    (tmp_path / "fnn" / "layers" / "new.py").write_text(
        'def _f(params, x):\n    """y = 2x (DLFS1 §9.9)."""\n\n'
        'def _b(params, cache, dout):\n    """dx = 2 dout."""\n\n'
        'double = Layer(_f, _b)\n\n'
        'def helper(x):\n    """No formula here."""\n\n'
        'def _private(x):\n    pass\n', encoding="utf-8")
    (tmp_path / "fnn" / "models.py").write_text('def apply(x):\n    """No section, not required."""\n')
    found = eq.scan(tmp_path)
    assert [(e.path, e.name, e.public, e.line) for e in found] == [
        ("fnn/layers/new.py", "double.forward", False, 1), ("fnn/layers/new.py", "double.backward", False, 4),
        ("fnn/layers/new.py", "helper", True, 9), ("fnn/layers/new.py", "_private", False, 12),
        ("fnn/models.py", "apply", True, 1)]
    assert [e.name for e in eq.missing_sections(found)] == ["helper"]
    assert "| §9.9 | `fnn.layers.new.double.forward` | [fnn/layers/new.py:1]" in eq.render(found)


def test_a_module_that_does_not_parse_is_named(tmp_path):
    (tmp_path / "fnn").mkdir()
    (tmp_path / "fnn" / "broken.py").write_text("def f(:\n")
    with pytest.raises(SystemExit, match="fnn/broken.py does not parse"):
        eq.scan(tmp_path)

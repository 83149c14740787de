"""The `fnn` command answers listing, help and argument mistakes without importing JAX or an
experiment; known errors end in one line on stderr (the traceback only with --debug)."""

import ast
import json
import subprocess
import sys

import pytest

from fnn import _experiment_index as index
from fnn import cli

# Run in a fresh interpreter: each command, then which heavy modules it imported.
DRIVER = """
import json, sys
from fnn import cli
argv = json.loads(sys.argv[1])
try:
    code = cli.main(argv)
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "jaxlib", "numpy", "optax", "matplotlib")
               or m.startswith("fnn_experiments."))
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _fresh(argv):
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argv)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    *out, last = proc.stdout.splitlines()
    return json.loads(last), "\n".join(out), proc.stderr


@pytest.mark.parametrize("argv, code, shown", [
    (["list"], 0, "ch5_train_neuralnet"),
    (["--help"], 0, "fnn COMMAND --help"),
    (["run", "--help"], 0, "fnn run NAME"),
    (["run", "ch5_train_neuralnett"], 2, "did you mean ch5_train_neuralnet"),
    (["run", "ch5_train_neuralnet", "--help"], 0, "--quick"),
    (["run", "ch5_train_neuralnet", "--seed", "-1"], 2, "expected 0 to 4294967295"),
    (["run", "all", "--help"], 0, "fnn run all"),
    (["run", "ch5_train_neuralnet", "--checkpoint-dir", __file__], 2, "is a file; expected a folder"),
])
def test_answers_without_importing_jax_or_the_experiment(argv, code, shown):
    result, out, err = _fresh(argv)
    assert result == {"code": code, "heavy": []}
    assert shown in out + err


def test_list_gives_every_experiment_a_whole_sentence(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(cli.experiments())
    for line in lines:
        assert line.rstrip().endswith((".", "!", "?", ")")), f"cut mid-sentence: {line!r}"
    for name, summary in cli.experiments().items():  # the docstring's first sentence, whole
        doc = " ".join(index.docstring(index.files()[name][1].read_text()).split())
        assert doc.startswith(summary) and summary, name


def test_run_without_a_name_and_fnn_without_a_command_are_errors(capsys):
    assert cli.main(["run"]) == 2
    assert "fnn run NAME" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2 and "required: COMMAND" in capsys.readouterr().err


def test_out_naming_a_file_is_refused_before_anything_runs(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "ch5_train_neuralnet", "--out", str(tmp_path / "f" / "sub")])
    assert info.value.code == 2
    assert f"{tmp_path / 'f'} is a file; expected a folder" in capsys.readouterr().err


def test_known_errors_are_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.delenv("FNN_DEBUG", raising=False)

    def fails():
        raise ValueError("fit: batch_size is 0, expected a positive integer")

    assert cli._guarded("fnn run x", fails, debug=cli._debug([])) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[0] == "fnn run x: ValueError: fit: batch_size is 0, expected a positive integer"
    with pytest.raises(ValueError, match="batch_size is 0"):
        cli._guarded("fnn run x", fails, debug=cli._debug(["--debug"]))
    monkeypatch.setenv("FNN_DEBUG", "1")
    with pytest.raises(ValueError):
        cli._guarded("fnn run x", fails, debug=cli._debug([]))

    monkeypatch.delenv("FNN_DEBUG")
    from fnn.files import FolderLockedError  # a RuntimeError, but fnn's own

    def locked():
        raise FolderLockedError("runs/a is locked by another fit (pid 12)")

    assert cli._guarded("fnn run x", locked, debug=False) == 1
    assert "fnn run x: FolderLockedError: runs/a is locked" in capsys.readouterr().err

    def bug():
        raise KeyError("an unexpected error is a bug: its traceback shows")

    with pytest.raises(KeyError):
        cli._guarded("fnn run x", bug, debug=False)


def test_gradcheck_is_a_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["gradcheck", "--help"])
    assert info.value.code == 0 and "usage: fnn gradcheck" in capsys.readouterr().out


def test_an_experiment_option_of_an_unknown_type_is_named():
    with pytest.raises(ValueError, match=r"parser: x's option --n has type 'integer', expected one of"):
        cli.parser("x", "doc", {"--n": {"type": "integer"}})


def test_quick_help_states_the_measured_time(tmp_path):
    (tmp_path / cli.QUICK_TIMES).write_text(json.dumps({"machine": "2 CPU cores", "seconds": {"a": 12.3, "b": 300}}))
    assert cli.quick_time(tmp_path, "a") == "about 12 s on 2 CPU cores"
    assert cli.quick_time(tmp_path, "b") == "about 5 min on 2 CPU cores"
    assert cli.quick_time(tmp_path, "c") is None
    help_text = cli.parser("a", "doc", {}, quick_seconds=cli.quick_time(tmp_path, "a")).format_help()
    assert "about 12 s on 2 CPU cores" in " ".join(help_text.split())


@pytest.mark.parametrize("name", list(index.files()))
def test_every_experiment_declares_its_options_as_a_literal(name):
    """``fnn run NAME --help`` answers before JAX loads only if `ast` can read NAME's OPTIONS and
    its main adds no option of its own beside them."""
    module, path = index.files()[name]
    exp = index.read(name, module, path)
    assert exp.options is not None, f"{path.name}: no literal OPTIONS dict (fnn.cli reads it with ast)"
    help_text = cli.parser(name, exp.doc, exp.options).format_help()
    assert all(flag in help_text for flag in exp.options), name
    calls = [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    assert not [c for c in calls if c.func.attr == "add_argument"], f"{path.name}: options outside OPTIONS"
    parsers = [c for c in calls if c.func.attr == "parser" and getattr(c.func.value, "id", None) == "ex"]
    assert parsers and all(len(c.args) == 3 and getattr(c.args[2], "id", None) == "OPTIONS" for c in parsers), \
        f"{path.name}: main should call ex.parser(NAME, __doc__, OPTIONS)"


def test_counts_below_one_are_refused_by_the_parser(capsys):
    p = cli.parser("x", "", {"--epochs": {"type": "count"}})
    assert p.parse_args(["--epochs", "3"]).epochs == 3
    for bad, why in (("0", "0 is below 1"), ("-2", "-2 is below 1"), ("2.5", "'2.5' is not a whole number")):
        with pytest.raises(SystemExit):
            p.parse_args(["--epochs", bad])
        assert f"argument --epochs: {why}; expected a count of at least 1" in capsys.readouterr().err


def test_every_experiments_counts_are_counts():
    """--epochs 0 must not silently mean the default: every option that counts things is a count."""
    counting = ("--epochs", "--steps", "--seeds", "--length", "--samples", "--trials", "--count", "--train-size",
                "--problems", "--coordinates")
    for name, (module, path) in index.files().items():
        for flag, spec in (index.read(name, module, path).options or {}).items():
            if flag in counting:
                assert spec.get("type") == "count", f"{name}: {flag} is {spec.get('type')!r}"

"""The README's code runs as written: its Python examples (and docs/ERRORS.md's), its quick-start lines'
shape, and its links and the docs' point at files that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _python_blocks(path: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_quick_start_is_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"## Quick start\n+```bash\n(.*?)```", text, flags=re.S)
    assert first_block, "the README starts with a Quick start bash block"
    lines = [ln for ln in first_block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "fnn run ch5_train_neuralnet --quick" in lines[0]
    assert "pip install -e '.[test]'" in lines[1] and "&& pytest" in lines[1]


def test_python_examples_run(capsys):
    blocks = _python_blocks()
    assert blocks, "the README has Python examples"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_docs_python_examples_run(capsys):
    blocks = _python_blocks(ROOT / "docs" / "ERRORS.md")  # the other docs' blocks are fragments (GPUs, hosts)
    assert blocks, "docs/ERRORS.md shows how to resume a run"
    for code in blocks:
        exec(compile(code, "docs/ERRORS.md", "exec"), {"__name__": "docs"})


def test_relative_links_point_at_files():
    for path in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"

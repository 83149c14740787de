"""The README's code runs as written: its Python examples, and its quick-start lines' shape."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


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

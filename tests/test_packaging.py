"""fnn installs from its wheel into a fresh virtualenv, and `fnn run` works from there; the wheel
holds the library (with py.typed) and the experiments as `fnn_experiments`, nothing named `experiments`."""

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_metadata_is_spdx_and_runtime_dependencies_are_what_the_library_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    runtime = {d.split(">")[0].split("=")[0].split("<")[0] for d in project["dependencies"]}
    assert "chex" not in runtime  # only the tests import it
    assert "chex" in " ".join(project["optional-dependencies"]["test"])
    assert (ROOT / "fnn" / "py.typed").is_file()


@pytest.mark.slow  # 2-5 min on 2 busy cores with pip's cache warm: build, install with its dependencies, run
def test_the_wheel_installs_into_a_fresh_venv_and_runs_an_experiment(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
                   check=True, timeout=600)
    (wheel,) = wheels.glob("fnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fnn/py.typed" in names and "fnn_experiments/ch2_xor.py" in names
    assert not any(n.startswith("experiments/") for n in names)

    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / ("Scripts" if sys.platform == "win32" else "bin")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=1200)
    elsewhere = tmp_path / "elsewhere"  # not the repo: the installed package, not the source tree
    elsewhere.mkdir()

    def fnn(*argv):
        return subprocess.run([str(bin_dir / "fnn"), *argv], cwd=elsewhere, capture_output=True, text=True,
                              timeout=600)

    listing = fnn("list")
    assert listing.returncode == 0 and "ch2_xor" in listing.stdout, listing.stderr
    run = fnn("run", "ch2_xor", "--quick", "--out", str(elsewhere / "out"))
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((elsewhere / "out" / "result.json").read_text())
    assert result["experiment"] == "ch2_xor" and result["quick"] is True
    where = subprocess.run([str(bin_dir / "python"), "-c", "import fnn, fnn_experiments; "
                            "print(fnn.__file__); print(fnn_experiments.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(tmp_path / "venv") in w for w in where), where

"""scripts/time_experiments.py reads what the experiments write: its pairs name real experiments and
result.json entries that they fill (the timing itself needs the books' checkouts and full data)."""

import importlib
import json

import pytest

from fnn import _experiment_index as index
from fnn import cli

timing = importlib.import_module("scripts.time_experiments")


def test_every_pair_names_an_experiment_its_options_and_a_book_script():
    experiments = cli.experiments()
    for name, options, paths, others, (book, script), note in timing.PAIRS:
        module, path = index.files()[name]
        cli.parser(name, "", index.read(name, module, path).options).parse_args(options)  # exits when wrong
        assert name in experiments, name
        assert book in ("book1", "book2") and script.endswith(".py") and note
        assert paths and all(p.startswith("metrics.") for p in paths)
        assert all(p.startswith(("metrics.", "history.")) for p in others)


@pytest.mark.parametrize("name", ["ch5_train_neuralnet", "ch4_train_neuralnet"])
def test_the_training_and_other_times_are_read_from_a_real_result(tmp_path, name):
    assert cli.main(["run", name, "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    (paths, others) = [(p, o) for n, _, p, o, _, _ in timing.PAIRS if n == name][0]
    seconds = sum(timing._get(result, p) for p in paths)
    other = sum(timing._get(result, p) for p in others)
    assert seconds > 0 and other > 0 and seconds + other < result["seconds"]

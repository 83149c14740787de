"""The language-model experiments hand a trained model on: dlfs2_ch6_better_rnnlm saves BetterRnnlm
(an fnn checkpoint with the model's settings) and dlfs2_ch7_generate_better_text loads it."""

import json

import numpy as np
import pytest

from fnn import cli, lm
from fnn.data.corpus import generated_corpus, sample
from fnn_experiments import _common as ex
from fnn_experiments import dlfs2_ch6_better_rnnlm as better


def test_better_rnnlm_saves_the_model_that_gave_its_test_perplexity(tmp_path):
    assert cli.main(["run", better.NAME, "--quick", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    model, params, settings = ex.load_lm(tmp_path / "params", "test", better.NAME)
    q = better.QUICK
    assert settings == {"model": "better_rnnlm", "vocab_size": q["vocab_size"], "wordvec_size": q["wordvec_size"],
                        "hidden_size": q["hidden_size"], "drop_rate": q["drop_rate"], "epoch": 1}
    assert result["metrics"]["saved_epoch"] == 1  # one epoch: the best validation is the last
    # the test text of quick mode (ex.load_corpora, seed 0): the loaded model scores it as the run did
    _, _, _, lang = generated_corpus(q["corpus_words"], vocab_size=q["vocab_size"], order=q["order"],
                                     concentration=q["concentration"], seed=0)
    ppl = lm.perplexity(model, params, sample(lang, 5001, seed=200))
    np.testing.assert_allclose(ppl, result["metrics"]["test_perplexity"], rtol=1e-6)


def test_generate_better_text_without_a_trained_model_says_what_writes_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "dlfs2_ch7_generate_better_text", "--params", str(tmp_path / "none")])
    message = str(info.value.code)
    assert str(tmp_path / "none") in message and "fnn run dlfs2_ch6_better_rnnlm" in message


def test_save_lm_refuses_a_model_it_cannot_rebuild(tmp_path):
    with pytest.raises(ValueError, match="model 'mlp', expected one of"):
        ex.save_lm(tmp_path, {"W": np.zeros(2)}, model="mlp")


def test_load_lm_names_the_file_whose_settings_do_not_build_a_model(tmp_path):
    ex.save_lm(tmp_path, {"W": np.zeros(2)}, model="better_rnnlm", vocab_size=10, layers=7)
    with pytest.raises(SystemExit, match=r"--params .*ckpt-000001\.json is a file, expected the folder"):
        ex.load_lm(tmp_path / "ckpt-000001.json", "test", better.NAME)
    with pytest.raises(SystemExit, match=r"ckpt-000001\.json holds settings .*layers.* rnnlm\.better_rnnlm refuses"):
        ex.load_lm(tmp_path, "test", better.NAME)

"""training/ (what train.py does after fitting, and its options), where hand-made mutants survived
(issue 50): the calibration temperature checked against a refit on validation (never test), an
adapter copied out of its run keeping its temperature, and a resumed run continuing as it began."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tweetcls.training import options as train_options
from conftest import train_tiny_run
from tweetcls import Predictor
from tweetcls.loader import load_run_data
from tweetcls.core.calibration import fit_temperature
from tweetcls.core.errors import UsageError


@pytest.fixture()
def saved_run(tmp_path, tiny_model_dir, tiny_csv):
    """A run directory as train.py leaves it for --resume: its options in config.yaml."""
    args = train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--lora-r", "4",
                             "--max-epochs", "2", "--output-dir", str(tmp_path), "--run-name", "r"])
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(args.as_dict()))
    return run_dir


def test_a_resume_continues_the_run_in_its_own_folder_and_refuses_new_training_options(saved_run):
    args = train_options.parse_args(["--resume", str(saved_run), "--num-workers", "0"])
    assert (args.output_dir, args.run_name, args.lora_r) == (str(saved_run.parent), "r", 4)
    for flag, value in (("--lora-r", "16"), ("--lr", "0.1"), ("--max-epochs", "3"), ("--method", "full")):
        with pytest.raises(UsageError, match="--resume continues the run"):
            train_options.parse_args(["--resume", str(saved_run), flag, value])


def test_a_resume_of_a_moved_or_renamed_run_continues_in_the_folder_it_was_given(saved_run, tmp_path):
    """Where a resumed run writes is the folder named by --resume, not the name and place its config.yaml
    remembers: a run copied or renamed (runs/r -> elsewhere/r-old) must not write into a new runs/r."""
    moved = tmp_path / "elsewhere" / "r-old"
    moved.parent.mkdir()
    saved_run.rename(moved)
    args = train_options.parse_args(["--resume", str(moved), "--num-workers", "0"])
    assert Path(args.output_dir) / args.run_name == moved


def test_a_fractional_value_for_an_integer_option_in_yaml_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("max_epochs: 2.5\n")
    with pytest.raises(UsageError, match="integer"):
        train_options.parse_args(["--config", str(config)])
    config.write_text("max_epochs: 2.0\n")
    assert train_options.parse_args(["--config", str(config)]).max_epochs == 2


@pytest.mark.parametrize("extra, words", [
    (["--layers", "odd", "--transfer-data", "pool", "--kd-alpha", "0"], "kd-alpha"),
    (["--layers", "odd", "--student", "minilm-l6"], "exactly one"),
])
def test_distillation_options_that_contradict_each_other_are_refused(extra, words):
    with pytest.raises(UsageError, match=words):
        train_options.parse_args(["--method", "distill", "--teacher", "some-teacher", *extra])


@pytest.fixture(scope="module")
def run(tiny_model_dir, tiny_csv, tmp_path_factory):
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("finish"), "--precision", "32-true",
                          "--max-epochs", "3")


def _split(results: dict, split: str) -> tuple[list[str], torch.Tensor]:
    ds = load_run_data(results).splits[split]
    return list(ds["text"]), torch.tensor(ds["label"])


def test_the_temperature_is_a_refit_on_validation_not_on_test(run):
    results = json.loads((run / "results.json").read_text())
    temperature = results["calibration"]["temperature"]
    predictor = Predictor.from_run(run)
    refit = {}
    for split in ("validation", "test"):
        texts, labels = _split(results, split)
        refit[split] = fit_temperature(torch.from_numpy(predictor.logits(texts)), labels)
    assert abs(refit["validation"] - refit["test"]) > 0.01  # the two splits disagree, so the check means something
    assert temperature == pytest.approx(refit["validation"], rel=1e-2), refit
    assert results["calibration"]["fitted_on"] == "validation"


def test_every_saved_form_keeps_the_temperature_an_adapter_copied_out_of_its_run_too(run, tmp_path):
    results = json.loads((run / "results.json").read_text())
    temperature = results["calibration"]["temperature"]
    assert temperature != pytest.approx(1.0, abs=1e-3)
    copied = tmp_path / "my-adapter"
    shutil.copytree(run / "adapter", copied)
    texts = ["so angry right now", "what a lovely garden"]
    expected = Predictor.from_run(run).probabilities(texts)
    for target in (run, run / "model", copied):
        predictor = Predictor.from_run(target)
        assert predictor.temperature == pytest.approx(temperature), target
        assert np.allclose(predictor.probabilities(texts), expected, atol=1e-5), target

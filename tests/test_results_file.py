"""results.json has one schema (core/results_file.py), one writer and one reader (issue 51)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO, train_tiny_run
from tweetcls.core.errors import UsageError
from tweetcls.core.results_file import (CLASSIFIER_REQUIRED, REQUIRED, SCHEMA_VERSION, read_results, schema_problems,
                                        write_results)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("results"))


def test_a_finished_run_is_written_in_the_schema(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    assert results["schema_version"] == SCHEMA_VERSION
    assert schema_problems(results, REQUIRED + CLASSIFIER_REQUIRED) == []
    assert read_results(run_dir) == results


def test_a_file_from_before_the_version_field_still_reads(run_dir, tmp_path):
    old = json.loads((run_dir / "results.json").read_text())
    del old["schema_version"]
    (tmp_path / "results.json").write_text(json.dumps(old))
    assert read_results(tmp_path) == old


@pytest.mark.parametrize("change, words", [
    ({"schema_version": SCHEMA_VERSION + 1}, f"is results.json version {SCHEMA_VERSION + 1}; this tweetcls reads up to"),
    ({"schema_version": "2"}, "schema_version '2' is not a version"),
    ({"seed": "0"}, "seed is str, not int"),
    ({"multi_label": 1}, "multi_label is int, not bool"),
    ({"seed": True}, "seed is bool, not int"),
    ({"label_names": "joy"}, "label_names is str, not list"),
])
def test_a_file_that_breaks_the_schema_is_one_line_naming_it(run_dir, tmp_path, change, words):
    (tmp_path / "results.json").write_text(json.dumps(json.loads((run_dir / "results.json").read_text()) | change))
    with pytest.raises(UsageError, match=re.escape(words)):
        read_results(tmp_path)


def test_a_float_field_takes_an_int_and_none_where_the_schema_says(run_dir, tmp_path):
    results = json.loads((run_dir / "results.json").read_text()) | {"fit_seconds": 3, "threshold": None}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert read_results(tmp_path)["fit_seconds"] == 3


def test_the_writer_refuses_a_record_that_breaks_the_schema_and_writes_nothing(run_dir, tmp_path):
    results = json.loads((run_dir / "results.json").read_text())
    del results["label_names"]
    with pytest.raises(ValueError, match="label_names is missing"):
        write_results(tmp_path, results)
    assert not (tmp_path / "results.json").exists()
    pretraining = {"method": "mlm", "model": "m", "dataset": "tweets", "seed": 0, "run_dir": str(tmp_path)}
    write_results(tmp_path, pretraining)  # masked-LM pretraining has no labels
    assert read_results(tmp_path)["schema_version"] == SCHEMA_VERSION


def test_nothing_else_opens_a_results_file_by_itself():
    """Every consumer reads through read_results: a json.loads of results.json elsewhere bypasses the schema."""
    bypass = []
    for folder in ("commands", "core", "tweetcls", "training", "lora", "distill", "compress", "datamodules", "mlm",
                   "experiments", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "results_file.py" or path.name == "gpu_check.py":  # gpu_check runs bare on a device
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"results\.json|RESULTS_FILE", line) and re.search(r"json\.load|read_text\(|open\(", line):
                    bypass.append(f"{path.relative_to(REPO)}:{number}")
    assert bypass == []

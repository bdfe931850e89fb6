"""A data file of your own: how it becomes train/validation/test (README "Train on your own
CSV"), and your own validation/test files beside it."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from tweetcls.commands import train
from conftest import make_texts
from tweetcls.datamodules.sources import SPLIT_SEED, load_labelled_data
from tweetcls.core.errors import UsageError


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def texts_of(data, split: str) -> list[str]:
    return list(data.splits[split]["text"])


def test_one_file_is_split_80_10_10_stratified_with_a_fixed_seed(tmp_path):
    rows = make_texts(300)
    data = load_labelled_data(str(write_csv(tmp_path / "all.csv", rows)))
    sizes = {split: len(ds) for split, ds in data.splits.items()}
    assert sizes == {"train": 240, "validation": 30, "test": 30} and SPLIT_SEED == 42
    for split in ("validation", "test"):  # stratified: each label keeps its share (3 labels, 100 rows each)
        assert set(Counter(data.splits[split]["label"]).values()) == {10}
    again = load_labelled_data(str(tmp_path / "all.csv"))
    assert all(texts_of(again, s) == texts_of(data, s) for s in data.splits)  # the same rows every time
    assert not set(texts_of(data, "train")) & set(texts_of(data, "test"))


def test_own_validation_and_test_files_are_used_as_given(tmp_path):
    main = write_csv(tmp_path / "train.csv", make_texts(200))
    val = write_csv(tmp_path / "val.csv", make_texts(12, seed=1))
    test = write_csv(tmp_path / "test.csv", make_texts(16, seed=2))
    both = load_labelled_data(str(main), val_file=val, test_file=test)
    assert texts_of(both, "validation") == [t for t, _ in make_texts(12, seed=1)]
    assert texts_of(both, "test") == [t for t, _ in make_texts(16, seed=2)]
    assert sorted(texts_of(both, "train")) == sorted(t for t, _ in make_texts(200))  # the whole file trains
    only_val = load_labelled_data(str(main), val_file=val)
    assert len(only_val.splits["test"]) == 20 and len(only_val.splits["train"]) == 180  # test: 10% of the file
    only_test = load_labelled_data(str(main), test_file=test)
    assert len(only_test.splits["validation"]) == 20 and len(only_test.splits["train"]) == 180
    assert set(texts_of(only_test, "test")).isdisjoint(texts_of(only_test, "train"))
    assert only_test.label_names == both.label_names


def test_own_files_are_refused_where_they_cannot_work(tmp_path):
    main = write_csv(tmp_path / "train.csv", make_texts(200))
    odd = write_csv(tmp_path / "odd.csv", [("some text", "a label never trained")])
    with pytest.raises(UsageError, match="never occur in the training file"):
        load_labelled_data(str(main), val_file=odd)
    with pytest.raises(UsageError, match="go with a data file; tweet_eval/emotion has its own splits"):
        load_labelled_data("tweet_eval/emotion", val_file=odd)


def test_train_uses_the_files_and_evaluate_scores_the_same_test_file(tiny_model_dir, tmp_path):
    from tweetcls.commands import evaluate

    main = write_csv(tmp_path / "train.csv", make_texts(120))
    test = write_csv(tmp_path / "test.csv", make_texts(24, seed=3))
    assert train.main(["--method", "lora", "--model", str(tiny_model_dir), "--dataset", str(main),
                       "--test-file", str(test), "--output-dir", str(tmp_path / "runs"), "--run-name", "r",
                       "--max-epochs", "1", "--no-progress-bar", "--batch-size", "16"]) == 0
    results = json.loads((tmp_path / "runs" / "r" / "results.json").read_text())
    assert sum(map(sum, results["test"]["confusion_matrix"])) == 24 and results["config"]["test_file"] == str(test)
    out = tmp_path / "eval.json"
    assert evaluate.main([str(tmp_path / "runs" / "r"), "--split", "test", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["task_metric"] == pytest.approx(results["test"]["task_metric"])

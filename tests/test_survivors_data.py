"""datamodules/ against its documented rules (README "Train on your own CSV", docs/options.md):
a file is split 80/10/10, stratified where every label has two rows, with a fixed seed; labels
are numbers or names, each spelled one way; batches change every epoch and a resume skips exactly
what was trained. The split rules are property-based: many files, many label mixes."""

from __future__ import annotations

import csv
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tweetcls.datamodules.corpus import evaluation_texts, normalised
from tweetcls.datamodules.length_grouping import LengthGroupedSampler
from tweetcls.datamodules.sources import label_text, load_labelled_data, make_split, to_ids
from tweetcls.core.errors import UsageError

FAST = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _write(path, labels: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((f"text {i} about {label}", label) for i, label in enumerate(labels))


@FAST
@given(counts=st.lists(st.integers(2, 60), min_size=2, max_size=4), seed=st.integers(0, 10))
def test_a_file_is_split_80_10_10_stratified_by_label(tmp_path_factory, counts, seed):
    import random

    labels = [f"l{i}" for i, n in enumerate(counts) for _ in range(n)]
    random.Random(seed).shuffle(labels)
    n = len(labels)
    if n < 40:
        labels += ["l0"] * (40 - n)
        n = 40
    path = tmp_path_factory.mktemp("split") / "data.csv"
    _write(path, labels)
    data = load_labelled_data(str(path))
    sizes = {split: len(ds) for split, ds in data.splits.items()}
    assert sum(sizes.values()) == n
    for split in ("validation", "test"):
        assert abs(sizes[split] - n / 10) <= 1, sizes  # 10% of the whole file each
        got = Counter(data.splits[split]["label"])
        for label_id, total in Counter(data.label_names.index(x) for x in labels).items():
            assert abs(got.get(label_id, 0) - total * sizes[split] / n) <= 1.5, (split, label_id, got)
    again = load_labelled_data(str(path))  # the same rows every time: the split's seed is fixed
    assert all(again.splits[s]["text"] == data.splits[s]["text"] for s in data.splits)


def test_a_label_with_one_row_is_split_plainly_and_the_same_way_every_time(tmp_path):
    path = tmp_path / "data.csv"
    _write(path, ["a"] * 30 + ["b"] * 29 + ["c"])
    first = load_labelled_data(str(path))
    second = load_labelled_data(str(path))
    assert all(first.splits[s]["text"] == second.splits[s]["text"] for s in first.splits)
    assert sum(len(ds) for ds in first.splits.values()) == 60


def test_numeric_labels_keep_their_numbers_and_each_is_spelled_one_way(tmp_path):
    path = tmp_path / "data.csv"
    _write(path, ["2", "10", "1"] * 10)
    assert load_labelled_data(str(path)).label_names == ["1", "2", "10"]
    assert label_text(1.0) == label_text(1) == label_text("1.0") == label_text(" 1 ") == "1"
    assert to_ids(["2", "c"], ["a", "b", "c"], "f") == [2, 2]
    with pytest.raises(UsageError, match="not in the label set"):
        to_ids(["3"], ["a", "b", "c"], "f")


def test_blank_texts_are_dropped():
    split = make_split(["fine", "   ", "\t\n", "also fine"], [0, 1, 1, 0], "f")
    assert split["text"] == ["fine", "also fine"]


def test_batches_change_every_epoch_and_a_resume_skips_exactly_what_was_trained():
    lengths = [5 + (i * 7) % 30 for i in range(64)]
    sampler = LengthGroupedSampler(lengths, batch_size=4, seed=1, chunk_batches=4)
    epoch0 = sampler.batches()
    sampler.set_epoch(1)
    assert sampler.batches() != epoch0
    sampler.set_epoch(0)
    sampler.resume_at = (0, 3)
    assert list(sampler) == [i for batch in epoch0[3:] for i in batch]


def test_a_training_subset_is_the_same_rows_for_every_seed(tiny_model_dir, tiny_csv):
    from tweetcls.datamodules import TextClassificationDataModule
    from tweetcls.core.build import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    texts = []
    for seed in (0, 1):
        dm = TextClassificationDataModule(str(tiny_csv), tokenizer, seed=seed, max_train_samples=10)
        dm.setup()
        texts.append(dm.texts["train"])
    assert texts[0] == texts[1] and len(texts[0]) == 10


def test_the_corpus_removes_validation_and_test_texts_whatever_their_spacing():
    assert normalised("So  happy\ttoday\n") == normalised("so happy today")
    fake = SimpleNamespace(splits={"train": {"text": ["t"]}, "validation": {"text": ["Val  Text"]},
                                   "test": {"text": ["test text"]}})
    assert evaluation_texts(None, ["x"], {"x": fake}) == {"val text", "test text"}

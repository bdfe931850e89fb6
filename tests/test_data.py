"""Datasets load into the shapes the trainer expects; bad data is one clear error."""

from __future__ import annotations

import logging

import pytest
import torch

from tweetcls.core.errors import UsageError
from tweetcls.datamodules import TextClassificationDataModule, load_labelled_data


def test_tweet_eval_emotion_splits_and_labels(shared_data):
    data = load_labelled_data("tweet_eval/emotion", shared_data)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 3257, "validation": 374, "test": 1421}
    assert data.label_names == ["anger", "joy", "optimism", "sadness"]
    assert data.metric_name == "macro_f1" and not data.multi_label
    assert set(data.splits["test"]["label"]) == {0, 1, 2, 3}


def test_tweet_eval_task_metrics(shared_data):
    assert load_labelled_data("tweet_eval/irony", shared_data).metric_name == "f1[irony]"
    stance = load_labelled_data("tweet_eval/stance/abortion", shared_data)
    assert stance.metric_name == "f1[against,favor]"
    assert stance.label_names == ["none", "against", "favor"]


def test_go_emotions_is_multi_hot(shared_data):
    data = load_labelled_data("go_emotions", shared_data)
    assert data.multi_label and len(data.label_names) == 28
    labels = torch.tensor(data.splits["validation"]["label"])
    assert labels.shape == (5426, 28)
    per_row = labels.sum(1)
    assert per_row.min() >= 1 and (per_row > 1).float().mean() > 0.1  # ~16% have several labels


def test_disaster_split_is_fixed_stratified_and_disjoint(shared_data):
    first = load_labelled_data("disaster_tweets", shared_data)
    again = load_labelled_data("disaster_tweets", shared_data)
    sizes = {k: len(v) for k, v in first.splits.items()}
    assert sum(sizes.values()) == 7613 and sizes["test"] == sizes["validation"] == 762
    assert first.splits["test"]["text"] == again.splits["test"]["text"]
    rates = {k: sum(v["label"]) / len(v) for k, v in first.splits.items()}
    assert max(rates.values()) - min(rates.values()) < 0.01  # stratified: same positive rate (~43%)
    # a partition of train.csv: every row lands in exactly one split
    import collections, csv
    with open(shared_data / "disaster_tweets" / "train.csv", encoding="utf-8", newline="") as f:
        source = collections.Counter(row["text"] for row in csv.DictReader(f))
    assert collections.Counter(t for s in first.splits.values() for t in s["text"]) == source
    assert first.metric_name == "f1[disaster]"


@pytest.mark.parametrize("name, sizes", [
    ("sst2", (67349, 872, 1821)),
    ("imdb", (600, 200, 200)),
    ("covid_tweets", (899, 100, 1000)),
])
def test_other_named_datasets(shared_data, name, sizes):
    data = load_labelled_data(name, shared_data)
    assert tuple(len(data.splits[s]) for s in ("train", "validation", "test")) == sizes


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_local_csv_with_named_columns(tmp_path):
    rows = "\n".join(f"{'good day' if i % 2 else 'bad day'} {i},{'pos' if i % 2 else 'neg'}" for i in range(40))
    path = write(tmp_path / "d.csv", "body,sentiment\n" + rows + "\n")
    data = load_labelled_data(str(path), text_column="body", label_column="sentiment")
    assert data.label_names == ["neg", "pos"]
    assert sum(len(s) for s in data.splits.values()) == 40
    train = data.splits["train"]
    assert all(("good" in t) == (y == 1) for t, y in zip(train["text"], train["label"]))


def test_local_jsonl(tmp_path):
    lines = [f'{{"text": "item {i}", "label": {i % 3}}}' for i in range(30)]
    data = load_labelled_data(str(write(tmp_path / "d.jsonl", "\n".join(lines))))
    assert data.label_names == ["0", "1", "2"]


def test_empty_texts_are_dropped_with_a_count(tmp_path, caplog):
    rows = [f"text {i},{i % 2}" for i in range(30)] + [" ,0", ",1", "\t,0"]
    path = write(tmp_path / "d.csv", "text,label\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        data = load_labelled_data(str(path))
    assert sum(len(s) for s in data.splits.values()) == 30
    assert "dropped 3 empty or whitespace-only texts" in caplog.text


def test_missing_column_names_the_columns(tmp_path):
    path = write(tmp_path / "d.csv", "tweet,label\nhello,0\n")
    with pytest.raises(UsageError, match=r"column 'text' not in .*d.csv \(columns: tweet, label\); pass --text-column"):
        load_labelled_data(str(path))


def test_label_outside_the_label_set(shared_data, tmp_path):
    folder = tmp_path / "tweet_eval" / "emotion"
    folder.mkdir(parents=True)
    src = shared_data / "tweet_eval" / "emotion"
    for f in src.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    labels = (folder / "val_labels.txt").read_text().split("\n")
    labels[4] = "7"
    (folder / "val_labels.txt").write_text("\n".join(labels))
    with pytest.raises(UsageError, match=r"label '7' in tweet_eval/emotion val \(row 5\) is not in the label set"):
        load_labelled_data("tweet_eval/emotion", tmp_path)


def test_non_utf8_file_names_the_encoding_option_which_reads_it(tmp_path):
    rows = "text,label\n" + "".join(f"caf\u00e9 cr\u00e8me number {i},{'ab'[i % 2]}\n" for i in range(30))
    path = write(tmp_path / "d.csv", rows, encoding="latin-1")
    with pytest.raises(UsageError, match="is not utf-8 .*pass its encoding, e.g. --encoding latin-1"):
        load_labelled_data(str(path))
    data = load_labelled_data(str(path), encoding="latin-1")
    assert all("caf\u00e9 cr\u00e8me" in t for split in data.splits.values() for t in split["text"])
    with pytest.raises(UsageError, match="unknown --encoding 'klingon'"):
        load_labelled_data(str(path), encoding="klingon")


def test_missing_file_and_unknown_dataset(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_labelled_data(str(tmp_path / "absent.csv"))
    with pytest.raises(UsageError, match="unknown dataset 'tweets_of_doom'"):
        load_labelled_data("tweets_of_doom", tmp_path)
    with pytest.raises(UsageError, match="data directory .* does not exist"):
        load_labelled_data("sst2", tmp_path / "nope")


def test_dataset_that_is_empty_after_filtering(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n ,0\n  ,1\n")
    with pytest.raises(UsageError, match="no non-empty texts"):
        load_labelled_data(str(path))


def test_datamodule_pads_per_batch_and_shuffles_by_seed(tiny_model_dir, tiny_csv):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)

    def first_batches(seed):
        dm = TextClassificationDataModule(str(tiny_csv), tok, batch_size=8, seed=seed, max_length=6)
        dm.setup("fit")
        return [b for _, b in zip(range(3), dm.train_dataloader())], dm

    a, dm = first_batches(0)
    b, _ = first_batches(0)
    c, _ = first_batches(1)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    assert not all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, c))
    for batch in a:
        assert set(batch) >= {"input_ids", "attention_mask", "labels"}
        assert batch["input_ids"].shape[1] <= 6  # truncated to --max-length
    lengths = [len(x) for x in dm.encoded["validation"]["input_ids"]]
    val = next(iter(dm.val_dataloader()))
    assert val["input_ids"].shape[1] == max(lengths[: len(val["input_ids"])])  # padded to the longest in batch


def test_sample_limits_pick_the_same_rows_for_every_seed(tiny_model_dir, tiny_csv):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    subsets = []
    for seed in (0, 5):
        dm = TextClassificationDataModule(str(tiny_csv), tok, seed=seed, max_train_samples=10)
        dm.setup()
        subsets.append(dm.encoded["train"]["input_ids"])
    assert len(subsets[0]) == 10 and subsets[0] == subsets[1]


@pytest.mark.parametrize("suffix, content, row", [
    (".csv", "text,label\nhello there,a\nnothing here,\nsee you,b\n", 2),
    (".jsonl", '{"text": "hello there", "label": "a"}\n{"text": "see you", "label": null}\n', 2),
    (".json", '[{"text": "x y", "label": "a"}, {"text": "y z", "label": "b"}, {"text": "z w", "label": " "}]', 3),
])
def test_an_empty_label_is_refused_with_its_row(tmp_path, suffix, content, row):
    path = tmp_path / f"data{suffix}"
    path.write_text(content)
    with pytest.raises(UsageError, match=f"row {row} has an empty label in column 'label'"):
        load_labelled_data(str(path))


def test_whole_number_labels_written_two_ways_are_one_class(tmp_path):
    import json

    rows = [{"text": f"text number {i}", "label": [1, 1.0, "1.0", " 1", 0, 0.0, "0"][i % 7]} for i in range(70)]
    path = tmp_path / "numbers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = load_labelled_data(str(path))
    assert data.label_names == ["0", "1"]
    by_text = {t: label for split in data.splits.values() for t, label in zip(split["text"], split["label"])}
    assert all(by_text[r["text"]] == (1 if float(r["label"]) == 1 else 0) for r in rows)


def test_label_text_keeps_names_and_real_fractions_apart():
    from tweetcls.datamodules.sources import label_text

    assert [label_text(x) for x in (1, 1.0, "1.0", " 1 ", "-2", -2.0)] == ["1", "1", "1", "1", "-2", "-2"]
    assert [label_text(x) for x in (0.5, "0.5", "joy", " joy ", "1e3")] == ["0.5", "0.5", "joy", "joy", "1e3"]
    assert [label_text(x) for x in (None, "", "  ", float("nan"))] == [None, None, None, None]


def test_a_csv_cell_over_csvs_default_limit_loads(tmp_path):
    long_review = "word " * 40_000  # 200 KB: over csv's 128 KB field limit, as a long review can be
    rows = [(long_review if i == 0 else f"short text {i}", "ab"[i % 2]) for i in range(30)]
    path = tmp_path / "long.csv"
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    data = load_labelled_data(str(path))
    texts = [t for split in data.splits.values() for t in split["text"]]
    assert len(texts) == 30 and long_review in texts


def _hub_split(texts, labels, feature):
    import datasets as hf

    column = "labels" if isinstance(feature, hf.Sequence) else "label"
    return hf.Dataset.from_dict({"text": texts, column: labels},
                                features=hf.Features({"text": hf.Value("string"), column: feature}))


def test_without_a_local_copy_the_hub_data_is_read_with_its_label_names(monkeypatch, tmp_path):
    """Offline here, but users elsewhere load from the hub: the fallback keeps the hub's label
    names and order, single-label and multi-label (GoEmotions' list of label ids)."""
    import datasets as hf

    from tweetcls.datamodules.sources import load_labelled_data

    single = hf.ClassLabel(names=["joy", "anger", "sadness", "optimism"])  # not sorted: the order is kept
    multi = hf.Sequence(hf.ClassLabel(names=["neutral", "amusement", "anger"]))
    fake = {("cardiffnlp/tweet_eval", "emotion"): {s: _hub_split(["a", "b", "c"], [3, 0, 1], single)
                                                   for s in ("train", "validation", "test")},
            ("google-research-datasets/go_emotions", "simplified"):
                {s: _hub_split(["x", "y"], [[0, 2], [1]], multi) for s in ("train", "validation", "test")}}
    monkeypatch.setattr(hf, "load_dataset", lambda hub_id, config: fake[(hub_id, config)])
    emotion = load_labelled_data("tweet_eval/emotion", tmp_path)  # a data dir without it
    assert emotion.label_names == ["joy", "anger", "sadness", "optimism"] and not emotion.multi_label
    assert emotion.splits["test"]["label"] == [3, 0, 1] and emotion.splits["train"]["text"] == ["a", "b", "c"]
    go = load_labelled_data("go_emotions", tmp_path)
    assert go.label_names == ["neutral", "amusement", "anger"] and go.multi_label
    assert go.splits["validation"]["label"] == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_stance_without_a_target_is_refused_with_the_targets_named(tmp_path):
    with pytest.raises(UsageError, match=r"^stance needs a target: tweet_eval/stance/<abortion\|atheism\|"):
        load_labelled_data("tweet_eval/stance", tmp_path)


def test_a_bad_label_or_an_empty_review_in_an_imdb_file_names_that_file(tmp_path, caplog):
    folder = tmp_path / "imdb"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        label = "neutral" if split == "validation" else "positive"
        (folder / f"{split}.csv").write_text(f"review,sentiment\ngreat film,positive\nmeh,{label}\n")
    with pytest.raises(UsageError, match=str(folder / "validation.csv")):
        load_labelled_data("imdb", tmp_path)
    (folder / "validation.csv").write_text('review,sentiment\ngreat film,positive\n" ",negative\n')
    with caplog.at_level(logging.WARNING):
        assert len(load_labelled_data("imdb", tmp_path).splits["validation"]) == 1
    assert f"{folder / 'validation.csv'}: dropped 1 empty" in caplog.text


def test_label_ids_must_name_a_class():
    from tweetcls.datamodules.sources import to_ids

    assert to_ids(["2", 0, "joy"], ["anger", "joy", "sadness"], "f.csv") == [2, 0, 1]
    for bad in ("3", "-1"):  # one past the last class, and negative
        with pytest.raises(UsageError, match=rf"label '{bad}' in f.csv \(row 1\) is not in the label set"):
            to_ids([bad], ["anger", "joy", "sadness"], "f.csv")


def test_a_missing_local_copy_and_an_unreachable_hub_is_one_error_naming_both(monkeypatch, tmp_path):
    import datasets as hf

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(hf, "load_dataset", offline)
    with pytest.raises(UsageError, match=rf"^dataset go_emotions: {tmp_path / 'go_emotions'} does not exist and the hub "
                                         r"failed \(ConnectionError\); pass --data-dir"):
        load_labelled_data("go_emotions", tmp_path)

"""Read named datasets and local files into one shape: splits of (text, label).

Every source returns a ``LabelledData``: ``train``/``validation``/``test`` as
``datasets.Dataset`` with a ``text`` column and a ``label`` column (a class id, or a
multi-hot float list for multi-label data), the label names, and the task's official
metric. Local copies (``--data-dir``, see shared/data/README.md) come first; the hub is
the fallback where a dataset has a hub id.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import datasets

from tweetcls.datamodules.files import DATA_DIR_ENV, MAX_CELL, cell_text, column, read_lines, read_records, read_table, read_text  # noqa: F401
from tweetcls.core.blank_text import is_blank
from tweetcls.core.errors import UsageError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_SEED = 42  # fixed: the held-out rows of a split we make never depend on --seed
TWEET_EVAL_TASKS = ("emotion", "hate", "irony", "offensive", "emoji", "stance")
STANCE_TARGETS = ("abortion", "atheism", "climate", "feminist", "hillary")


@dataclass
class LabelledData:
    splits: dict[str, datasets.Dataset]
    label_names: list[str]
    multi_label: bool = False
    # Official metric: "macro_f1", "accuracy", or "f1" averaged over ``metric_classes``.
    metric: str = "macro_f1"
    metric_classes: list[str] = field(default_factory=list)

    @property
    def metric_name(self) -> str:
        if self.metric == "f1":
            return "f1[" + ",".join(self.metric_classes) + "]"
        return self.metric


def default_data_dir() -> Path | None:
    """$TWEETCLS_DATA_DIR, else ../shared/data beside this checkout if it exists."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else None


# ---------------------------------------------------------------- reading files: datamodules/files.py

# ---------------------------------------------------------------- building splits


# What pandas reads as a missing cell (read_csv's default na_values): a label written so is a
# missing label, not a class ("nan" and "None" are what df.astype(str) makes of NaN and None).
# Lowercase "none" is absent on purpose: it is a class (TweetEval stance).
MISSING_LABELS = frozenset({"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                            "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def label_text(raw) -> str | None:
    """A raw label cell as the name of its class: stripped text, and whole numbers written one
    way (1, 1.0, "1.0" and " 1 " are all "1"); None for an empty, null or NaN-spelled cell."""
    if raw is None or isinstance(raw, bool):
        return None if raw is None else str(raw).lower()
    if isinstance(raw, float):
        if raw != raw:  # NaN: pandas' empty cell
            return None
        return str(int(raw)) if raw.is_integer() else repr(raw)
    key = str(raw).strip()
    if not key or key in MISSING_LABELS:
        return None
    try:
        number = float(key)
    except ValueError:
        return key
    digits = key.lstrip("+-")
    if digits[:1] == "0" and digits[1:2].isdigit():  # "01" is not "1": a code, kept as written
        return key
    return str(int(number)) if number.is_integer() and digits.replace(".", "", 1).isdigit() else key


def label_texts(labels: list, where: str, column_name: str = "label") -> list[str]:
    """``label_text`` of every cell. Refused with the first bad row and their count: an empty or
    NaN-spelled label (a class named "None" or "nan" would be trained on silently) and a list or
    object (one row, one label: "['joy']" is no class)."""
    out, bad = [], []
    for row, raw in enumerate(labels, start=1):
        if _structured(raw):
            bad.append(f"row {row} has a list or object ({str(raw)[:40]}) in label column {column_name!r}; "
                       "give each row one label, as text or a number")
            continue
        key = label_text(raw)
        if key is None:
            spelled = f" ({str(raw).strip()!r} means missing)" if raw is not None and str(raw).strip() else ""
            bad.append(f"row {row} has an empty label in column {column_name!r}{spelled}; fill it in or remove the row")
            continue
        out.append(key)
    if bad:
        more = f" ({len(bad) - 1} more bad labels)" if len(bad) > 1 else ""
        raise UsageError(f"{where}: {bad[0]}{more}")
    return out


def _structured(raw) -> bool:
    """A list or object, or text that spells one ("['joy']", '{"a": 1}'): several labels in one cell."""
    if isinstance(raw, (list, tuple, dict)):
        return True
    key = raw.strip() if isinstance(raw, str) else ""
    return len(key) >= 2 and (key[0], key[-1]) in (("[", "]"), ("{", "}"))


def to_ids(labels: list, label_names: list[str], where: str) -> list[int]:
    """Map raw labels (names or ids, as text or number) to class ids; reject unknown or empty ones."""
    index = {name: i for i, name in enumerate(label_names)}
    ids = []
    for row, key in enumerate(label_texts(labels, where), start=1):
        if key in index:
            ids.append(index[key])
        elif key.lstrip("-").isdigit() and 0 <= int(key) < len(label_names):
            ids.append(int(key))
        else:
            raise UsageError(
                f"label {key!r} in {where} (row {row}) is not in the label set "
                f"{label_names}; fix the row or the label column"
            )
    return ids


def make_split(texts: list[str], labels: list, where: str) -> datasets.Dataset:
    if len(texts) != len(labels):
        raise UsageError(f"{where}: {len(texts)} texts but {len(labels)} labels; the files must align")
    texts = [t if isinstance(t, str) else "" for t in texts]
    keep = [i for i, t in enumerate(texts) if not is_blank(t)]
    dropped = len(texts) - len(keep)
    if dropped:
        log.warning("%s: dropped %d empty or whitespace-only texts (zero-width and control characters count as "
                    "whitespace)", where, dropped)
    if not keep:
        raise UsageError(f"{where} has no non-empty texts; check --text-column and the file")
    return datasets.Dataset.from_dict(
        {"text": [texts[i] for i in keep], "label": [labels[i] for i in keep]}
    )


MIN_ROWS = 20  # a file split 80/10/10 needs at least a couple of rows in validation and test


def split_off(ds: datasets.Dataset, fraction: float, stratify: bool) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Seeded (stratified) split: (rest, held_out). Same rows for every --seed."""
    if stratify:
        names = [str(i) for i in range(max(ds["label"]) + 1)]
        ds = ds.cast_column("label", datasets.ClassLabel(names=names))
        parts = ds.train_test_split(test_size=fraction, seed=SPLIT_SEED, stratify_by_column="label")
        return (parts["train"].cast_column("label", datasets.Value("int64")),
                parts["test"].cast_column("label", datasets.Value("int64")))
    parts = ds.train_test_split(test_size=fraction, seed=SPLIT_SEED)
    return parts["train"], parts["test"]


# ---------------------------------------------------------------- named datasets


def tweet_eval(task: str, data_dir: Path | None) -> LabelledData:
    base, subtask = task.split("/")[0], task.split("/")[1] if "/" in task else None
    if base not in TWEET_EVAL_TASKS:
        raise UsageError(f"unknown TweetEval task {task!r}; choose from {', '.join(TWEET_EVAL_TASKS)}")
    if base == "stance" and subtask not in STANCE_TARGETS:
        raise UsageError(f"stance needs a target: tweet_eval/stance/<{'|'.join(STANCE_TARGETS)}>")
    folder = data_dir / "tweet_eval" / task if data_dir else None
    mapping = folder.parent / "mapping.txt" if base == "stance" and folder else (folder / "mapping.txt" if folder else None)
    metric, classes = {"irony": ("f1", ["irony"]), "stance": ("f1", ["against", "favor"])}.get(base, ("macro_f1", []))
    if folder is None or not folder.is_dir():
        config = "stance_" + subtask if base == "stance" else base
        return _from_hub("cardiffnlp/tweet_eval", config, metric, classes, f"tweet_eval/{task}", folder)
    names = [line.split("\t")[1].strip() for line in read_lines(mapping) if line.strip()]
    splits = {}
    for split, stem in zip(SPLITS, ("train", "val", "test")):
        where = f"tweet_eval/{task} {stem}"
        labels = to_ids(read_lines(folder / f"{stem}_labels.txt"), names, where)
        splits[split] = make_split(read_lines(folder / f"{stem}_text.txt"), labels, where)
    return LabelledData(splits, names, metric=metric, metric_classes=classes)


def go_emotions(data_dir: Path | None) -> LabelledData:
    folder = data_dir / "go_emotions" if data_dir else None
    if folder is None or not folder.is_dir():
        return _from_hub("google-research-datasets/go_emotions", "simplified", "macro_f1", [], "go_emotions", folder)
    names = [n.strip() for n in read_lines(folder / "labels.txt") if n.strip()]
    splits = {}
    for split, stem in zip(SPLITS, ("train", "dev", "test")):
        path = folder / f"{stem}.tsv"
        rows = list(csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t"))
        texts, labels = [], []
        for row in rows:
            ids = to_ids(row[1].split(","), names, str(path))
            texts.append(row[0])
            labels.append([1.0 if i in ids else 0.0 for i in range(len(names))])
        splits[split] = make_split(texts, labels, str(path))
    return LabelledData(splits, names, multi_label=True)


def disaster_tweets(data_dir: Path | None) -> LabelledData:
    path = _local(data_dir, "disaster_tweets/train.csv")
    rows = read_table(path, ",")
    names = ["not_disaster", "disaster"]
    full = make_split(column(rows, "text", path, "--text-column"),
                      to_ids(column(rows, "target", path, "--label-column"), names, str(path)), str(path))
    # Kaggle's test.csv has no labels: a fixed stratified 80/10/10 split of train.csv.
    rest, test = split_off(full, 0.1, stratify=True)
    train, val = split_off(rest, 1 / 9, stratify=True)
    return LabelledData({"train": train, "validation": val, "test": test}, names,
                        metric="f1", metric_classes=["disaster"])


def sst2(data_dir: Path | None) -> LabelledData:
    names = ["negative", "positive"]
    splits = {}
    for split, stem in zip(SPLITS, ("train", "dev", "test")):
        path = _local(data_dir, f"sst2/{stem}.tsv")
        rows = list(csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        splits[split] = make_split([r[1] for r in rows], to_ids([r[0] for r in rows], names, str(path)), str(path))
    return LabelledData(splits, names, metric="accuracy")


def imdb(data_dir: Path | None) -> LabelledData:
    names = ["negative", "positive"]
    splits = {}
    for split in SPLITS:
        path = _local(data_dir, f"imdb/{split}.csv")
        rows = read_table(path, ",")
        splits[split] = make_split(column(rows, "review", path, "--text-column"),
                                   to_ids(column(rows, "sentiment", path, "--label-column"), names, str(path)),
                                   str(path))
    return LabelledData(splits, names, metric="accuracy")


def covid_tweets(data_dir: Path | None) -> LabelledData:
    names = ["Extremely Negative", "Negative", "Neutral", "Positive", "Extremely Positive"]
    loaded = {}
    for split in ("train", "test"):
        path = _local(data_dir, f"covid_tweets/{split}.csv")
        rows = read_table(path, ",")
        loaded[split] = make_split(column(rows, "OriginalTweet", path, "--text-column"),
                                   to_ids(column(rows, "Sentiment", path, "--label-column"), names, str(path)),
                                   str(path))
    train, val = split_off(loaded["train"], 0.1, stratify=True)
    return LabelledData({"train": train, "validation": val, "test": loaded["test"]}, names)


NAMED: dict[str, Callable[[Path | None], LabelledData]] = {
    "go_emotions": go_emotions,
    "disaster_tweets": disaster_tweets,
    "sst2": sst2,
    "imdb": imdb,
    "covid_tweets": covid_tweets,
}


def _local(data_dir: Path | None, relative: str) -> Path:
    if data_dir is None:
        raise UsageError(f"no data directory: pass --data-dir (or set ${DATA_DIR_ENV}) holding {relative}")
    return data_dir / relative


def _from_hub(hub_id: str, config: str, metric: str, classes: list[str], name: str, folder: Path | None) -> LabelledData:
    """Fallback when no local copy exists: the same data from the Hugging Face Hub."""
    try:
        raw = datasets.load_dataset(hub_id, config)
    except Exception as err:
        where = f"{folder} does not exist and " if folder else "no --data-dir given and "
        raise UsageError(f"dataset {name}: {where}the hub failed ({type(err).__name__}); "
                         f"pass --data-dir pointing at a copy (see shared/data/README.md)") from None
    label_feature = raw["train"].features["label" if "label" in raw["train"].features else "labels"]
    multi = isinstance(label_feature, datasets.Sequence)
    names = list((label_feature.feature if multi else label_feature).names)
    splits = {}
    for split in SPLITS:
        part = raw[split]
        if multi:
            labels = [[1.0 if i in ids else 0.0 for i in range(len(names))] for ids in part["labels"]]
        else:
            labels = part["label"]
        splits[split] = make_split(part["text"], labels, f"{hub_id}/{config} {split}")
    return LabelledData(splits, names, multi_label=multi, metric=metric, metric_classes=classes)


def _file_rows(path: Path, text_column: str, label_column: str, encoding: str,
               option: str | None = None) -> tuple[list, list[str]]:
    """(texts, labels) of a data file; ``option`` names a --val-file/--test-file, whose columns must be the
    training file's (the line said "pass --text-column", a flag that renames the column of every file)."""
    rows = read_records(path, encoding)
    if not rows:
        raise UsageError(f"{path} holds no rows")
    fix = (f"{option} needs the training file's columns ({text_column!r}, {label_column!r}): rename them in its "
           "header") if option else None
    texts = [cell_text(value, str(path), row, text_column)
             for row, value in enumerate(column(rows, text_column, path, "--text-column", fix), start=1)]
    return texts, label_texts(column(rows, label_column, path, "--label-column", fix), str(path), label_column)


def local_file(path: Path, text_column: str, label_column: str, encoding: str = "utf-8",
               val_file: Path | None = None, test_file: Path | None = None) -> LabelledData:
    """Any CSV/TSV/JSON/JSONL file: labels are the sorted distinct values of the label column.

    Alone, the file is split 80/10/10 into train/validation/test, stratified by label where every
    label has enough rows, with the fixed seed SPLIT_SEED (the same rows for every --seed). A
    validation or test file given beside it (same columns) is used as that split, and only the
    missing splits are taken from the file (10% of it each)."""
    files = {"train": path, "validation": val_file, "test": test_file}
    if text_column == label_column:
        raise UsageError(f"--text-column and --label-column are both {text_column!r}: the model would read its answer; "
                         "name the column of texts and the column of labels")
    for split, f in files.items():
        if split != "train" and f is not None and same_file(f, path):
            option = "--val-file" if split == "validation" else "--test-file"
            raise UsageError(f"{option} {f} is the training file: its scores would be on rows the model trained on; "
                             f"give a held-out file, or leave {option} out to split one off")
    if val_file is not None and test_file is not None and same_file(val_file, test_file):
        raise UsageError(f"--val-file and --test-file are the same file ({val_file}): the test score would be on "
                         "the rows that chose the checkpoint; give two different files")
    options = {"train": None, "validation": "--val-file", "test": "--test-file"}
    read = {split: _file_rows(f, text_column, label_column, encoding, options[split])
            for split, f in files.items() if f is not None}
    seen = set(read["train"][0]) if len(read) > 1 else set()  # only a held-out file is checked against it
    for split, option in (("validation", "--val-file"), ("test", "--test-file")):
        if split in read and read[split][0] and all(text in seen for text in read[split][0]):
            # a copy of the training file by another name passed the check by path above
            raise UsageError(f"{option} {files[split]}: every one of its texts is in the training file {path}, so "
                             f"its scores would be on rows the model trained on; give a held-out file, or leave "
                             f"{option} out to split one off")
    names = sorted(set(read["train"][1]), key=lambda x: (not x.lstrip("-").isdigit(), int(x) if x.lstrip("-").isdigit() else 0, x))
    check_one_spelling(read["train"][1], path, label_column)
    if len(names) < 2:
        raise UsageError(f"{path}: column {label_column!r} has {len(names)} distinct label(s); need at least 2")
    train_labels = read["train"][1]
    if len(names) > 10 and len(names) > len(train_labels) / 2:
        raise UsageError(f"{path}: column {label_column!r} has {len(names)} distinct labels in {len(train_labels)} rows, "
                         "most seen once: is it a text column? pass the column of labels as --label-column")
    joined = next((name for name in names if "," in name
                   and all(part.strip() in set(names) for part in name.split(","))), None)
    if joined is not None:
        raise UsageError(f"{path}: label {joined!r} joins labels that also occur alone; a local file holds one label "
                         "a row (multi-label files are not supported): give each row one label")
    index = {name: i for i, name in enumerate(names)}
    for split, (_, labels) in read.items():
        unseen = sorted(set(labels) - set(index))
        if unseen:
            raise UsageError(f"{files[split]}: label(s) {', '.join(map(repr, unseen[:5]))} never occur in the "
                             f"training file {path}; the model could not learn them")
    splits = {split: make_split(texts, [index[x] for x in labels], str(files[split]))
              for split, (texts, labels) in read.items()}
    missing = [split for split in ("validation", "test") if split not in splits]
    if missing and len(splits["train"]) < MIN_ROWS:
        raise UsageError(f"{path} has {len(splits['train'])} usable rows; at least {MIN_ROWS} are needed to split off "
                         f"{' and '.join(missing)} (10% each), or pass --val-file and --test-file")
    rest = splits["train"]
    if "test" in missing:
        rest, splits["test"] = split_off(rest, 0.1, stratify=_can_stratify(rest))
    if "validation" in missing:  # 10% of the whole file, whether or not test came from it
        rest, splits["validation"] = split_off(rest, 1 / 9 if "test" in missing else 0.1, stratify=_can_stratify(rest))
    splits["train"] = rest
    return LabelledData({s: splits[s] for s in ("train", "validation", "test")}, names)


def check_one_spelling(labels: list[str], path: Path, label_column: str) -> None:
    """Refuse two spellings of one label ("JOY" and "joy", "very happy" and "very  happy", "02" and "2"): each would
    be trained as a class of its own, splitting the label's rows between them. Names the two and the
    rows where each first appears. (Surrounding whitespace is already gone: ``label_text`` strips.)"""
    first: dict[str, int] = {}
    by_key: dict[str, str] = {}
    for row, name in enumerate(labels, start=1):
        first.setdefault(name, row)
        number = _as_number(name)
        key = " ".join(name.split()).casefold() if number is None else f"number {number!r}"
        other = by_key.setdefault(key, name)
        if other != name:
            how = "differ only in case or spacing" if number is None else "are one number written two ways"
            raise UsageError(f"{path}: labels {other!r} (first in row {first[other]}) and {name!r} (first in row {row}) "
                             f"{how} and would be trained as two classes; write them the same way in column "
                             f"{label_column!r}")


def _as_number(label: str) -> float | None:
    """The number a label spells ("02", "2", "+2", "2.50"), or None: class codes exported with and
    without zero padding ("02" beside "2") were trained as two classes."""
    try:
        return float(label)
    except ValueError:
        return None


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _can_stratify(ds: datasets.Dataset) -> bool:
    counts: dict[int, int] = {}
    for label in ds["label"]:
        counts[label] = counts.get(label, 0) + 1
    return min(counts.values()) >= 2 and len(ds) >= 20


def known_datasets() -> list[str]:
    return [f"tweet_eval/{t}" for t in TWEET_EVAL_TASKS if t != "stance"] + ["tweet_eval/stance/<target>"] + list(NAMED)


def load_labelled_data(
    name: str,
    data_dir: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str = "utf-8",
    val_file: str | Path | None = None,
    test_file: str | Path | None = None,
) -> LabelledData:
    """Load a named dataset, or a local data file (read in ``encoding``) when ``name`` is a path to
    one, with its own validation/test files where given (see ``local_file``)."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"data directory {data_dir} does not exist; fix --data-dir or ${DATA_DIR_ENV}")
    if (val_file or test_file) and Path(name).suffix.lower() not in (".csv", ".tsv", ".json", ".jsonl"):
        raise UsageError(f"--val-file and --test-file go with a data file; {name} has its own splits")
    if name.startswith("tweet_eval/"):
        data = tweet_eval(name.removeprefix("tweet_eval/"), data_dir)
    elif name in NAMED:
        data = NAMED[name](data_dir)
    elif Path(name).suffix.lower() in (".csv", ".tsv", ".json", ".jsonl"):
        data = local_file(Path(name), text_column, label_column, encoding, val_file and Path(val_file),
                          test_file and Path(test_file))
    else:
        raise UsageError(f"unknown dataset {name!r}; use one of {', '.join(known_datasets())}, "
                         f"or a .csv/.tsv/.json/.jsonl file")
    for split, ds in data.splits.items():
        if len(ds) == 0:
            raise UsageError(f"dataset {name}: the {split} split is empty")
    return data

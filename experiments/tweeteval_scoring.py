"""TweetEval's official score of prediction files, computed as its evaluation script does.

The script (cardiffnlp/tweeteval, evaluaton_script.py) reads gold and predicted label ids as
strings, one a line, drops the text after the last newline, and takes from sklearn's
``classification_report``: macro-F1 (emoji, emotion, hate, offensive), F1 of class "1"
(irony: ironic), the mean of F1 of "1" and "2" (stance: against, favor) over the five
targets' test predictions pooled into one list. Scoring our files the same way is what makes
this project's rows comparable with the published ones.
"""

from __future__ import annotations

from pathlib import Path

from tweetcls.datamodules.sources import STANCE_TARGETS

OFFLINE_TASKS = ("emoji", "emotion", "hate", "irony", "offensive", "stance")  # sentiment's training text is not offline
MACRO_F1_TASKS = ("emoji", "emotion", "hate", "offensive")


def read_ids(path: Path) -> list[str]:
    """The script's reading: ``open(path).read().split("\\n")[:-1]`` (every line ends in a newline)."""
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def prediction_file(predictions: Path, task: str, target: str | None = None) -> Path:
    """Where TweetEval's script looks: ``<task>.txt``, or ``stance/<target>.txt``."""
    return predictions / "stance" / f"{target}.txt" if task == "stance" else predictions / f"{task}.txt"


def gold_and_predicted(tweeteval: Path, predictions: Path, task: str) -> tuple[list[str], list[str]]:
    """Gold and predicted ids in file order; stance: the five targets' lists joined."""
    if task == "stance":
        gold = [g for t in STANCE_TARGETS for g in read_ids(tweeteval / "stance" / t / "test_labels.txt")]
        pred = [p for t in STANCE_TARGETS for p in read_ids(prediction_file(predictions, "stance", t))]
    else:
        gold = read_ids(tweeteval / task / "test_labels.txt")
        pred = read_ids(prediction_file(predictions, task))
    if len(gold) != len(pred):
        raise ValueError(f"{task}: {len(pred)} predictions for {len(gold)} test tweets in {predictions}")
    return gold, pred


def official_score(gold: list[str], pred: list[str], task: str) -> float:
    """The script's number for ``task`` (0-1) from gold and predicted id strings."""
    from sklearn.metrics import classification_report

    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    if task in MACRO_F1_TASKS:
        return float(report["macro avg"]["f1-score"])
    if task == "irony":
        return float(report.get("1", {}).get("f1-score", 0.0))
    if task == "stance":
        return (float(report.get("1", {}).get("f1-score", 0.0)) + float(report.get("2", {}).get("f1-score", 0.0))) / 2
    raise ValueError(f"unknown TweetEval task {task!r}")


def score_predictions(tweeteval: Path, predictions: Path, task: str) -> float:
    """Official score of ``predictions`` (a folder in TweetEval's layout) on ``task``."""
    return official_score(*gold_and_predicted(Path(tweeteval), Path(predictions), task), task)


def write_ids(path: Path, ids: list[int]) -> None:
    """One label id a line, every line newline-terminated (the script drops what follows the last one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    tmp.replace(path)

"""An output file a command names (predict.py/evaluate.py --output) never replaces the user's data.

A path given as an output is refused, with one line and nothing written, when it is one of the
command's own inputs (the same file by any name: a symlink or a hard link counts), or when it
already holds a file that the same command did not write. What a command wrote is recognised by
its first line (``looks_ours``): a predictions CSV header, a predictions JSONL row, or the JSON
object evaluate.py writes. An empty file holds nothing to lose and may be replaced.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from tweetcls.core.errors import UsageError


def same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def first_text(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


def check_output_file(path: str | Path, option: str, inputs: Iterable[str | Path | None],
                      looks_ours: Callable[[str], bool], command: str) -> None:
    """Refuse ``path`` (the value of ``option``) when it is one of ``inputs`` or an existing file
    whose start ``looks_ours`` does not recognise as ``command``'s own output."""
    path = Path(path)
    for source in inputs:
        if source is not None and str(source) != "-" and same_file(path, source):
            raise UsageError(f"{option} {path} is the input file {source}; writing there would replace your data: "
                             "nothing was written, choose another output path")
    if path.is_symlink() or path.exists():
        if path.exists() and not path.is_file():
            raise UsageError(f"{option} {path} exists and is not a file; give a file name")
        start = first_text(path)
        if start.strip() and not looks_ours(start):
            raise UsageError(f"{option} {path} already exists and was not written by {command}; nothing was "
                             "written: choose a new path, or remove the file yourself if you mean to replace it")


PREDICTION_COLUMNS = ("id", "text", "label", "probability", "empty")  # csv_header's fixed start
PREDICTION_KEYS = {"id", "text", "label", "probability", "probabilities", "empty"}  # every JSONL row's keys
MULTI_LABEL_KEY = "labels"  # and a multi-label row's
LABEL_COLUMN = re.compile(r"p_.*|top[0-9]+_(label|probability)")  # csv_header's other columns


def is_predictions(start: str) -> bool:
    """The start of a file predict.py wrote, as it wrote it: its CSV header, or a JSONL row with exactly
    a prediction's keys. A labelled data file's own ``id,text,label,...`` header or ``{"id", "text",
    "label"}`` rows (the columns a user's data often has) were replaced as predictions, and so was a
    predictions file the user had added a column to (their ``gold`` labels)."""
    line = start.splitlines()[0] if start.splitlines() else ""
    if line.startswith(",".join(PREDICTION_COLUMNS) + ","):
        rest = next(csv.reader([line]))[len(PREDICTION_COLUMNS):]
        return all(LABEL_COLUMN.fullmatch(name) for name in rest)
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return (isinstance(row, dict) and list(row)[:3] == ["id", "text", "label"]
            and PREDICTION_KEYS <= set(row) <= PREDICTION_KEYS | {MULTI_LABEL_KEY})


def is_evaluation(start: str) -> bool:
    """The start of a JSON file evaluate.py wrote (a score or a compression ledger)."""
    lines = [line.strip() for line in start.splitlines()[:3]]
    return bool(lines) and lines[0] == "{" and len(lines) > 1 and lines[1].startswith(('"target":', '"task_metric":'))

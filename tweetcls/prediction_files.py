"""Predictions as the files people open: CSV (one column per label's probability, or the top
k) and JSON Lines, in input order with each row's id. Used by predict.py (a chunk of rows at
a time, so a file of any length is written in bounded memory) and the service (whole)."""

from __future__ import annotations

import csv
import io
import json
from typing import IO, Iterable


def csv_header(labels: list[str], top_k: int | None = None) -> list[str]:
    if top_k:
        extra = [f"top{k}_{part}" for k in range(1, top_k + 1) for part in ("label", "probability")]
    else:
        extra = [f"p_{label}" for label in labels]
    return ["id", "text", "label", "probability", "empty", *extra]


def csv_rows(ids: Iterable, texts: Iterable[str], results: Iterable[dict], labels: list[str],
             top_k: int | None = None) -> Iterable[list]:
    width = len(csv_header(labels, top_k)) - 5
    for row_id, text, result in zip(ids, texts, results):
        probs = result["probabilities"]
        if top_k:
            cells = [c for name, p in list(probs.items())[:top_k] for c in (name, f"{p:.6f}")]
            cells += [""] * (width - len(cells))
        else:
            cells = [f"{probs[label]:.6f}" if label in probs else "" for label in labels]
        probability = "" if result["probability"] is None else f"{result['probability']:.6f}"
        yield [row_id, text, result["label"], probability, result["empty"], *cells]


def jsonl_lines(ids: Iterable, texts: Iterable[str], results: Iterable[dict]) -> Iterable[str]:
    for row_id, text, result in zip(ids, texts, results):
        yield json.dumps({"id": row_id, "text": text, **result}, ensure_ascii=False) + "\n"


class PredictionWriter:
    """Rows appended chunk by chunk to an open text file (``newline=""``), as CSV or JSON Lines."""

    def __init__(self, stream: IO[str], jsonl: bool, labels: list[str], top_k: int | None = None) -> None:
        self.stream, self.jsonl, self.labels, self.top_k = stream, jsonl, labels, top_k
        self.csv = None if jsonl else csv.writer(stream)
        if self.csv is not None:
            self.csv.writerow(csv_header(labels, top_k))

    def write(self, ids: list, texts: list[str], results: list[dict]) -> None:
        if self.csv is None:
            self.stream.writelines(jsonl_lines(ids, texts, results))
        else:
            self.csv.writerows(csv_rows(ids, texts, results, self.labels, self.top_k))


def predictions_csv(ids: list, texts: list[str], results: list[dict], labels: list[str],
                    top_k: int | None = None) -> str:
    buffer = io.StringIO()
    PredictionWriter(buffer, False, labels, top_k).write(ids, texts, results)
    return buffer.getvalue()


def predictions_jsonl(ids: list, texts: list[str], results: list[dict]) -> str:
    return "".join(jsonl_lines(ids, texts, results))


class UniqueIds:
    """Refuses a second row of an id already seen: two output rows of one id could not be told apart
    or joined back. One rule for predict.py's files and the service's uploads (which let them pass)."""

    def __init__(self, where: str, column: str, fix: str = "make the ids unique") -> None:
        self.where, self.column, self.fix = where, column, fix
        self.first_row: dict[str, int] = {}  # an id as JSON writes it -> the row it is first in

    def check(self, row_id, n: int) -> None:
        """Raise UsageError when row ``n``'s id was in an earlier row, naming both rows."""
        from tweetcls.core.errors import UsageError

        first = self.first_row.setdefault(json.dumps(row_id, sort_keys=True, default=str), n)
        if first != n:
            same = "both have a blank id" if row_id in ("", None) else f"share the id {row_id!r}"
            raise UsageError(f"{self.where}: rows {first} and {n} {same} (column {self.column!r}); {self.fix}")

"""Predictions as the files people open: CSV (one column per label's probability, or the top
k) and JSON Lines, in input order with each row's id. Used by predict.py and the service."""

from __future__ import annotations

import csv
import io
import json


def predictions_csv(ids: list, texts: list[str], results: list[dict], labels: list[str],
                    top_k: int | None = None) -> str:
    buffer = io.StringIO()
    if top_k:
        extra = [f"top{k}_{part}" for k in range(1, top_k + 1) for part in ("label", "probability")]
    else:
        extra = [f"p_{label}" for label in labels]
    writer = csv.writer(buffer)
    writer.writerow(["id", "text", "label", "probability", "empty", *extra])
    for row_id, text, result in zip(ids, texts, results):
        probs = result["probabilities"]
        if top_k:
            cells = [c for name, p in list(probs.items())[:top_k] for c in (name, f"{p:.6f}")]
            cells += [""] * (len(extra) - len(cells))
        else:
            cells = [f"{probs[label]:.6f}" if label in probs else "" for label in labels]
        probability = "" if result["probability"] is None else f"{result['probability']:.6f}"
        writer.writerow([row_id, text, result["label"], probability, result["empty"], *cells])
    return buffer.getvalue()


def predictions_jsonl(ids: list, texts: list[str], results: list[dict]) -> str:
    return "".join(json.dumps({"id": row_id, "text": text, **result}, ensure_ascii=False) + "\n"
                   for row_id, text, result in zip(ids, texts, results))

"""What a served model is, in one JSON object: the page shows it beside the results."""

from __future__ import annotations

from pathlib import Path

from tweetcls.review.compare import model_label
from tweetcls.core.results_file import RESULTS_FILE, read_results


def model_card(predictor, examples: int = 6, data_dir: str | None = None) -> dict:
    """Dataset, labels, method, base model, parameter counts, test metrics, size, backend,
    training date, decision rule, and a few example texts from the run's test split."""
    run_dir = predictor.run_dir
    results = read_results(run_dir) if run_dir and (run_dir / RESULTS_FILE).is_file() else {}
    card = {"label_names": predictor.label_names, "multi_label": predictor.multi_label, "backend": predictor.backend,
            "source": predictor.info.get("source"), "temperature": predictor.temperature,
            "threshold": predictor.threshold, "min_confidence": predictor.min_confidence,
            "max_length": predictor.max_length}
    if results:
        test = results.get("test", {})
        card |= {"dataset": results.get("dataset"), "method": results.get("method"),
                 "base_model": model_label(str(results.get("model", ""))), "params_total": results.get("params_total"),
                 "params_trainable": results.get("params_trainable"), "task_metric": results.get("task_metric"),
                 "test": {k: test[k] for k in ("task_metric", "accuracy", "macro_f1") if k in test},
                 "trained_utc": (results.get("environment") or {}).get("created_utc"),
                 "size_mb": _size_mb(run_dir, predictor.backend), "examples": _examples(results, examples, data_dir)}
    return card


def _size_mb(run_dir: Path, backend: str) -> float | None:
    files = {"torch": run_dir / "model" / "model.safetensors", "onnx": run_dir / "onnx" / "model.onnx",
             "onnx-int8": run_dir / "onnx" / "model-int8.onnx"}
    path = files.get(backend)
    return round(path.stat().st_size / 1e6, 1) if path is not None and path.is_file() else None


def _examples(results: dict, count: int, data_dir: str | None) -> list[str]:
    """Short texts from the test split (never fails: a card without examples is still a card)."""
    try:
        from tweetcls.loader import load_run_data

        data = load_run_data(results, data_dir)
        texts = [t for t in data.splits["test"]["text"] if 20 <= len(t) <= 140]
        return texts[:count]
    except Exception:  # the data may live elsewhere on the serving machine
        return []

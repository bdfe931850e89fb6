"""Multi-label threshold tuning: the chosen threshold is the val-best one, and train.py reports with it."""

from __future__ import annotations

import json

import pytest
import torch

from tweetcls.commands import train
from tweetcls.core.threshold import tune_threshold


def test_the_threshold_separating_positives_from_negatives_wins():
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    probs = torch.where(labels.bool(), torch.tensor(0.32), torch.tensor(0.12))
    best, scores = tune_threshold(probs, labels, ["a", "b", "c"], "macro_f1")
    # every threshold in (0.12, 0.32) is perfect; ties go to the one nearest 0.5
    assert best == 0.3 and scores[0.3] == pytest.approx(1.0)
    assert scores[0.5] == 0.0 and scores[0.1] < 1.0


def test_multi_label_readings_as_single_label_accuracy_and_support_weighted_f1():
    from tweetcls.core.metrics import build_metrics

    labels = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    # top labels: 1 (a true one), 1 (true), 0 (wrong), 0 (true); at 0.5: rows 1 and 3 exactly right
    probs = torch.tensor([[0.4, 0.9, 0.1], [0.2, 0.8, 0.1], [0.7, 0.1, 0.3], [0.9, 0.2, 0.1]])
    metrics = build_metrics(3, multi_label=True, threshold=0.5)
    metrics.update(probs, labels)
    out = {k: float(v) for k, v in metrics.compute().items() if v.numel() == 1}
    assert out["top_label_accuracy"] == pytest.approx(3 / 4)
    assert out["exact_match"] == pytest.approx(2 / 4)
    # per-label F1 at 0.5: a = 1/2 (1 of 2 found, 1 false alarm), b = 1, c = 0; supports 2, 2, 1
    assert out["weighted_f1"] == pytest.approx((0.5 * 2 + 1 * 2 + 0 * 1) / 5)


def test_train_reports_val_and_test_at_the_tuned_threshold(tiny_model_dir, shared_data, tmp_path):
    common = ["--model", str(tiny_model_dir), "--dataset", "go_emotions", "--data-dir", str(shared_data),
              "--max-train-samples", "96", "--max-eval-samples", "96", "--max-epochs", "1", "--batch-size", "32",
              "--method", "full", "--lr", "1e-3", "--output-dir", str(tmp_path), "--no-progress-bar"]
    assert train.main([*common, "--run-name", "tuned"]) == 0
    tuned = json.loads((tmp_path / "tuned" / "results.json").read_text())
    by_threshold = tuned["threshold_tuning"]["val_metric_by_threshold"]
    assert tuned["threshold"] == tuned["threshold_tuning"]["chosen"]
    assert tuned["val"]["task_metric"] == pytest.approx(by_threshold[str(tuned["threshold"])], abs=1e-6)
    assert tuned["val"]["task_metric"] == pytest.approx(max(by_threshold.values()), abs=1e-6)

    assert train.main([*common, "--run-name", "fixed", "--no-tune-threshold"]) == 0
    fixed = json.loads((tmp_path / "fixed" / "results.json").read_text())
    assert fixed["threshold"] == 0.5 and fixed["threshold_tuning"] == {}
    assert fixed["val"]["task_metric"] == pytest.approx(by_threshold["0.5"], abs=1e-6)  # same seed, same model

    # the tuned threshold travels with the saved model: every loader, and so evaluate.py, uses it
    from tweetcls import load_run

    plain = load_run(tmp_path / "tuned" / "model")
    assert plain.multi_label and plain.threshold == tuned["threshold"]
    # multi-label pictures: per-label F1 (against frequency), and no single-label confusion matrix
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images = set()
    for path in (tmp_path / "tuned").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(path), size_guidance={"images": 0})
        acc.Reload()
        images |= set(acc.Tags()["images"])
    assert "test/per_class_f1" in images and "test/confusion_matrix" not in images

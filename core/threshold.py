"""Choosing the sigmoid threshold of a multi-label classifier on validation data.

0.5 is rarely best for GoEmotions-style data (28 labels, most examples carry one): the
published baselines tune one threshold on the validation split and report test with it.
"""

from __future__ import annotations

import torch

from tweetcls.core.metrics import build_metrics, metric_scalars

GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 ... 0.95


def tune_threshold(probs: torch.Tensor, labels: torch.Tensor, label_names: list[str], metric: str,
                   metric_classes: list[str] | None = None, grid: tuple[float, ...] = GRID,
                   ) -> tuple[float, dict[float, float]]:
    """(the threshold with the best task metric, the metric at every threshold tried).

    Ties go to the threshold nearest 0.5.
    """
    scores = {}
    for threshold in grid:
        metrics = build_metrics(len(label_names), True, threshold)
        metrics.update(probs, labels.long())
        scores[threshold] = metric_scalars(metrics.compute(), label_names, metric, metric_classes or [])["task_metric"]
    best = max(grid, key=lambda t: (scores[t], -abs(t - 0.5)))
    return best, scores

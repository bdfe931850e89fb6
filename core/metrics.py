"""Classification metrics with torchmetrics, plus the dataset's official task metric."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MultilabelExactMatch,
    MultilabelF1Score,
)


class TopLabelHitRate(Metric):
    """Share of examples whose highest-scoring label is one of their true labels: a multi-label
    model read as a single-label one ("accuracy" of its top label), no threshold involved."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("hits", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        top = scores.argmax(dim=-1, keepdim=True)
        self.hits += target.gather(1, top).sum().float()
        self.total += target.shape[0]

    def compute(self) -> torch.Tensor:
        return self.hits / self.total


def build_metrics(num_labels: int, multi_label: bool, threshold: float = 0.5) -> MetricCollection:
    if multi_label:
        return MetricCollection({
            "micro_f1": MultilabelF1Score(num_labels, average="micro", threshold=threshold),
            "macro_f1": MultilabelF1Score(num_labels, average="macro", threshold=threshold),
            "weighted_f1": MultilabelF1Score(num_labels, average="weighted", threshold=threshold),
            "per_class_f1": MultilabelF1Score(num_labels, average="none", threshold=threshold),
            "exact_match": MultilabelExactMatch(num_labels, threshold=threshold),
            "top_label_accuracy": TopLabelHitRate(),
        })
    return MetricCollection({
        "confusion": MulticlassConfusionMatrix(num_labels),  # counts, true label by row (a picture, not a scalar)
        "accuracy": MulticlassAccuracy(num_labels, average="micro"),
        "macro_f1": MulticlassF1Score(num_labels, average="macro"),
        "weighted_f1": MulticlassF1Score(num_labels, average="weighted"),
        "per_class_f1": MulticlassF1Score(num_labels, average="none"),
    })


def metric_scalars(
    computed: dict[str, torch.Tensor],
    label_names: list[str],
    metric: str,
    metric_classes: list[str],
) -> dict[str, float]:
    """Scalars for logging: the collection's values, per-class F1 and ``task_metric``.

    ``task_metric`` is the official number for the dataset: macro-F1 (TweetEval emotion,
    hate, offensive, emoji; GoEmotions), F1 of chosen classes (irony: the ironic class;
    stance: mean of against and favor; disaster tweets: the disaster class) or accuracy.
    """
    out = {k: float(v) for k, v in computed.items() if v.numel() == 1}
    per_class = computed["per_class_f1"]
    for name, value in zip(label_names, per_class.tolist()):
        out[f"f1/{name}"] = float(value)
    if metric == "f1":
        idx = [label_names.index(c) for c in metric_classes]
        out["task_metric"] = float(per_class[idx].mean())
    else:
        out["task_metric"] = out[metric]
    return out


def softmax_or_sigmoid(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def loss_function(multi_label: bool) -> nn.Module:
    return nn.BCEWithLogitsLoss() if multi_label else nn.CrossEntropyLoss()

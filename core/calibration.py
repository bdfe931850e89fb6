"""Probabilities that mean what they say, and a rule for when to abstain.

Temperature scaling (Guo et al., 2017): one scalar T, fitted on the validation split by
minimising the negative log-likelihood of softmax(logits / T) with L-BFGS. It changes no
argmax, so no metric moves; it makes "0.9" mean right about 9 times in 10, which an
abstention threshold needs. Expected calibration error (15 equal-width bins) measures it.

Abstention: predict the label only when its (calibrated) probability reaches a threshold;
``threshold_for_precision`` picks the lowest threshold whose predictions on the validation
split reach a target precision, i.e. the most coverage at that precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The T > 0 that minimises NLL(softmax(logits / T), labels); optimised as log T."""
    logits, labels = logits.detach().double(), labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    return float(F.cross_entropy(logits.double() / temperature, labels.long()))


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                               bins: int = 15) -> float:
    probs = torch.softmax(logits.double() / temperature, dim=-1).float()
    return float(multiclass_calibration_error(probs, labels.long(), num_classes=logits.shape[-1], n_bins=bins))


def calibration_report(val: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """T fitted on val, with NLL on val and ECE on test before and after."""
    temperature = fit_temperature(*val)
    return {"temperature": temperature, "fitted_on": "validation",
            "val_nll_before": nll(*val), "val_nll_after": nll(*val, temperature),
            "test_ece_before": expected_calibration_error(*test),
            "test_ece_after": expected_calibration_error(*test, temperature)}


def threshold_for_precision(confidence: torch.Tensor, correct: torch.Tensor, target: float) -> dict:
    """The lowest confidence threshold at which the predictions kept reach ``target`` precision,
    with the coverage and precision it gives on these examples; None if no threshold does."""
    order = torch.argsort(confidence, descending=True)
    hits = correct[order].double().cumsum(0)
    kept = torch.arange(1, len(order) + 1, dtype=torch.float64)
    precision = hits / kept
    # a threshold sits at a confidence value: keep all examples tied at it
    sorted_conf = confidence[order]
    last_of_tie = torch.ones(len(order), dtype=torch.bool)
    last_of_tie[:-1] = sorted_conf[1:] != sorted_conf[:-1]
    ok = torch.nonzero((precision >= target) & last_of_tie).flatten()
    if len(ok) == 0:
        return {"threshold": None, "target_precision": target, "coverage": 0.0, "precision": None}
    i = int(ok.max())
    return {"threshold": float(sorted_conf[i]), "target_precision": target,
            "coverage": float(kept[i] / len(order)), "precision": float(precision[i])}


def precision_at(confidence: torch.Tensor, correct: torch.Tensor, threshold: float) -> dict:
    """Coverage and precision of the predictions kept at ``threshold`` (confidence >= it): how a
    threshold chosen on one split holds on another."""
    kept = confidence >= threshold
    n = int(kept.sum())
    return {"threshold": float(threshold), "coverage": n / len(confidence) if len(confidence) else 0.0,
            "precision": float(correct[kept].double().mean()) if n else None, "examples": len(confidence)}

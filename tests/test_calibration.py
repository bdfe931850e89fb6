"""Temperature scaling and the abstention threshold, against cases with known answers."""

from __future__ import annotations

import pytest
import torch

from tweetcls.core.calibration import (expected_calibration_error, fit_temperature, nll,
                                       precision_at, threshold_for_precision)


def sampled(temperature_true: float, n: int = 4000, classes: int = 4, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / T_true): the fitted T must come back ~T_true."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=gen) * 3
    labels = torch.multinomial(torch.softmax(logits / temperature_true, dim=-1), 1, generator=gen).squeeze(1)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fitted_temperature_recovers_the_one_the_labels_were_drawn_with(true_t):
    logits, labels = sampled(true_t)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.1)
    # it is the NLL minimum: nudging T either way is worse
    assert nll(logits, labels, t) <= min(nll(logits, labels, t * 1.1), nll(logits, labels, t / 1.1))


def test_temperature_lowers_the_calibration_error_of_an_overconfident_model():
    logits, labels = sampled(2.5)  # the model's logits are 2.5x too sharp
    t = fit_temperature(logits, labels)
    assert expected_calibration_error(logits, labels, t) < 0.5 * expected_calibration_error(logits, labels)
    assert torch.equal((logits / t).argmax(-1), logits.argmax(-1))  # no prediction changes


def test_threshold_for_precision_keeps_the_most_at_the_target():
    confidence = torch.tensor([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0])
    chosen = threshold_for_precision(confidence, correct, target=0.8)
    # top 3: 3/3; top 4: 3/4; top 5: 4/5 = 0.8; top 6: 5/6 = 0.83 -> the lowest threshold is 0.6
    assert chosen["threshold"] == pytest.approx(0.6) and chosen["coverage"] == pytest.approx(6 / 8)
    assert chosen["precision"] == pytest.approx(5 / 6)
    assert threshold_for_precision(confidence, correct, target=1.0)["threshold"] == pytest.approx(0.9)
    assert threshold_for_precision(confidence, torch.zeros(8, dtype=torch.long), 0.5)["threshold"] is None


def test_precision_at_a_threshold_counts_what_it_keeps():
    confidence = torch.tensor([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0])
    held = precision_at(confidence, correct, 0.7)  # keeps 0.99 .. 0.7 (the threshold itself too): 4 of 5 right
    assert held["coverage"] == pytest.approx(5 / 8) and held["precision"] == pytest.approx(4 / 5)
    assert precision_at(confidence, correct, 1.0)["precision"] is None  # nothing kept: no precision, not 0


def test_tied_confidences_are_kept_or_dropped_together():
    confidence = torch.tensor([0.9, 0.7, 0.7, 0.5])
    correct = torch.tensor([1, 1, 0, 1])
    # keeping one of the two 0.7s would give 2/2, but a threshold of 0.7 keeps both (2/3)
    assert threshold_for_precision(confidence, correct, target=0.9)["threshold"] == pytest.approx(0.9)

"""experiments/logit_adjustment.py: tau=0 is the plain argmax; tau>0 moves close calls to rarer classes."""

from __future__ import annotations


import torch
from torchmetrics.functional.classification import multiclass_f1_score


from experiments.logit_adjustment import adjusted_macro_f1

LOG_PRIOR = torch.tensor([0.9, 0.1]).log()


def test_tau_zero_scores_the_plain_argmax():
    logits = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 2, (50,), generator=torch.Generator().manual_seed(1))
    plain = float(multiclass_f1_score(logits, labels, 2, average="macro"))
    assert adjusted_macro_f1(logits, labels, LOG_PRIOR, 0.0) == plain


def test_a_close_call_goes_to_the_rare_class_once_the_prior_is_taken_out():
    # the rare class (1) trails by 1 logit: below log(0.9/0.1) = 2.2, so tau=1 flips it, tau=0 does not
    logits = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    labels = torch.tensor([1, 0])
    assert adjusted_macro_f1(logits, labels, LOG_PRIOR, 0.0) < 1.0
    assert adjusted_macro_f1(logits, labels, LOG_PRIOR, 1.0) == 1.0

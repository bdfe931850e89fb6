"""FastDropout: a Bernoulli(1 - p) keep mask per element, scaled like nn.Dropout."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tweetcls.core.dropout import FastDropout, keep_mask, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_rate_is_one_minus_p_at_every_position(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([1000, 400]), p).float()
    sd = math.sqrt(p * (1 - p) / mask[:, :100].numel())  # for a quarter of the elements
    for offset in range(4):  # the four elements sharing a random word
        assert abs(mask.view(-1)[offset::4].mean().item() - (1 - p)) < 5 * sd
    flat = mask.view(-1)
    assert abs(torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1].item()) < 0.01  # neighbours independent


def test_kept_values_are_scaled_dropped_are_zero_and_gradients_follow():
    torch.manual_seed(1)
    x = torch.randn(64, 128, requires_grad=True)
    out = FastDropout(0.25).train()(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / 0.75)
    assert 0.7 < kept.float().mean() < 0.8
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


def test_eval_mode_and_zero_p_are_the_identity_and_seeds_reproduce():
    x = torch.randn(8, 16)
    assert torch.equal(FastDropout(0.3).eval()(x), x) and torch.equal(FastDropout(0.0).train()(x), x)
    torch.manual_seed(5)
    first = FastDropout(0.3).train()(x)
    torch.manual_seed(5)
    again = FastDropout(0.3).train()(x)
    assert torch.equal(first, again) and not torch.equal(first, FastDropout(0.3).train()(x))


def test_every_dropout_of_a_model_is_swapped_keeping_p():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.3), nn.Linear(4, 2)))
    assert use_fast_dropout(model) == 2
    assert [type(m) for m in (model[1], model[2][0])] == [FastDropout, FastDropout]
    assert (model[1].p, model[2][0].p) == (0.1, 0.3) and use_fast_dropout(model) == 0

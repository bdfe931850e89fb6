"""Dropout whose mask costs about half of torch's on the CPU.

On the CPU ``nn.Dropout`` draws one Bernoulli sample per element (~5 ms forward for a
32 x 64 x 384 activation on 2 threads; the dropout was over half of a LoRA adapter's own
cost in a training step). Here one 64-bit random word gives four 15-bit uniforms, so the
forward takes ~2.4 ms, and forward + backward ~2.4-3.1 ms instead of ~7-8 ms
(``python -m benchmarks.dropout_speed``). Each element is kept independently with probability 1 - round(p * 2^15) /
2^15 (|error| <= 1.6e-5) and scaled by 1 / (1 - p), as nn.Dropout does. Other devices use
torch's own dropout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 15


def keep_mask(shape: torch.Size, p: float, device: torch.device | None = None) -> torch.Tensor:
    """Boolean mask, each element True with probability ~1 - p, drawn from torch's RNG."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()  # 63 uniform bits each
    uniforms = words.view(torch.int16)[:n].view(shape) & (_LEVELS - 1)  # four 15-bit uniforms per word
    return uniforms >= round(p * _LEVELS)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on the CPU; same expected output, same eval behaviour."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        if self.p == 1.0:
            return x * 0.0
        return x * keep_mask(x.shape, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))


def use_fast_dropout(model: nn.Module) -> int:
    """Swap every ``nn.Dropout`` in ``model`` for :class:`FastDropout` (same p); returns how many."""
    swapped = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, child_name, FastDropout(child.p, child.inplace))
                swapped += 1
    return swapped

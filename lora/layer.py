"""A LoRA adapter around one frozen ``nn.Linear`` (Hu et al., 2021).

    y = W x + b + s * B (A dropout(x)),   A: r x in (Kaiming-uniform), B: out x r (zeros)

with s = alpha / r, or alpha / sqrt(r) for rsLoRA (Kalajdzievski, 2023). Because B starts
at zero the wrapped layer computes exactly what the base layer did until training moves B.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tweetcls.core.errors import ParameterError
from tweetcls.core.dropout import FastDropout


def check_lora_hyperparameters(r: int, alpha: float, dropout: float) -> None:
    """Raise a ParameterError naming the bad value, the valid range and a usual choice."""
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise ParameterError("r", f"must be a positive integer (the LoRA rank), got {r!r}; 8 is a common choice")
    if not alpha > 0:
        raise ParameterError("alpha", f"must be > 0 (LoRA scales by alpha / r), got {alpha!r}; 16 is a common choice")
    if not 0.0 <= dropout < 1.0:
        raise ParameterError("dropout", f"must be in [0, 1) (dropout on the LoRA input), got {dropout!r}; 0.1 is a common choice")


class LoRALinear(nn.Module):
    """Wraps ``base`` (kept frozen) and adds a trainable low-rank update."""

    def __init__(
        self,
        base: nn.Linear,
        r: int,
        alpha: float,
        dropout: float = 0.0,
        use_rslora: bool = False,
    ) -> None:
        super().__init__()
        check_lora_hyperparameters(r, alpha, dropout)
        if not (hasattr(base, "in_features") and hasattr(base, "out_features")):
            raise TypeError(f"LoRALinear wraps an nn.Linear (or a frozen stand-in), got {type(base).__name__}")
        self.base = base
        self.base.requires_grad_(False)
        self.r = r
        self.alpha = alpha
        self.use_rslora = use_rslora
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        reference = next(iter(base.parameters()), None)
        reference = reference if reference is not None else next(iter(base.buffers()))
        dtype = reference.dtype if reference.is_floating_point() else torch.float32
        factory = {"device": reference.device, "dtype": dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r, **factory))
        self.lora_dropout = FastDropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_lora_parameters()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def reset_lora_parameters(self) -> None:
        # Same init as nn.Linear for A; zeros for B so the initial update is exactly 0.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def delta_weight(self) -> torch.Tensor:
        """The dense update s * B A that merging adds to the base weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        # Scale the r-wide intermediate, not the out-wide update, and let one addmm do
        # "out + h B^T": two fewer full-size passes over the activations than
        # out + (B (A x)) * s, forward and backward.
        h = F.linear(self.lora_dropout(x), self.lora_A) * self.scaling
        flat = torch.addmm(out.reshape(-1, out.shape[-1]), h.reshape(-1, h.shape[-1]), self.lora_B.t())
        return flat.view(out.shape)

    def merged_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` holding W + s B A, for inference and saving without this wrapper
        (``lora.merge_lora`` swaps every LoRALinear of a model for it; the wrapper is left as it was)."""
        if hasattr(self.base, "dequantized_weight"):
            weight = self.base.dequantized_weight()
        else:
            weight = self.base.weight
        linear = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                           device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight + self.delta_weight().to(weight.dtype))
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear

    def extra_repr(self) -> str:
        return (
            f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:.4g}, "
            f"rslora={self.use_rslora}"
        )

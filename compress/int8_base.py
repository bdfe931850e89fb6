"""A frozen base stored in int8 under trainable fp32 LoRA adapters (QLoRA-style, for CPU).

``Int8Linear`` keeps its weight as int8 with one fp32 scale per output channel (symmetric,
round-to-nearest) and dequantizes it for each forward pass, so gradients still flow to
the input, and so to LoRA factors in lower layers. Frozen Linear weights take 4x less
memory; compute stays fp32, as QLoRA computes in bf16 from its 4-bit store.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tweetcls.lora.layer import LoRALinear
from tweetcls.core.surgery import replace_module


class Int8Linear(nn.Module):
    """Frozen stand-in for an ``nn.Linear``: int8 weight, per-row scale, fp32 bias."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.float() * self.weight_scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight().to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def to_linear(self) -> nn.Linear:
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.dequantized_weight())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_frozen_linears(model: nn.Module) -> list[str]:
    """Store every frozen ``nn.Linear`` (LoRA bases included) as ``Int8Linear``.

    Call after ``inject_lora`` and ``mark_only_lora_as_trainable``: what trains (LoRA
    factors, the head) stays fp32.
    """
    names = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and not any(p.requires_grad for p in m.parameters())]
    for name in names:
        replace_module(model, name, Int8Linear(model.get_submodule(name)))
    return names


def dequantize_linears(model: nn.Module) -> nn.Module:
    """Turn every ``Int8Linear`` back into ``nn.Linear`` (for ``save_pretrained``)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, Int8Linear):
            replace_module(model, name, module.to_linear())
        elif isinstance(module, LoRALinear) and isinstance(module.base, Int8Linear):
            module.base = module.base.to_linear().requires_grad_(False)
    return model

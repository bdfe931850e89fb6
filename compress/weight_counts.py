"""How many weights a compressed variant holds: total, non-zero and trainable, int8 ones included.

Its own module because the ledger and the ONNX Runtime variant both count (the ONNX variant
reports the counts of the model it was exported from).
"""

from __future__ import annotations

import torch
from torch import nn


def _weight_tensors(model: nn.Module):
    """Every weight tensor, quantized ones dequantized (packed weights hide from state_dict)."""
    from tweetcls.compress.dynamic_int8 import quantized_modules, weight_and_bias

    quantized = quantized_modules(model)
    for name, module in quantized.items():
        weight, bias = weight_and_bias(module)
        yield weight.dequantize()
        if bias is not None:
            yield bias
    for name, tensor in model.state_dict().items():
        if any(name.startswith(q + ".") for q in quantized) or name.endswith(("position_ids", "token_type_ids")):
            continue  # quantized (counted above) or index buffers, not weights
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            yield tensor


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total and non-zero weights (int8 ones included), and the fp32 parameters left to train."""
    if hasattr(model, "source_counts"):  # ONNX Runtime: the weights of the model it was exported from
        return dict(model.source_counts)
    total = nonzero = 0
    for tensor in _weight_tensors(model):
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable, "params_nonzero": nonzero}

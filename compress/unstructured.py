"""Unstructured magnitude pruning with ``torch.nn.utils.prune``.

Zeros in a dense weight matrix do not make a dense model smaller or faster; they are the
starting point for sparse kernels and a reference for what structured pruning costs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from tweetcls.core.errors import UsageError
from tweetcls.core.surgery import head_module_names, is_inside


def check_amount(amount: float) -> None:
    if not 0.0 <= amount < 1.0:
        raise UsageError(f"pruning amount must be in [0, 1), got {amount} (e.g. prune:0.3 removes 30%)")


def prunable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The encoder's Linear layers; the classification head is left whole."""
    heads = head_module_names(model)
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not is_inside(name, heads)
    }


def magnitude_prune(model: nn.Module, amount: float, scope: str = "layer") -> dict[str, nn.Linear]:
    """Zero the ``amount`` smallest-|w| weights, per layer (``scope="layer"``) or over all
    prunable layers at once (``scope="global"``); masks stay until ``make_permanent``."""
    check_amount(amount)
    layers = prunable_linears(model)
    if scope == "layer":
        for module in layers.values():
            prune.l1_unstructured(module, name="weight", amount=amount)
    elif scope == "global":
        prune.global_unstructured([(m, "weight") for m in layers.values()],
                                  pruning_method=prune.L1Unstructured, amount=amount)
    else:
        raise UsageError(f"pruning scope must be 'layer' or 'global', got {scope!r}")
    return layers


def make_permanent(model: nn.Module) -> None:
    """Fold the masks into plain weight tensors (no ``weight_orig``/``weight_mask`` left)."""
    for module in model.modules():
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")


def sparsity_report(model: nn.Module) -> dict:
    """Fraction of zero weights per prunable layer and over all of them."""
    per_layer, zeros, total = {}, 0, 0
    for name, module in prunable_linears(model).items():
        weight = module.weight
        z = int(torch.count_nonzero(weight == 0))
        per_layer[name] = z / weight.numel()
        zeros, total = zeros + z, total + weight.numel()
    return {"per_layer": per_layer, "overall": zeros / total if total else 0.0}

"""Structured pruning of FFN neurons: a smaller dense model that ``from_pretrained`` loads.

Each transformer block's feed-forward network is ``h -> I -> h``; removing an
intermediate neuron deletes a row of the first matrix and a column of the second, so
the model really shrinks and gets faster. Every block keeps the same number of neurons
because Hugging Face configs hold one ``intermediate_size`` for all layers.

Attention heads are not removed: transformers 5 dropped ``prune_heads`` and its configs
cannot express a per-layer head count or a head size other than hidden/heads.
"""

from __future__ import annotations

import torch
from torch import nn

from tweetcls.compress.unstructured import check_amount
from tweetcls.core.errors import UsageError
from tweetcls.core.surgery import architecture, replace_module

# model type -> (path of the block list in the backbone, FFN in, FFN out, config field)
FFN_LAYOUT: dict[str, tuple[str, str, str, str]] = {
    "bert": ("encoder.layer", "intermediate.dense", "output.dense", "intermediate_size"),
    "roberta": ("encoder.layer", "intermediate.dense", "output.dense", "intermediate_size"),
    "xlm-roberta": ("encoder.layer", "intermediate.dense", "output.dense", "intermediate_size"),
    "electra": ("encoder.layer", "intermediate.dense", "output.dense", "intermediate_size"),
    "mpnet": ("encoder.layer", "intermediate.dense", "output.dense", "intermediate_size"),
    "distilbert": ("transformer.layer", "ffn.lin1", "ffn.lin2", "hidden_dim"),
}


def _layout(model: nn.Module) -> tuple[nn.ModuleList, str, str, str]:
    """(blocks, FFN-in path, FFN-out path, config field), found from the model type."""
    model_type = architecture(model)
    if model_type not in FFN_LAYOUT:
        raise UsageError(f"structured pruning does not know model type {model_type!r}; "
                         f"it knows {', '.join(sorted(FFN_LAYOUT))}")
    blocks, first, second, field = FFN_LAYOUT[model_type]
    backbone = getattr(model, model.base_model_prefix, model)
    return backbone.get_submodule(blocks), first, second, field


def ffn_pairs(model: nn.Module) -> list[tuple[nn.Linear, nn.Linear]]:
    blocks, first, second, _ = _layout(model)
    return [(block.get_submodule(first), block.get_submodule(second)) for block in blocks]


def neuron_importance(first: nn.Linear, second: nn.Linear) -> torch.Tensor:
    """Weight-norm importance of each intermediate neuron: |in row| * |out column|."""
    incoming = torch.cat([first.weight, first.bias[:, None]], dim=1).norm(dim=1) if first.bias is not None \
        else first.weight.norm(dim=1)
    return incoming * second.weight.norm(dim=0)


def _slice_linear(linear: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    weight = linear.weight.detach().index_select(dim, keep)
    out_f, in_f = weight.shape
    new = nn.Linear(in_f, out_f, bias=linear.bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach() if dim == 1 else linear.bias.detach()[keep])
    return new


def prune_ffn_neurons(model: nn.Module, amount: float) -> dict[int, torch.Tensor]:
    """Remove the ``amount`` least important intermediate neurons of every block (in place).

    Returns the kept neuron indices per block, in their original order.
    """
    check_amount(amount)
    blocks, first_path, second_path, field = _layout(model)
    width = blocks[0].get_submodule(first_path).out_features
    keep_n = max(1, round(width * (1 - amount)))
    kept = {}
    for i, block in enumerate(blocks):
        first, second = block.get_submodule(first_path), block.get_submodule(second_path)
        keep = torch.topk(neuron_importance(first, second), keep_n).indices.sort().values
        for path, linear, dim in ((first_path, first, 0), (second_path, second, 1)):
            replace_module(block, path, _slice_linear(linear, keep, dim))
        kept[i] = keep
    setattr(model.config, field, keep_n)
    return kept

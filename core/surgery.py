"""Small operations on a Hugging Face classifier's module tree, shared by every method.

Which modules form the classification head, which layer produces the logits, replacing a
submodule by name, and the label names a saved config holds: LoRA, pruning, quantization
and distillation all need them, and each must answer the same way.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn


def architecture(model: nn.Module) -> str | None:
    """The model's transformers ``model_type``, a saved mean-pooled model's ``tweetcls_mean_`` prefix removed."""
    from tweetcls.core.modeling_tweetcls import MODEL_TYPE_PREFIX

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return model_type.removeprefix(MODEL_TYPE_PREFIX) if isinstance(model_type, str) else model_type


def head_module_names(model: nn.Module) -> list[str]:
    """Modules that form the classification head (trained alongside LoRA adapters, left whole
    by pruning): everything outside the backbone (``classifier``, ``pre_classifier``, ``score``)
    plus BERT's pooler, which plays the part of the dense layer in RoBERTa's head."""
    prefix = getattr(model, "base_model_prefix", "")
    backbone = getattr(model, prefix, None) if prefix else None
    if backbone is None or backbone is model:
        return []
    names = [name for name, child in model.named_children() if child is not backbone]
    names = [n for n in names if any(True for _ in getattr(model, n).parameters())]
    if getattr(backbone, "pooler", None) is not None:
        names.append(f"{prefix}.pooler")
    return names


def is_inside(name: str, module_names: Iterable[str]) -> bool:
    """Whether the dotted ``name`` (a module or parameter) is one of ``module_names`` or below one."""
    return any(name == m or name.startswith(m + ".") for m in module_names)


def output_layer(model: nn.Module) -> nn.Linear:
    """The linear layer that produces a Hugging Face classifier's logits."""
    for attribute in ("classifier", "score"):
        head = getattr(model, attribute, None)
        if isinstance(head, nn.Linear):
            return head  # BERT, DistilBERT, Llama-style heads
        if head is not None and isinstance(getattr(head, "out_proj", None), nn.Linear):
            return head.out_proj  # MPNet, RoBERTa
    raise ValueError(f"cannot find the output layer of {type(model).__name__}")


def replace_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` where the submodule called ``name`` (dotted) is."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def config_label_names(config) -> list[str]:
    """A config's label names in output order."""
    return [str(config.id2label[i]) for i in range(config.num_labels)]

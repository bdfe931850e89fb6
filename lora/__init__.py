"""LoRA written from scratch: a wrapping layer, model surgery, adapter files."""

from tweetcls.lora.adapter_io import load_adapter, lora_state_dict, save_adapter
from tweetcls.lora.inject import (
    ALL_LINEAR,
    default_targets,
    inject_lora,
    lora_layers,
    mark_only_lora_as_trainable,
    merge_lora,
)
from tweetcls.lora.layer import LoRALinear

__all__ = [
    "ALL_LINEAR",
    "LoRALinear",
    "default_targets",
    "inject_lora",
    "load_adapter",
    "lora_layers",
    "lora_state_dict",
    "mark_only_lora_as_trainable",
    "merge_lora",
    "save_adapter",
]

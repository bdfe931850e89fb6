"""Adapter-only files: the LoRA factors and head weights as safetensors, plus a JSON config.

An adapter for MiniLM-L6 is a few hundred kB next to a 90 MB model, and safetensors
loads without executing any pickled code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tweetcls.core.errors import UsageError
from tweetcls.lora.inject import inject_lora, lora_layers
from tweetcls.core.surgery import head_module_names, is_inside

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def lora_state_dict(model: nn.Module, include_head: bool = True) -> dict[str, torch.Tensor]:
    """The tensors an adapter file holds: every LoRA factor, and the head if asked."""
    heads = head_module_names(model) if include_head else []
    keep = {}
    for name, tensor in model.state_dict().items():
        is_lora = name.endswith(".lora_A") or name.endswith(".lora_B")
        is_head = is_inside(name, heads)
        if is_lora or is_head:
            keep[name] = tensor
    return keep


def adapter_config(model: nn.Module) -> dict:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers to describe")
    first = next(iter(layers.values()))
    return {
        "r": first.r,
        "alpha": first.alpha,
        "dropout": first.lora_dropout.p if isinstance(first.lora_dropout, nn.Dropout) else 0.0,
        "use_rslora": first.use_rslora,
        "target_modules": list(layers),
        "head_modules": head_module_names(model),
    }


def save_adapter(model: nn.Module, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``adapter_model.safetensors`` and ``adapter_config.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in lora_state_dict(model).items()}
    save_file(tensors, str(directory / ADAPTER_WEIGHTS))
    config = adapter_config(model) | (extra or {})
    (directory / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2))
    return directory


def load_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """Inject LoRA as the saved config says (if not there yet) and load the saved tensors."""
    directory = Path(directory)
    weights, config_file = directory / ADAPTER_WEIGHTS, directory / ADAPTER_CONFIG
    for path in (weights, config_file):
        if not path.is_file():
            raise UsageError(f"adapter file {path} is missing; point at a directory written by save_adapter")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"adapter config {config_file} is damaged ({err}); export or train the run again") from None
    if not lora_layers(model):
        # Exact module names, so the same layers are wrapped as when the adapter was saved.
        inject_lora(model, config["target_modules"], r=config["r"], alpha=config["alpha"],
                    dropout=config.get("dropout", 0.0), use_rslora=config.get("use_rslora", False))
    try:
        tensors = load_file(str(weights))
    except (OSError, SafetensorError) as err:
        raise UsageError(f"adapter file {weights} is damaged or cut short ({str(err).splitlines()[0]}); "
                         "train the run again or restore the file") from None
    own = model.state_dict()
    unexpected = sorted(set(tensors) - set(own))
    if unexpected:
        raise UsageError(
            f"adapter {weights} does not fit this model: {len(unexpected)} unknown tensors "
            f"(first: {unexpected[0]}); was it trained on another base model?"
        )
    for key, tensor in tensors.items():
        if own[key].shape != tensor.shape:
            raise UsageError(
                f"adapter tensor {key} has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(own[key].shape)}; was it trained with another base model or label set?"
            )
    missing = [k for k in own if (k.endswith(".lora_A") or k.endswith(".lora_B")) and k not in tensors]
    if missing:
        raise UsageError(f"adapter {weights} lacks {len(missing)} LoRA tensors (first: {missing[0]})")
    model.load_state_dict(tensors, strict=False)
    return model

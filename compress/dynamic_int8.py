"""Dynamic int8 quantization of Linear layers for CPU inference, saved as safetensors.

Measured on MiniLM-L6 (batch 32 x 64 tokens, 2 threads, benchmarks/quantization_backends.py,
2026-11-23): ``torch.ao.quantization.quantize_dynamic`` ran 1.9x faster than fp32, torchao
0.18's ``Int8DynamicActivationInt8WeightConfig`` 1.2x, so torch.ao is used. torch marks it
deprecated; if a later torch removes it, torchao (when installed) is the fallback.

The word-embedding table is quantized too (8-bit rows with float scale and offset): in
a small encoder it holds half the weights, so int8 Linear layers alone would shrink
MiniLM-L6 only 1.5x on disk.

Quantized modules pickle their packed weights, so they are saved here as plain tensors
(int8 weights, per-channel scales and zero points, float biases) in safetensors and
re-packed on load: nothing is unpickled.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tweetcls.core.pooling import apply_checkpoint_pooling
from tweetcls.core.saved_model import mark_pooling

QUANTIZED_WEIGHTS = "model_int8.safetensors"
QUANTIZATION_CONFIG = "quantization.json"


def _input_embedding_name(model: nn.Module) -> str | None:
    getter = getattr(model, "get_input_embeddings", None)
    table = getter() if getter else None
    return next((name for name, module in model.named_modules() if module is table), None)


def _quantize_dynamic(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the user did not call it
        from torch.ao.quantization import (
            float_qparams_weight_only_qconfig,
            per_channel_dynamic_qconfig,
            quantize_dynamic,
        )

        spec: dict = {nn.Linear: per_channel_dynamic_qconfig}
        if (embedding := _input_embedding_name(model)) is not None:
            spec[embedding] = float_qparams_weight_only_qconfig
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def quantize_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Linear layers with int8 weights (per output channel) and int8 activations computed
    on the fly; everything else stays fp32. For inference on CPU."""
    model = model if inplace else copy.deepcopy(model)
    try:
        return _quantize_dynamic(model.eval())
    except (ImportError, AttributeError):  # a torch without torch.ao.quantization
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
        except ImportError:
            raise RuntimeError("this torch has no torch.ao.quantization; pip install torchao") from None
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        return model


def quantized_modules(model: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.nn.quantized import Embedding as QuantEmbedding
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, (DynamicQuantLinear, QuantEmbedding))}


def weight_and_bias(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    if hasattr(module, "_weight_bias"):
        return module._weight_bias()
    return module.weight(), None


def save_int8(model: nn.Module, directory: str | Path) -> Path:
    """Write config.json, the int8 weights and the fp32 rest as safetensors."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    quantized = quantized_modules(model)
    tensors = {}
    for name, module in quantized.items():
        weight, bias = weight_and_bias(module)
        # scales and zero points keep their dtypes (float64/int64 or float32), so a reload
        # rebuilds bit-identical quantized weights
        tensors[f"{name}.qweight"] = weight.int_repr().contiguous()
        tensors[f"{name}.qscales"] = weight.q_per_channel_scales().contiguous()
        tensors[f"{name}.qzero_points"] = weight.q_per_channel_zero_points().contiguous()
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    for name, tensor in model.state_dict().items():
        inside_quantized = any(name.startswith(q + ".") for q in quantized)
        if not inside_quantized and isinstance(tensor, torch.Tensor) and not tensor.is_quantized:
            tensors[name] = tensor.detach().contiguous()
    save_file(tensors, str(directory / QUANTIZED_WEIGHTS))
    model.config.save_pretrained(directory)
    mark_pooling(directory)
    (directory / QUANTIZATION_CONFIG).write_text(json.dumps(
        {"scheme": "torch.ao dynamic int8, per-channel weights", "modules": sorted(quantized)}, indent=2))
    return directory


def load_int8(directory: str | Path) -> nn.Module:
    """Rebuild the model written by ``save_int8``: same outputs, no pickle involved."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    directory = Path(directory)
    config = AutoConfig.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    apply_checkpoint_pooling(model, directory)
    tensors = load_file(str(directory / QUANTIZED_WEIGHTS))
    names = json.loads((directory / QUANTIZATION_CONFIG).read_text())["modules"]
    plain = {k: v for k, v in tensors.items() if k.rpartition(".")[0] not in names}
    model.load_state_dict(plain, strict=False)
    _quantize_dynamic(model)
    for name, module in quantized_modules(model).items():
        weight = torch._make_per_channel_quantized_tensor(
            tensors[f"{name}.qweight"], tensors[f"{name}.qscales"], tensors[f"{name}.qzero_points"], axis=0)
        if hasattr(module, "set_weight_bias"):
            module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
        else:
            module.set_weight(weight)
    return model

"""A trained classifier as ONNX, and its ONNX Runtime int8 variant.

The merged fp32 model is traced (TorchScript exporter: one self-contained file) with
dynamic batch and sequence axes; the pooling hooks run during tracing, so mean pooling is
part of the graph. The folder gets the tokenizer and ``tweetcls.json`` (labels, pooling,
multi-label threshold, temperature), and the same facts go into the ONNX file's metadata,
so the folder (or the file with its side files) is all a consumer needs.

int8: ONNX Runtime's dynamic quantization, per output channel, int8 weights.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from tweetcls_core.atomic import atomic_directory
from tweetcls_core.errors import UsageError

FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
META_FILE = "tweetcls.json"


class _LogitsOnly(nn.Module):
    """Positional inputs in ``names`` order -> logits (what the ONNX graph exposes)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).logits


def export_onnx(model: nn.Module, tokenizer, folder: str | Path, meta: dict, opset: int = 17) -> Path:
    """Write ``folder`` whole: model.onnx, tokenizer files and tweetcls.json."""
    if any(t.is_quantized for t in model.state_dict().values() if isinstance(t, torch.Tensor)):
        raise UsageError("the ONNX backends export an fp32 model; load the run or its model/ folder, "
                         "not a torch int8 variant")
    sample = tokenizer(["an example text", "two"], padding=True, return_tensors="pt")
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]
    wrapper = _LogitsOnly(model.eval(), names).eval()
    with atomic_directory(folder) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python control flow the graph does not need
        torch.onnx.export(wrapper, tuple(sample[n] for n in names), str(tmp / FP32_FILE), input_names=names,
                          output_names=["logits"], opset_version=opset, dynamo=False,
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}})
        _add_metadata(tmp / FP32_FILE, meta)
        tokenizer.save_pretrained(tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    model.eval()
    return Path(folder) / FP32_FILE


def quantize_onnx(folder: str | Path) -> Path:
    """model-int8.onnx beside model.onnx: ONNX Runtime dynamic int8, per-channel weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    target = folder / INT8_FILE
    tmp = folder / f".{INT8_FILE}.tmp"
    quantize_dynamic(str(folder / FP32_FILE), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
    tmp.replace(target)
    return target


def _add_metadata(path: Path, meta: dict) -> None:
    import onnx

    graph = onnx.load(str(path))
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(graph, str(path))


def read_metadata(folder: str | Path) -> dict:
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise UsageError(f"{folder} has no {META_FILE}; export it with predict.py --backend onnx")
    return json.loads(path.read_text())

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
from types import SimpleNamespace

import torch
from torch import nn

from tweetcls.core.atomic import atomic_directory
from tweetcls.core.ownership import record
from tweetcls.core.errors import UsageError

from tweetcls.compress.onnx_files import FP32_FILE, INT8_FILE, META_FILE, onnx_session, read_metadata  # noqa: F401


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
    with atomic_directory(folder, "onnx") as tmp, warnings.catch_warnings():
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
    record(folder, INT8_FILE)
    return target


def _add_metadata(path: Path, meta: dict) -> None:
    import onnx

    graph = onnx.load(str(path))
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(graph, str(path))


class OnnxRuntimeClassifier(nn.Module):
    """An exported classifier run by ONNX Runtime behind the interface of a Hugging Face one
    (``model(**inputs).logits``, ``.config``), so the compression ledger times and scores it
    like the torch variants. It holds no torch weights: its counts are the source model's."""

    def __init__(self, path: str | Path, config, source_counts: dict[str, int]) -> None:
        super().__init__()
        self.path, self.config, self.source_counts = Path(path), config, source_counts
        self.session = onnx_session(path, torch.get_num_threads())  # the ledger times every variant alike
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **extra):
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        if feeds.get("attention_mask") is None:
            feeds["attention_mask"] = torch.ones_like(input_ids)
        if "token_type_ids" in self.input_names and feeds.get("token_type_ids") is None:
            feeds["token_type_ids"] = torch.zeros_like(input_ids)
        logits = self.session.run(None, {n: feeds[n].cpu().numpy() for n in self.input_names})[0]
        return SimpleNamespace(logits=torch.from_numpy(logits))


def onnx_runtime_variant(model: nn.Module, tokenizer, folder: str | Path, quantization: str | None = None,
                         calibration_texts: list[str] | None = None) -> OnnxRuntimeClassifier:
    """Export ``model`` (fp32) into ``folder``, quantize it if asked (``int8``: dynamic;
    ``int8-static``: calibrated on ``calibration_texts``), and load it in ONNX Runtime."""
    from tweetcls.compress.weight_counts import parameter_counts

    counts = parameter_counts(model) | {"params_trainable": 0}  # an ONNX graph trains nothing
    path = export_onnx(model, tokenizer, folder, {"pooling": getattr(model.config, "pooling", "cls")})
    if quantization == "int8":
        path = quantize_onnx(folder)
    elif quantization == "int8-static":
        from tweetcls.compress.onnx_static import calibration_sample, quantize_onnx_static

        path = quantize_onnx_static(folder, calibration_sample(calibration_texts), tokenizer)
    return OnnxRuntimeClassifier(path, model.config, counts)

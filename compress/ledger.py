"""The compression ledger: build each variant of a model, measure it, tabulate it.

A variant is a ``+``-joined list of steps applied in order to a copy of the fp32 model:

    none                  the model as trained
    prune:A               unstructured L1 pruning of A (in [0,1)) of each encoder Linear
    prune-global:A        the same with one global threshold over all encoder Linears
    prune-structured:A    remove A of every block's FFN neurons (smaller dense model)
    bf16                  fp32 weights, matrix products in bf16 under autocast (last)
    int8                  dynamic int8 quantization for CPU (must come last)
    onnx                  the model exported to ONNX, run by ONNX Runtime (last)
    onnx-int8             the same, quantized by ONNX Runtime (dynamic, per-channel int8; last)
    onnx-int8-static      the same, static int8 calibrated on training texts (compress/onnx_static.py; last)

e.g. ``none,prune:0.5,prune-structured:0.5,int8,prune-structured:0.5+int8``.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tweetcls.compress.dynamic_int8 import quantize_int8, save_int8
from tweetcls.compress.structured import prune_ffn_neurons
from tweetcls.compress.unstructured import check_amount, magnitude_prune, make_permanent
from tweetcls.core.errors import UsageError
from tweetcls.core.precision import Bf16Autocast
from tweetcls.core.saved_model import mark_pooling, save_classifier

STEPS_WITH_AMOUNT = ("prune", "prune-global", "prune-structured")
LAST_STEPS = ("bf16", "int8", "onnx", "onnx-int8", "onnx-int8-static")  # each turns the model into something no other step can change
STEPS = ("none", *LAST_STEPS, *STEPS_WITH_AMOUNT)


@dataclass(frozen=True)
class Step:
    kind: str
    amount: float | None = None

    def __str__(self) -> str:
        return self.kind if self.amount is None else f"{self.kind}:{self.amount:g}"


def parse_variants(spec: str) -> list[list[Step]]:
    """'none,prune:0.3,prune-structured:0.5+int8' -> [[none], [prune 0.3], [...]]."""
    variants = []
    for text in (v.strip() for v in spec.split(",")):
        if not text:
            continue
        steps = []
        for part in text.split("+"):
            kind, _, amount = part.strip().partition(":")
            if kind not in STEPS:
                raise UsageError(f"unknown compression step {kind!r} in {text!r}; use {', '.join(STEPS)}")
            if kind in STEPS_WITH_AMOUNT:
                try:
                    value = float(amount)
                except ValueError:
                    raise UsageError(f"{kind} needs an amount, e.g. {kind}:0.3 (got {part!r})") from None
                check_amount(value)
                steps.append(Step(kind, value))
            elif amount:
                raise UsageError(f"{kind} takes no amount (got {part!r})")
            else:
                steps.append(Step(kind))
        if any(s.kind in LAST_STEPS for s in steps[:-1]):
            raise UsageError(f"{', '.join(LAST_STEPS)} must be the last step of a variant (got {text!r})")
        variants.append(steps)
    if not variants:
        raise UsageError("the compression variants name at least one, e.g. none,int8")
    return variants


def variant_name(steps: list[Step]) -> str:
    return "+".join(str(s) for s in steps)


def build_variant(model: nn.Module, steps: list[Step], tokenizer=None, workdir: Path | None = None,
                  calibration_texts: list[str] | None = None) -> nn.Module:
    """A compressed copy of ``model``; the original is untouched. The ONNX steps need the
    tokenizer (its input names) and a folder to export into; static int8 needs texts to calibrate on."""
    variant = copy.deepcopy(model).eval()
    for step in steps:
        if step.kind in ("prune", "prune-global"):
            magnitude_prune(variant, step.amount, scope="layer" if step.kind == "prune" else "global")
            make_permanent(variant)
        elif step.kind == "prune-structured":
            prune_ffn_neurons(variant, step.amount)
        elif step.kind == "bf16":
            variant = Bf16Autocast(variant)
        elif step.kind == "int8":
            variant = quantize_int8(variant, inplace=True)
        elif step.kind.startswith("onnx"):
            from tweetcls.compress.onnx_export import onnx_runtime_variant

            if tokenizer is None or workdir is None:
                raise ValueError("the onnx steps need a tokenizer and a workdir")
            if step.kind == "onnx-int8-static" and not calibration_texts:
                raise ValueError("onnx-int8-static needs calibration texts")
            variant = onnx_runtime_variant(variant, tokenizer, workdir, step.kind.removeprefix("onnx").lstrip("-") or None,
                                           calibration_texts)
    return variant


def is_quantized(model: nn.Module) -> bool:
    return any(t.is_quantized for t in model.state_dict().values() if isinstance(t, torch.Tensor))


def save_variant(model: nn.Module, directory: Path) -> float:
    """Write the variant (save_pretrained, safetensors int8, or its .onnx file) and return its weights' MB."""
    if hasattr(model, "session"):
        import shutil

        shutil.copy(model.path, directory / model.path.name)
        model.config.save_pretrained(directory)
        mark_pooling(directory)
        return (directory / model.path.name).stat().st_size / 1e6
    if is_quantized(model):
        save_int8(model, directory)
    else:
        save_classifier(model, directory)
    return sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e6


def size_on_disk(model: nn.Module) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return save_variant(model, Path(tmp))

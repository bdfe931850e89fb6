"""Which number format a run computes in, chosen once and used everywhere a model runs.

``--precision auto`` means Lightning's ``bf16-mixed`` on a CPU that multiplies bf16 natively
(AVX512-BF16 or AMX, or an Arm core with the BF16 extension) and ``32-true`` elsewhere:
on other CPUs bf16 would be emulated and slower, and on a GPU this project's models and
batches (MiniLM-L6 to MPNet-12, batch 32) leave the GPU waiting for Python, so autocast's
extra casts and its first-epoch cost make bf16 slower, not faster (measured on an H100:
``benchmarks/gpu_step.py``, ``benchmarks/gpu_check.py``; RESULTS.md "Precision"). Pass
``--precision bf16-mixed`` on a GPU for large batches or models, where it pays. Mixed
precision keeps the weights, the optimizer state and the saved model in fp32 and runs the
matrix products in bf16 under ``torch.autocast``; losses, probabilities and metrics are
computed from fp32 logits (``TextClassifier.forward`` casts them).

Outside a Trainer (teacher logits, latency, the prediction backends, the compression
ledger) ``autocast_for(precision)`` gives the same numerics, and ``Bf16Autocast`` wraps a
model so that every call of it does.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from tweetcls.core.errors import UsageError

AUTO = "auto"
BF16 = "bf16-mixed"
FP32 = "32-true"
BF16_NAMES = frozenset({"bf16-mixed", "bf16", "bf16-true"})  # Lightning's spellings of bf16


def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 dot-product instructions (x86 AVX512-BF16 or AMX; Arm BF16)."""
    cpu = torch.cpu
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        if getattr(cpu, check, lambda: False)():
            return True
    return "bf16" in _arm_features()


def _arm_features() -> set[str]:
    """The 'Features' of an Arm CPU on Linux (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("Features") for flag in line.split(":", 1)[1].split()}


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """``auto`` -> ``bf16-mixed`` or ``32-true`` for the device the run will use; other values unchanged."""
    if precision != AUTO:
        return precision
    # a GPU (launch-bound at these sizes: bf16 measured slower, module docstring), mps, tpu, ...
    if run_device(accelerator) != "cpu" or accelerator not in ("auto", "cpu"):
        return FP32
    return BF16 if cpu_has_native_bf16() else FP32


def run_device(accelerator: str = "auto") -> str:
    """The device a single-process run computes on: "cuda" where the Trainer will use a GPU, else "cpu".

    For the passes outside the Trainer (the teacher's logits), so that they run where training does.
    """
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if on_gpu and torch.cuda.is_available() else "cpu"


def is_bf16(precision: str | None) -> bool:
    return str(precision) in BF16_NAMES


def autocast_for(precision: str | None, device_type: str = "cpu") -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bf16 for a bf16 precision, a no-op for fp32."""
    if is_bf16(precision):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Bf16Autocast(nn.Module):
    """An fp32 classifier whose every forward runs under CPU bf16 autocast, with fp32 logits out.

    Its weights stay fp32 (saved as they are); only the matrix products use bf16.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, **inputs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.model(**inputs)
        out.logits = out.logits.float()
        return out

    def save_pretrained(self, directory, **kwargs) -> None:
        self.model.save_pretrained(directory, **kwargs)


def check_precision_honoured(asked: str, used: str) -> None:
    """Refuse a --precision Lightning would swap for another: `--precision 16-mixed` on a CPU trained (or
    scored) in bf16-mixed, Lightning's warning said so once in the scroll, while config.yaml and
    results.json (evaluate.py's JSON) recorded 16-mixed. For train.py, pretrain.py and evaluate.py."""
    import warnings

    from lightning.fabric.connector import _convert_precision_to_unified_args

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "precision=16 is supported for historical reasons ..."
        unified = str(_convert_precision_to_unified_args(asked))
    if unified != used:
        why = " (fp16 autocast needs a GPU)" if unified.startswith("16") else ""
        raise UsageError(f"--precision {asked}: this machine cannot run {unified}{why}; Lightning would use {used} "
                         f"instead: pass --precision {used} (or 32-true)")

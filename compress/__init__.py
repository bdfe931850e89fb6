"""Pruning and quantization on torch, LoRA on an int8 base, and the compression ledger."""

from compress.dynamic_int8 import load_int8, quantize_int8, save_int8
from compress.int8_base import Int8Linear, dequantize_linears, quantize_frozen_linears
from compress.structured import prune_ffn_neurons
from compress.unstructured import magnitude_prune, make_permanent, sparsity_report

__all__ = [
    "Int8Linear",
    "dequantize_linears",
    "load_int8",
    "magnitude_prune",
    "make_permanent",
    "prune_ffn_neurons",
    "quantize_frozen_linears",
    "quantize_int8",
    "save_int8",
    "sparsity_report",
]

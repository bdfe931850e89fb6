"""Pruning and quantization on torch, LoRA on an int8 base, and the compression ledger.

Names load on first use (PEP 562): ``compress.onnx_files`` serves an ONNX export without torch."""

from tweetcls.core.lazy import lazy_attributes

_WHERE = {"load_int8": "tweetcls.compress.dynamic_int8", "quantize_int8": "tweetcls.compress.dynamic_int8",
          "save_int8": "tweetcls.compress.dynamic_int8", "Int8Linear": "tweetcls.compress.int8_base",
          "dequantize_linears": "tweetcls.compress.int8_base", "quantize_frozen_linears": "tweetcls.compress.int8_base",
          "prune_ffn_neurons": "tweetcls.compress.structured", "magnitude_prune": "tweetcls.compress.unstructured",
          "make_permanent": "tweetcls.compress.unstructured", "sparsity_report": "tweetcls.compress.unstructured"}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)

"""The ways a trained model can run for prediction, named once for predict.py, serve.py and
``Predictor`` (this module imports nothing, so ``--help`` stays fast)."""

BACKENDS = {
    "torch": "PyTorch, fp32",
    "bf16": "PyTorch, fp32 weights with bf16 matrix products (fast on CPUs with AVX512-BF16/AMX)",
    "int8": "PyTorch dynamic int8",
    "onnx": "ONNX Runtime, fp32 (exported into the run on first use)",
    "onnx-int8": "ONNX Runtime, dynamic int8",
    "onnx-int8-static": "ONNX Runtime, static int8 calibrated on 256 training texts (a text's answer never depends "
                        "on what it is batched with; needs the run directory)",
}


def backends_help() -> str:
    return "; ".join(f"{name}: {what}" for name, what in BACKENDS.items())

# Backends whose answer for a text moves with what it is batched with, beyond 1e-5 in probability: dynamic
# int8 measures activation ranges per batch (padding included), and bf16 matrix products round differently
# with the batch's padded shape (MiniLM-L6: logits move 2e-4). fp32 (torch, onnx) moves < 1e-7 and static
# int8 not at all. serve.py runs these one text at a time so that no served answer depends on other requests.
BATCH_DEPENDENT = frozenset({"bf16", "int8", "onnx-int8"})

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

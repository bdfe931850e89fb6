"""ONNX Runtime static int8: activation ranges calibrated once, on training texts.

Dynamic int8 picks each activation's range per batch, so a tweet's answer depends on what it
was batched with (RESULTS "Prediction backends": 0.5 points lost through the predictor,
0.16 in the ledger's batches of 128). Here the ranges are fixed before deployment: a
histogram of each quantized input over CALIBRATION_TEXTS training texts, cut at the
99.999th percentile (min-max lets rare outliers waste the 8 bits; measured 2026-12-04,
RESULTS "Static int8"). Weights are int8 per output channel.

Kept in fp32, because quantizing them cost the most quality: the two attention products
between activations (scores and context), the two projections back into the residual stream
(attention output and FFN output: their inputs, the attention context and the GELU output,
have the widest ranges), the pooler and the classifier. Quantized: the query/key/value and
FFN input projections. On the default run, quantizing the FFN output projection as well
lost 0.25 to 1.26 points depending on which 256 texts calibrated it (but ran 1.7-1.8x ONNX
fp32); keeping it lost 0.0 to 0.7 at 1.1-1.2x (``python -m benchmarks.static_int8``, RESULTS
"Inference, round two"). The file is QDQ
(QuantizeLinear/DequantizeLinear pairs), which any ONNX runtime can read.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import re
import tempfile
from pathlib import Path

import numpy as np

from tweetcls.compress.onnx_files import STATIC_FILE
from tweetcls.core.ownership import record

CALIBRATION_TEXTS = 256
CALIBRATION_LENGTH = 64  # the histograms need one shape; tweets are shorter
CALIBRATION_SEED = 42
KEPT_FP32 = ("/output/dense", "attention/attn/o/", "pooler", "classifier")  # BERT/RoBERTa, MPNet node names


def calibration_sample(texts: list[str], n: int = CALIBRATION_TEXTS, seed: int = CALIBRATION_SEED) -> list[str]:
    """A fixed random sample of the training texts (all of them when there are fewer)."""
    texts = [t for t in texts if t.strip()]
    return random.Random(seed).sample(texts, min(n, len(texts)))


@contextlib.contextmanager
def _no_root_warnings():
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def quantize_onnx_static(folder: str | Path, texts: list[str], tokenizer, source: str = "model.onnx") -> Path:
    """model-int8-static.onnx beside ``source``, calibrated on ``texts``; the calibration is
    recorded in the folder's tweetcls.json."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(folder)
    graph = onnx.load(str(folder / source), load_external_data=False)
    names = [i.name for i in graph.graph.input]
    weights = {w.name for w in graph.graph.initializer}
    excluded = [n.name for n in graph.graph.node if n.op_type in ("MatMul", "Gemm") and (
        not weights.intersection(n.input) or any(re.search(p, n.name) for p in KEPT_FP32))]

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([texts[i:i + 32] for i in range(0, len(texts), 32)])

        def get_next(self) -> dict | None:
            chunk = next(self.batches, None)
            if chunk is None:
                return None
            encoded = tokenizer(chunk, truncation=True, max_length=CALIBRATION_LENGTH, padding="max_length",
                                return_tensors="np")
            return {n: encoded[n].astype(np.int64) if n in encoded else np.zeros_like(encoded["input_ids"], np.int64)
                    for n in names}

    target, tmp = folder / STATIC_FILE, folder / f".{STATIC_FILE}.tmp"
    try:
        # ONNX Runtime prints its percentile to stdout and logs hints to the root logger: not for our users
        with tempfile.TemporaryDirectory() as work, contextlib.redirect_stdout(io.StringIO()), _no_root_warnings():
            prepared = Path(work) / "prepared.onnx"
            quant_pre_process(str(folder / source), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(tmp), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=CalibrationMethod.Percentile, op_types_to_quantize=["MatMul", "Gemm"],
                            nodes_to_exclude=excluded, calibration_providers=["CPUExecutionProvider"])
        tmp.replace(target)
    finally:  # a calibration that fails midway leaves no half-written file behind
        tmp.unlink(missing_ok=True)
    record(folder, STATIC_FILE)
    meta_path = folder / "tweetcls.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        meta["static_int8"] = {"calibration_texts": len(texts), "calibration_length": CALIBRATION_LENGTH,
                               "ranges": "histogram, 99.999th percentile",
                               "kept_fp32": ["activation x activation products", *KEPT_FP32]}
        meta_path.write_text(json.dumps(meta, indent=2))
    return target

"""The files of an ONNX export and an ONNX Runtime session on them: numpy and onnxruntime
only, so serving an export never imports torch (predict.py starts in well under a second)."""

from __future__ import annotations

import json
from pathlib import Path

from tweetcls.core.errors import UsageError

FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
STATIC_FILE = "model-int8-static.onnx"
META_FILE = "tweetcls.json"
FILE_OF_BACKEND = {"onnx": FP32_FILE, "onnx-int8": INT8_FILE, "onnx-int8-static": STATIC_FILE}


def onnx_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime session on the CPU; ``threads`` intra-op threads (None: ONNX Runtime's default,
    one per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, ...: a truncated or damaged file
        if not type(err).__module__.startswith("onnxruntime"):
            raise
        reason = " ".join(str(err).split())[:200]
        raise UsageError(f"{path} is not a readable ONNX model ({reason}); export it again with export.py") from None


def read_metadata(folder: str | Path) -> dict:
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise UsageError(f"{folder} has no {META_FILE}; export it with predict.py --backend onnx")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is not valid JSON ({err}); export the folder again with export.py") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} must hold a JSON object (labels, pooling, ...); export the folder again")
    return meta

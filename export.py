"""Export a trained model for use outside this project.

    python export.py runs/<run> --format onnx          # runs/<run>/onnx/model.onnx (+ tokenizer, labels)
    python export.py runs/<run> --format onnx-int8     # and model-int8.onnx (ONNX Runtime dynamic int8)
    python export.py runs/<run> --format peft          # runs/<run>/peft/: PeftModel.from_pretrained loads it

ONNX: the merged model with dynamic batch and sequence axes; pooling, label names, the
multi-label threshold and the calibration temperature travel in its metadata and in
``tweetcls.json`` beside it (``predict.py --backend onnx`` makes the same export on first use).
peft: a LoRA run's adapter in peft's format. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tweetcls_core.errors import StorageFull, UsageError, report

FORMATS = ("onnx", "onnx-int8", "peft")


def run(args: argparse.Namespace) -> Path:
    from tweetcls.loader import load_run
    from tweetcls.predictor import onnx_dir
    from compress.onnx_export import FP32_FILE, export_onnx, quantize_onnx

    target = Path(args.target)
    if args.format == "peft":
        from tweetcls.peft_export import export_peft

        adapter = target / "adapter" if (target / "adapter").is_dir() else target
        return export_peft(adapter, Path(args.out) if args.out else target / "peft")
    loaded = load_run(target)
    folder = Path(args.out) if args.out else onnx_dir(loaded)
    export_onnx(loaded.model, loaded.tokenizer, folder, loaded.decision_rule())
    if args.format == "onnx-int8":
        return quantize_onnx(folder)
    return folder / FP32_FILE


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", help="a run directory (or its model/ or adapter/ folder)")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", default=None, help="where to write (default: inside the run directory)")
    args = p.parse_args(argv)
    try:
        from tweetcls_core.quiet import quiet_libraries

        quiet_libraries()
        written = run(args)
    except (UsageError, StorageFull) as err:
        return report("export.py", err)
    print(f"written: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

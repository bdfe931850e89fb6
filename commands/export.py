"""Export a trained model for use outside this project.

    python export.py runs/<run> --format onnx          # runs/<run>/onnx/model.onnx (+ tokenizer, labels)
    python export.py runs/<run> --format onnx-int8     # and model-int8.onnx (ONNX Runtime dynamic int8)
    python export.py runs/<run> --format onnx-int8-static  # and model-int8-static.onnx (calibrated int8)
    python export.py runs/<run> --format peft          # runs/<run>/peft/: PeftModel.from_pretrained loads it
    python export.py runs/<run> --format hf            # runs/<run>/hf/: model/ as a Hub-ready folder (also for
                                                       # runs saved before mean-pooled folders refused plain loads)

ONNX: the merged model with dynamic batch and sequence axes; pooling, label names, the
multi-label threshold and the calibration temperature travel in its metadata and in
``tweetcls.json`` beside it (``predict.py --backend onnx`` makes the same export on first use).
peft: a LoRA run's adapter in peft's format (a mean-pooled run is refused: peft on a plain base
reads the first token). Each export gets a README.md model card. The run's model/ is itself a
Hugging Face folder (``huggingface_hub.upload_folder`` pushes it as is). Bad input is one line and exit 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tweetcls.core.errors import REPORTED, UsageError, flags_of, report
from tweetcls.core.options import OUTPUT_DIR, Parser, Text, program
from tweetcls.core.settings import Settings

FORMATS = ("onnx", "onnx-int8", "onnx-int8-static", "peft", "hf")


def run(args: ExportSettings) -> Path:
    from tweetcls.loader import load_run
    from tweetcls.predictor import onnx_dir
    from tweetcls.compress.onnx_export import FP32_FILE, export_onnx, quantize_onnx

    target = Path(args.target)
    if args.format == "peft":
        from tweetcls.peft_export import export_peft

        adapter = target / "adapter" if (target / "adapter").is_dir() else target
        return export_peft(adapter, Path(args.out) if args.out else target / "peft")
    loaded = load_run(target)
    if args.format == "hf":
        return export_hf(loaded, Path(args.out) if args.out else target / "hf")
    if args.format == "onnx-int8-static" and not loaded.results:
        raise UsageError(f"--format onnx-int8-static calibrates on a run's training texts; {target} is no run directory")
    folder = Path(args.out) if args.out else onnx_dir(loaded)
    export_onnx(loaded.model, loaded.tokenizer, folder, loaded.decision_rule())
    if loaded.results:
        from tweetcls.review.hub_card import CARD_FILE, model_card

        from tweetcls.core.ownership import record

        (folder / CARD_FILE).write_text(model_card(loaded.results, "onnx", str(folder)))
        record(folder, CARD_FILE)
    if args.format == "onnx-int8":
        return quantize_onnx(folder)
    if args.format == "onnx-int8-static":
        from tweetcls.compress.onnx_static import calibration_sample, quantize_onnx_static
        from tweetcls.loader import load_run_data

        train = list(load_run_data(loaded.results).splits["train"]["text"])
        return quantize_onnx_static(folder, calibration_sample(train), loaded.tokenizer)
    return folder / FP32_FILE


def export_hf(loaded, folder: Path) -> Path:
    """The model as transformers loads it (mean-pooled: only with trust_remote_code), with its card."""
    from tweetcls.core.atomic import atomic_directory
    from tweetcls.review.hub_card import CARD_FILE, model_card
    from tweetcls.core.saved_model import save_classifier

    if not loaded.results:
        raise UsageError(f"{loaded.path} is not a run directory; --format hf writes a run's model with its card")
    with atomic_directory(folder, "hf") as tmp:
        save_classifier(loaded.model, tmp, loaded.tokenizer)
        (tmp / CARD_FILE).write_text(model_card(loaded.results, "transformers", str(folder)))
    return folder


def build_parser() -> Parser:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", type=Text("run directory or folder"),
                   help="a run directory (or its model/ or adapter/ folder)")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", type=OUTPUT_DIR, default=None, help="where to write (default: inside the run directory)")
    return p


@dataclass(frozen=True, kw_only=True)
class ExportSettings(Settings):
    """export.py's settings: one field per flag (its help: python export.py --help)."""

    target: str  # a run directory, or its model/ or adapter/ folder
    format: str  # one of FORMATS
    out: str | None  # where to write; None: inside the run directory


def parse_args(argv: list[str] | None = None) -> ExportSettings:
    return ExportSettings.from_namespace(build_parser().parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        from tweetcls.core.quiet import quiet_libraries

        quiet_libraries()
        written = run(args)
    except REPORTED as err:  # bad input, a full disk, any OSError: one line with the path
        return report(program("export.py"), err, flags_of(build_parser()))
    except KeyboardInterrupt:  # the export folder appears whole or not at all
        print(f"{program('export.py')}: interrupted; nothing was exported", file=sys.stderr)
        return 130
    print(f"written: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``tweetcls <command> [options]``: the installed entry point, one table of the commands.

    tweetcls train --method lora
    tweetcls evaluate runs/RUN --split test
    python -m tweetcls predict runs/RUN --text "so happy today"
"""

from __future__ import annotations

import importlib
import sys

from tweetcls.core.options import INVOKED_AS

COMMANDS = {
    "train": "fine-tune an encoder (LoRA, full, distillation, pruning, quantization)",
    "evaluate": "score a run or a saved classifier on a dataset split; compare runs",
    "predict": "classify new text from a file, stdin or --text",
    "export": "export a run as ONNX, int8 ONNX, peft or a plain transformers folder",
    "serve": "serve a run as an HTTP API and a web page",
    "tune": "search hyperparameters with Optuna",
    "pretrain": "continue masked-language-model pretraining on unlabelled text",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, what in COMMANDS.items())
    return f"usage: tweetcls <command> [options]   (tweetcls <command> --help for its options)\n\ncommands:\n{rows}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"tweetcls: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    INVOKED_AS.set(f"tweetcls {name}")  # its usage and error lines start with this, not the module's file name
    command = importlib.import_module(f"tweetcls.commands.{name}")
    return command.main(rest)


if __name__ == "__main__":
    sys.exit(main())

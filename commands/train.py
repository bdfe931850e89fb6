"""Fine-tune a transformer encoder for short-text classification.

    python train.py --method lora                        # LoRA on TweetEval emotion, MiniLM-L6
    python train.py --method full --dataset tweet_eval/hate --lr 5e-5
    python train.py --config configs/lora_emotion.yaml --seed 1
    tweetcls train --method lora                         # the same, installed

Each run gets its own directory under --output-dir with TensorBoard events, the best
checkpoint (adapter-only for LoRA), the model in save_pretrained form (LoRA merged in),
and results.json. Mistakes in the input end with one line on stderr and exit code 2.
The run itself, phase by phase, is training/pipeline.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tweetcls.core.options import program
from tweetcls.training.command import run_command
from tweetcls.training.finish import print_summary
from tweetcls.training.options import build_parser, parse_args


def main(argv: list[str] | None = None) -> int:
    code, results = run_command(program("train.py"), argv, parse_args, build_parser)
    if results and Path(results["run_dir"], "results.json").exists():
        print_summary(results)
    return code


if __name__ == "__main__":
    sys.exit(main())

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

import os
import sys
import time
from pathlib import Path

from tweetcls.core.errors import REPORTED, Interrupted, flags_of, report
from tweetcls.core.quiet import quiet_libraries
from tweetcls.core.options import program
from tweetcls.training.finish import COMMAND_STARTED, print_summary
from tweetcls.training.options import build_parser, parse_args
from tweetcls.training.pipeline import run


def main(argv: list[str] | None = None) -> int:
    COMMAND_STARTED[:] = [time.time()]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
        quiet_libraries()
        results = run(args)
    except REPORTED as err:  # bad input, a diverged loss, any OSError: one line naming the path
        return report(program("train.py"), err, flags_of(build_parser(), r="--lora-r", alpha="--lora-alpha", dropout="--lora-dropout"))
    except Interrupted as err:
        print(f"{program('train.py')}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{program('train.py')}: interrupted before training started; nothing to resume", file=sys.stderr)
        return 130
    if results and Path(results["run_dir"], "results.json").exists():
        print_summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Use what train.py made: load any saved form of a trained classifier with one call.

    from tweetcls import load_run
    run = load_run("runs/tweet_eval-emotion-lora-minilm-l6-s0-20261126-101500")
    run.model, run.tokenizer, run.label_names, run.threshold

This package sits on top of the others (it reads LoRA adapters and int8 variants), so
the entry points that consume finished runs (evaluate.py, the experiments, prediction)
all load them the same way.
"""

from tweetcls.loader import LoadedRun, load_run
from tweetcls.predictor import Predictor

__all__ = ["LoadedRun", "Predictor", "load_run"]

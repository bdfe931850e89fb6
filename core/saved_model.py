"""Writing a classifier folder that a plain Hugging Face client reads as this project does.

``save_pretrained`` alone would write a mean-pooled model as a plain BERT/MPNet, and
``pipeline`` would then classify from the first token: 3.9 points lower on TweetEval emotion,
with no error. So a mean-pooled model is written as its ``tweetcls_mean_<type>`` with
``modeling_tweetcls.py`` beside it (see that file): transformers refuses the folder unless
``trust_remote_code=True`` runs that file, and then computes what this project computes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from torch import nn

from tweetcls.core import modeling_tweetcls
from tweetcls.core.modeling_tweetcls import MEAN_POOLED, MODEL_TYPE_PREFIX

MODELING_FILE = "modeling_tweetcls.py"


def save_classifier(model: nn.Module, folder: str | Path, tokenizer=None) -> Path:
    """``save_pretrained`` (+ the tokenizer), marked as mean-pooled where the model is."""
    folder = Path(folder)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    mark_pooling(folder)
    return folder


def mark_pooling(folder: str | Path) -> None:
    """Give a saved ``config.json`` whose ``pooling`` is "mean" the model type, classes and code
    that make plain transformers either compute the mean or refuse; other configs are left alone."""
    folder = Path(folder)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    if config.get("pooling") != "mean":
        return
    base = str(config.get("model_type", "")).removeprefix(MODEL_TYPE_PREFIX)
    config_class, encoder_class, classifier_class = MEAN_POOLED[base]
    module = Path(MODELING_FILE).stem
    config |= {
        "model_type": config_class.model_type,
        "architectures": [classifier_class.__name__],
        "auto_map": {"AutoConfig": f"{module}.{config_class.__name__}",
                     "AutoModel": f"{module}.{encoder_class.__name__}",
                     "AutoModelForSequenceClassification": f"{module}.{classifier_class.__name__}"},
    }
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(modeling_tweetcls.__file__, folder / MODELING_FILE)

"""Which pooling a classifier uses, chosen per checkpoint: the first token or the masked mean.

HF's BERT and MPNet classifiers read the first token's vector. sentence-transformers
checkpoints (all-MiniLM-L6-v2, all-mpnet-base-v2) were trained on the masked mean of all
token vectors instead, and their first token carries less: a frozen linear probe on
TweetEval emotion scores 0.63 macro-F1 on [CLS] and 0.67 on the mean
(``python -m experiments.pooling_probe``). The mean itself (hooks that leave the state dict
alone) is in ``modeling_tweetcls.py``, the file that travels with saved mean-pooled models.
``config.pooling`` is saved with the model and :func:`apply_checkpoint_pooling` re-applies it.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from tweetcls.core.modeling_tweetcls import (MEAN_POOLED, install_mean_pooling,
                                             masked_mean, register_mean_pooled_classes)  # noqa: F401 (masked_mean)
from tweetcls.core.surgery import architecture

register_mean_pooled_classes()  # saved mean-pooled models load here without running code from their folder


def checkpoint_pooling(model_dir: str | Path, config=None) -> str:
    """The pooling a checkpoint was trained with: its saved ``pooling``, else sentence-transformers'
    ``1_Pooling/config.json``, else "cls"."""
    saved = getattr(config, "pooling", None)
    if saved in ("cls", "mean"):
        return saved
    st_config = Path(model_dir) / "1_Pooling" / "config.json"
    if st_config.is_file():
        modes = json.loads(st_config.read_text())
        if modes.get("pooling_mode_mean_tokens") and not modes.get("pooling_mode_cls_token"):
            return "mean"
    return "cls"


def apply_checkpoint_pooling(model: nn.Module, model_dir: str | Path) -> nn.Module:
    """Pool as the checkpoint in ``model_dir`` was trained to (for every loader of saved models)."""
    return apply_pooling(model, checkpoint_pooling(model_dir, model.config))


def apply_pooling(model: nn.Module, pooling: str) -> nn.Module:
    """Make ``model`` classify from ``pooling`` ("cls" or "mean"); recorded in its config."""
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be cls or mean, got {pooling!r}")
    if pooling == "cls":
        if getattr(model, "_mean_pooling", False):
            raise ValueError("this model was saved mean-pooled; it cannot be switched to first-token (cls) pooling "
                             "(start from its base model for first-token pooling)")
        model.config.pooling = pooling
        return model
    if architecture(model) not in MEAN_POOLED:
        raise ValueError(f"mean pooling is supported for {', '.join(MEAN_POOLED)} models, not "
                         f"{type(model).__name__}; use --pooling cls")
    return install_mean_pooling(model)

"""Score a model on one split with the metrics training reports (a Lightning test loop)."""

from __future__ import annotations

import lightning as L
from torch import nn

from tweetcls.core.classifier import TextClassifier
from tweetcls.core.errors import lightning_interruptions
from tweetcls.core.precision import check_precision_honoured


def score_model(model: nn.Module, datamodule, data, split: str, threshold: float, accelerator: str = "auto",
                precision: str = "32-true") -> dict:
    """The same metrics train.py reports, for ``model`` on one split, in ``precision`` (Lightning's values)."""
    module = TextClassifier(model.eval(), data.label_names, multi_label=data.multi_label, metric=data.metric,
                            metric_classes=data.metric_classes, threshold=threshold)
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    check_precision_honoured(precision, str(trainer.precision))
    with lightning_interruptions(trainer, f"scoring the {split} split", "no score was written; run the command again"):
        scores = trainer.test(module, dataloaders=datamodule.split_dataloader(split), verbose=False)[0]
    return {k.removeprefix("test/"): v for k, v in scores.items()}

"""The LightningModule: a Hugging Face sequence classifier, its loss, metrics and optimizer."""

from __future__ import annotations


import lightning as L
import torch
from torch import nn

from tweetcls.core.errors import TrainingDiverged
from tweetcls.core.metrics import build_metrics, loss_function, softmax_or_sigmoid, metric_scalars
from tweetcls.core.training_recipe import adamw_with_warmup, restore_rng, save_training_state


class TextClassifier(L.LightningModule):
    """Trains whatever parameters of ``model`` require grad (all for full fine-tuning,
    LoRA factors and head for LoRA).

    With ``adapter_only_checkpoints`` the checkpoint holds only trainable tensors: for
    LoRA on MiniLM-L6 that is ~1 MB instead of 90 MB. Loading such a checkpoint into a
    module built the same way restores it (``strict_loading`` is off for that reason).

    Distillation extends it (``distill/module.py``) with its own loss terms.
    """

    # batch keys that are not model inputs (labels, and what subclasses add for their losses)
    NON_INPUT_KEYS = frozenset({"labels"})

    # Lightning's save_hyperparameters reads this frame's arguments: mutmut must not wrap it
    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        multi_label: bool = False,
        metric: str = "macro_f1",
        metric_classes: list[str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.06,
        threshold: float = 0.5,
        adapter_only_checkpoints: bool = False,
    ) -> None:  # pragma: no mutate block
        super().__init__()
        self.save_hyperparameters(ignore=["model", "teacher"], logger=False)  # modules are not hyperparameters
        self.model = model.train()  # from_pretrained returns eval mode; Lightning keeps module modes
        self.label_names = list(label_names)
        self.multi_label = multi_label
        self.loss_fn = loss_function(multi_label)
        n = len(label_names)
        self.val_metrics = build_metrics(n, multi_label, threshold)
        self.test_metrics = build_metrics(n, multi_label, threshold)
        self.adapter_only_checkpoints = adapter_only_checkpoints
        self.strict_loading = not adapter_only_checkpoints
        self.test_tensors: dict[str, torch.Tensor] = {}

    def forward(self, batch: dict) -> torch.Tensor:
        # fp32 logits even under bf16 autocast: the loss, probabilities and metrics are computed in fp32
        return self.model(**self.model_inputs(batch)).logits.float()

    def model_inputs(self, batch: dict) -> dict:
        return {k: v for k, v in batch.items() if k not in self.NON_INPUT_KEYS}

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(logits, labels.float() if self.multi_label else labels)

    def training_loss(self, batch: dict) -> torch.Tensor:
        """The loss a training step minimises (distillation adds its terms here)."""
        return self._loss(self(batch), batch["labels"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch)
        if not torch.isfinite(loss):
            # checked here rather than with detect_anomaly, which slows every step
            raise TrainingDiverged(
                f"training loss became {loss.item()} at step {self.global_step} (epoch {self.current_epoch})"
            )
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=len(batch["input_ids"]))
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        logits = self(batch)
        labels = batch["labels"]
        self.log(f"{stage}/loss", self._loss(logits, labels), on_epoch=True, sync_dist=True,
                 batch_size=len(labels))
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        target = labels.long()
        metrics.update(softmax_or_sigmoid(logits, self.multi_label), target)

    def _eval_epoch_end(self, stage: str) -> None:
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        computed = metrics.compute()
        scalars = metric_scalars(computed, self.label_names, self.hparams.metric, self.hparams.metric_classes or [])
        metrics.reset()
        if stage == "test":  # per-class F1 and the confusion matrix, for the pictures of the run
            self.test_tensors = {k: v.detach().cpu() for k, v in computed.items() if v.numel() > 1}
        for name, value in scalars.items():
            # values are already reduced across processes by torchmetrics
            self.log(f"{stage}/{name}", value, prog_bar=name == "task_metric")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Probabilities; and the labels, when the batch has them (unlabelled text predicts too)."""
        logits = self(batch)
        out = {"logits": logits, "probs": softmax_or_sigmoid(logits, self.multi_label)}
        if "labels" in batch:
            out["labels"] = batch["labels"]
        return out

    def set_threshold(self, threshold: float) -> None:
        """Evaluate multi-label predictions at ``threshold`` from now on (e.g. one tuned on val)."""
        self.hparams.threshold = threshold
        n = len(self.label_names)
        self.val_metrics = build_metrics(n, self.multi_label, threshold).to(self.device)
        self.test_metrics = build_metrics(n, self.multi_label, threshold).to(self.device)

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_ratio)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        save_training_state(self, checkpoint, self.adapter_only_checkpoints)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        restore_rng(self, checkpoint)

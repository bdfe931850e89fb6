"""The LightningModule of masked-LM training: cross-entropy on the masked positions, held-out
loss and perplexity per epoch, AdamW with linear warm-up and decay."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from tweetcls.mlm.encoder import masked_positions_logits
from tweetcls.mlm.masking import IGNORE
from tweetcls.core.errors import TrainingDiverged
from tweetcls.core.training_recipe import adamw_with_warmup, restore_rng, save_training_state


class MaskedLMModule(L.LightningModule):
    """Trains whatever parameters of ``model`` require grad (all, or LoRA factors and the MLM head)."""

    # Lightning's save_hyperparameters reads this frame's arguments: mutmut must not wrap it
    def __init__(
        self, model: nn.Module, lr: float = 1e-4, weight_decay: float = 0.01, warmup_ratio: float = 0.06,
        adapter_only_checkpoints: bool = False, head_warmup_steps: int = 0,
    ) -> None:  # pragma: no mutate block
        super().__init__()
        self.save_hyperparameters(ignore=["model"], logger=False)
        self.model = model.train()
        self.adapter_only_checkpoints = adapter_only_checkpoints
        self.strict_loading = not adapter_only_checkpoints
        self._heldout = [0.0, 0]  # summed loss, target count
        self.heldout_losses: list[float] = []  # after each training epoch (kept in checkpoints)

    def masked_lm_loss(self, batch: dict) -> tuple[torch.Tensor, int]:
        """(mean cross-entropy over the batch's targets, in fp32; number of targets)."""
        targets = batch["labels"] != IGNORE
        logits = masked_positions_logits(self.model, batch["input_ids"], batch["attention_mask"], targets)
        return F.cross_entropy(logits.float(), batch["labels"][targets]), int(targets.sum())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        loss, count = self.masked_lm_loss(batch)
        if count == 0:
            return None  # nothing was masked in this batch (tiny batches only)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"masked-LM loss became {loss.item()} at step {self.global_step}")
        self.log("train/mlm_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=count)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        """During the head warm-up only the MLM head learns: a new, random head's first gradients
        would otherwise reach the pretrained encoder (and the word embeddings its decoder is
        tied to). A parameter without a gradient is skipped by AdamW, weight decay included."""
        if self.global_step < self.hparams.head_warmup_steps:
            for param in self.model.base_model.parameters():
                param.grad = None

    def on_validation_epoch_start(self) -> None:
        self._heldout = [0.0, 0]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, count = self.masked_lm_loss(batch)
        if count:
            self._heldout[0] += float(loss) * count
            self._heldout[1] += count

    def on_validation_epoch_end(self) -> None:
        total, count = self._heldout
        summed = self.trainer.strategy.reduce(torch.tensor([total, float(count)]), reduce_op="sum")
        mean = float(summed[0] / summed[1].clamp(min=1))
        self.log("val/mlm_loss", mean, prog_bar=True)
        self.log("val/perplexity", math.exp(min(mean, 50.0)))
        if not self.trainer.sanity_checking and self.trainer.state.fn == "fit":
            self.heldout_losses.append(mean)

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_ratio)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        save_training_state(self, checkpoint, self.adapter_only_checkpoints)  # the global RNG draws masks and dropout
        checkpoint["heldout_losses"] = list(self.heldout_losses)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.heldout_losses = list(checkpoint.get("heldout_losses", []))
        restore_rng(self, checkpoint)


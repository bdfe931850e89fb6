"""``last.ckpt``: the point ``--resume`` continues from."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class LastCheckpoint(L.Callback):
    """Write ``last.ckpt`` every N optimizer steps and at every epoch end.

    Lightning's ModelCheckpoint refreshes its ``last.ckpt`` only when it saves a top-k
    checkpoint, so after an epoch that did not improve the metric, "last" would lag.
    """

    def __init__(self, path: str | Path, every_n_steps: int) -> None:
        self.path = str(path)
        self.every_n_steps = every_n_steps
        self._saved_at = -1

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.global_step == self._saved_at:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # full state: optimizer, loops, RNG
        self._saved_at = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_at = -1  # the epoch-end state differs from a mid-epoch save at the same step
        self._save(trainer)

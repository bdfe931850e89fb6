"""``last.ckpt``: the point ``--resume`` continues from."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint


class LastCheckpoint(Checkpoint):
    """Write ``last.ckpt`` every N optimizer steps, at every epoch end, and when SIGTERM stops training.

    Lightning's ModelCheckpoint refreshes its ``last.ckpt`` only when it saves a top-k
    checkpoint, so after an epoch that did not improve the metric, "last" would lag.

    It is a ``Checkpoint`` so that Lightning runs it after ModelCheckpoint (the Trainer
    moves checkpoint callbacks last, in their given order): the epoch-end ``last.ckpt``
    then records the best checkpoint of that epoch, not of the one before, and a resume
    from it picks the same best model as an uninterrupted run.
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

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.trainer.states import RunningStage
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        # Lightning raises SIGTERMException between two training steps, where the state is whole
        if isinstance(exception, SIGTERMException) and trainer.state.stage == RunningStage.TRAINING:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_at = -1  # the epoch-end state differs from a mid-epoch save at the same step
        self._save(trainer)

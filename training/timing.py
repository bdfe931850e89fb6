"""Training time and throughput, measured by a Lightning callback."""

from __future__ import annotations

import time

import lightning as L


class TrainingClock(L.Callback):
    """Wall time of ``fit`` (validation included) and training samples per second.

    Samples/s counts only time spent in training steps, so it compares methods fairly
    whatever the validation schedule; ``fit_seconds`` is the user's time-to-result.
    """

    def __init__(self) -> None:
        self.fit_seconds = 0.0
        self.step_seconds = 0.0
        self.samples = 0
        self._fit_start = 0.0
        self._batch_start = 0.0
        self._seconds_before_resume = 0.0
        self._finished = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.step_seconds += time.perf_counter() - self._batch_start
        self.samples += len(batch["input_ids"]) * trainer.world_size

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds = self._elapsed()
        self._finished = True
        if trainer.logger is not None:  # a level from step 0 to the last step: one point is a dot, easy to miss
            for step in sorted({0, trainer.global_step}):
                trainer.logger.log_metrics(self.summary(), step=step)

    def _elapsed(self) -> float:
        return self._seconds_before_resume + time.perf_counter() - self._fit_start

    def state_dict(self) -> dict:
        # saved in checkpoints, so a resumed run reports the time of both parts
        return {"fit_seconds": self._elapsed() if self._fit_start else 0.0,
                "step_seconds": self.step_seconds, "samples": self.samples}

    def load_state_dict(self, state: dict) -> None:
        if self._finished:  # scoring the best checkpoint after fit restores its (earlier) state: keep the fit's
            return
        self._seconds_before_resume = state.get("fit_seconds", 0.0)
        self.step_seconds = state.get("step_seconds", 0.0)
        self.samples = state.get("samples", 0)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.step_seconds if self.step_seconds else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "time/fit_seconds": self.fit_seconds,
            "time/train_step_seconds": self.step_seconds,
            "time/train_samples_per_sec": self.samples_per_second,
        }

"""The LightningModule of ``--method distill``: the classifier's training loop with the
teacher's soft labels and, optionally, its hidden states as extra targets."""

from __future__ import annotations

import torch
from torch import nn

from tweetcls.distill.losses import hidden_state_loss, kd_loss
from tweetcls.distill.token_alignment import aligned_teacher_states
from tweetcls.core.classifier import TextClassifier


class DistillationClassifier(TextClassifier):
    """Batches carrying ``teacher_logits`` train with the KD loss (``kd_alpha``, ``kd_temperature``);
    with a ``teacher`` and ``hidden_loss`` the student's last hidden states are also pulled
    towards the teacher's, aligned by character offsets (the teacher then runs every step).

    The frozen teacher is rebuilt from its own folder, never stored in student checkpoints.
    """

    NON_INPUT_KEYS = TextClassifier.NON_INPUT_KEYS | {
        "has_label", "teacher_logits", "teacher_input_ids", "teacher_attention_mask", "align_weights", "align_mask"}

    # Lightning's save_hyperparameters reads this frame's arguments: mutmut must not wrap it
    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        kd_alpha: float = 0.5,
        kd_temperature: float = 2.0,
        teacher: nn.Module | None = None,
        hidden_loss: str | None = None,
        hidden_weight: float = 1.0,
        **classifier_options,
    ) -> None:  # pragma: no mutate block
        super().__init__(model, label_names, **classifier_options)
        self.kd_alpha, self.kd_temperature = kd_alpha, kd_temperature
        self.hidden_loss, self.hidden_weight = hidden_loss, hidden_weight
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
        self.strict_loading = self.strict_loading and teacher is None
        # maps the student's last hidden states to the teacher's width when they differ
        self.projection = None
        if teacher is not None and hidden_loss:
            s_width, t_width = model.config.hidden_size, teacher.config.hidden_size
            self.projection = nn.Identity() if s_width == t_width else nn.Linear(s_width, t_width)

    def _hidden_loss(self, student_states: torch.Tensor, batch: dict) -> torch.Tensor:
        with torch.no_grad():
            self.teacher.eval()
            teacher_states = self.teacher(input_ids=batch["teacher_input_ids"],
                                          attention_mask=batch["teacher_attention_mask"],
                                          output_hidden_states=True).hidden_states[-1]
        target = aligned_teacher_states(batch["align_weights"], teacher_states)
        # in fp32 under bf16 autocast, as every loss is
        return hidden_state_loss(self.projection(student_states).float(), target.float(), batch["align_mask"],
                                 self.hidden_loss)

    def training_loss(self, batch: dict) -> torch.Tensor:
        use_hidden = self.projection is not None and "align_weights" in batch
        out = self.model(**self.model_inputs(batch), output_hidden_states=use_hidden)
        logits = out.logits.float()  # fp32 losses under bf16 autocast
        if "teacher_logits" in batch:
            loss = kd_loss(logits, batch["teacher_logits"], batch["labels"], self.kd_temperature,
                           self.kd_alpha, self.multi_label, batch.get("has_label"))
        else:
            loss = self._loss(logits, batch["labels"])
        if use_hidden:
            hidden = self._hidden_loss(out.hidden_states[-1], batch)
            self.log("train/hidden_loss", hidden, on_step=True, on_epoch=True, batch_size=len(batch["labels"]))
            loss = loss + self.hidden_weight * hidden
        return loss

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("teacher.")}

"""Batches for the hidden-state loss: both tokenizations of the same texts and their
character-offset alignment (distill/token_alignment.py)."""

from __future__ import annotations

import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from tweetcls.distill.token_alignment import align_batch


class AlignedDistillationCollator:
    """Pads the student's features as usual, and adds the teacher's encoding of the raw
    texts plus ``align_weights`` [B, S, T] and ``align_mask`` [B, S]."""

    def __init__(self, student: PreTrainedTokenizerBase, teacher: PreTrainedTokenizerBase, max_length: int) -> None:
        self.student, self.teacher, self.max_length = student, teacher, max_length
        self.pad = DataCollatorWithPadding(student, return_tensors="pt")

    def _encode(self, tokenizer: PreTrainedTokenizerBase, texts: list[str]):
        return tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                         return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="pt")

    def __call__(self, features: list[dict]) -> dict:
        texts = [f.pop("text") for f in features]
        batch = self.pad(features)
        student, teacher = self._encode(self.student, texts), self._encode(self.teacher, texts)
        if not torch.equal(student["input_ids"], batch["input_ids"]):
            raise RuntimeError("student re-tokenization differs from the dataset's; same tokenizer and max_length?")
        weights, mask = align_batch(student, teacher)
        batch["teacher_input_ids"] = teacher["input_ids"]
        batch["teacher_attention_mask"] = teacher["attention_mask"]
        batch["align_weights"], batch["align_mask"] = weights, mask
        return batch

"""Batches of unlabelled text for masked-LM training: the classification datamodule's
length-grouped, resumable loaders, with whole-word masking in place of labels.

A held-out slice (``heldout`` texts, chosen with a fixed seed) is masked once, with a fixed
generator, so its loss measures every epoch and every run on the same targets.
"""

from __future__ import annotations

import datasets
import torch

from tweetcls.datamodules.sources import SPLIT_SEED
from tweetcls.datamodules.text_classification import TextClassificationDataModule
from tweetcls.mlm.masking import IGNORE, WholeWordMasking, pad, word_ids_of
from tweetcls.core.errors import ParameterError, UsageError


def pad_masked(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad already-masked examples (the held-out slice)."""
    return {"input_ids": pad([f["input_ids"] for f in features], pad_id),
            "attention_mask": pad([[1] * len(f["input_ids"]) for f in features], 0),
            "labels": pad([f["labels"] for f in features], IGNORE)}


class MaskedLMDataModule(TextClassificationDataModule):
    def __init__(self, texts: list[str], tokenizer, heldout: int, mlm_probability: float = 0.15,
                 **loader_options) -> None:
        super().__init__("unlabelled text", tokenizer, **loader_options)
        if len(texts) < 2:  # one text cannot be both held out and trained on
            raise UsageError(f"the corpus has {len(texts)} text(s); masked-LM training needs at least 2 (one held "
                             "out, one to train on): give more --mlm-data")
        if not 0 < heldout < len(texts):  # "between 1 and the 40 texts, got 40" refused a value in its own range
            raise ParameterError("heldout", f"must be from 1 to {len(texts) - 1} (the corpus has {len(texts)} texts "
                                            f"and at least one is left to train on), got {heldout}")
        self.corpus = list(texts)
        self.heldout = heldout
        self.masking = WholeWordMasking(tokenizer, mlm_probability)
        self.collate = self._pad_heldout
        self.train_collate = self.masking

    def _pad_heldout(self, features: list[dict]) -> dict[str, torch.Tensor]:
        return pad_masked(features, self.masking.pad_id)

    def load(self):
        raise TypeError("unlabelled text has no label set")

    def tokenize(self, batch: dict) -> dict:
        encoded = self.tokenizer(batch["text"], truncation=True, max_length=self.max_length)
        return {"input_ids": encoded["input_ids"],
                "word_ids": [word_ids_of(encoded, i) for i in range(len(batch["text"]))]}

    def setup(self, stage: str | None = None) -> None:
        if self.encoded:
            return
        order = torch.randperm(len(self.corpus), generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
        held = set(order[:self.heldout])
        splits = {"validation": [self.corpus[i] for i in sorted(held)],
                  "train": [t for i, t in enumerate(self.corpus) if i not in held]}
        if self.max_train_samples is not None:
            splits["train"] = splits["train"][:self.max_train_samples]
        for split, texts in splits.items():
            self.texts[split] = texts
            self.encoded[split] = datasets.Dataset.from_dict({"text": texts}).map(
                self.tokenize, batched=True, remove_columns=["text"], desc=f"tokenizing {split}")
        fixed = WholeWordMasking(self.tokenizer, self.masking.probability,
                                 generator=torch.Generator().manual_seed(SPLIT_SEED))
        self.encoded["validation"] = self.encoded["validation"].map(lambda ex: self._mask_once(fixed, ex),
                                                                    remove_columns=["word_ids"])
        self.lengths = {split: [len(ids) for ids in ds["input_ids"]] for split, ds in self.encoded.items()}

    @staticmethod
    def _mask_once(masking: WholeWordMasking, example: dict) -> dict:
        ids, labels = masking.mask(torch.tensor([example["input_ids"]]), torch.tensor([example["word_ids"]]))
        return {"input_ids": ids[0].tolist(), "labels": labels[0].tolist()}

"""One LightningDataModule for every dataset: tokenize once, pad per batch, seeded shuffle."""

from __future__ import annotations

from pathlib import Path

import datasets
import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from tweetcls.core.errors import ParameterError, UsageError
from tweetcls.datamodules.length_grouping import LengthGroupedSampler, longest_first
from tweetcls.datamodules.sources import SPLIT_SEED, LabelledData, load_labelled_data


class TextClassificationDataModule(L.LightningDataModule):
    """Train/validation/test loaders over ``load_labelled_data(dataset)``.

    ``load`` reads the raw splits (train.py calls it to learn the label set before building
    the model); ``setup`` tokenizes them once, and later calls reuse that.
    """

    def __init__(
        self,
        dataset: str,
        tokenizer: PreTrainedTokenizerBase,
        data_dir: str | Path | None = None,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        seed: int = 0,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        text_column: str = "text",
        label_column: str = "label",
        num_workers: int = 0,
        group_by_length: bool = True,
        encoding: str = "utf-8",
        val_file: str | None = None,
        test_file: str | None = None,
    ) -> None:
        super().__init__()
        if max_length <= 0:
            raise ParameterError("max_length", f"must be > 0, got {max_length}")
        if batch_size <= 0:
            raise ParameterError("batch_size", f"must be > 0, got {batch_size}")
        for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
            if value is not None and value <= 0:
                raise ParameterError(name, f"must be > 0, got {value}")
        self.dataset_name = dataset
        self.tokenizer = tokenizer
        self.data_dir = data_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.max_train_samples = max_train_samples
        self.max_eval_samples = max_eval_samples
        self.text_column = text_column
        self.label_column = label_column
        self.num_workers = num_workers
        self.group_by_length = group_by_length
        self.encoding = encoding
        self.val_file, self.test_file = val_file, test_file
        self.lengths: dict[str, list[int]] = {}
        self.texts: dict[str, list[str]] = {}
        self._resume_at: tuple[int, int] | None = None
        self.data: LabelledData | None = None
        self.encoded: dict = {}
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.train_collate = self.collate

    @property
    def label_names(self) -> list[str]:
        return self.load().label_names

    @property
    def multi_label(self) -> bool:
        return self.load().multi_label

    def load(self) -> LabelledData:
        """Read the raw splits (no tokenization); cheap enough to call before the model exists."""
        if self.data is None:
            self.data = load_labelled_data(self.dataset_name, self.data_dir, self.text_column, self.label_column,
                                           self.encoding, self.val_file, self.test_file)
        return self.data

    def setup(self, stage: str | None = None) -> None:
        if self.encoded:
            return
        data = self.load()
        for split, ds in data.splits.items():
            limit = self.max_train_samples if split == "train" else self.max_eval_samples
            if limit is not None and limit < len(ds):
                # a fixed subset, so runs with different --seed see the same examples
                ds = ds.shuffle(seed=SPLIT_SEED).select(range(limit))
            self.texts[split] = list(ds["text"])
            self.encoded[split] = ds.map(
                self.tokenize, batched=True, remove_columns=["text"], desc=f"tokenizing {split}"
            )
            self.lengths[split] = [len(ids) for ids in self.encoded[split]["input_ids"]]

    def replace_train(self, encoded: datasets.Dataset, texts: list[str], collate=None) -> None:
        """Swap the training split for ``encoded`` (aligned with ``texts``), batched with
        ``collate`` (default: padding). For methods that add columns or rows, like distillation."""
        self.setup()
        self.encoded["train"], self.texts["train"] = encoded, list(texts)
        self.lengths["train"] = [len(ids) for ids in encoded["input_ids"]]
        self.train_collate = collate or self.collate

    def tokenize(self, batch: dict) -> dict:
        """``datasets.map`` function: the texts of ``batch`` encoded with this module's settings."""
        return self.tokenizer(batch["text"], truncation=True, max_length=self.max_length)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        # Every loader gets its own generator: creating an iterator then never draws from
        # the global RNG, so dropout masks do not depend on how often loaders were made.
        generator = torch.Generator().manual_seed(self.seed)
        if shuffle and self.group_by_length:
            sampler = LengthGroupedSampler(self.lengths[split], batch_size, seed=self.seed)
            sampler.resume_at, self._resume_at = self._resume_at, None
        elif shuffle:
            sampler = RandomSampler(self.encoded[split], generator=generator)
        else:
            sampler = longest_first(self.lengths[split])
        return DataLoader(
            self.encoded[split],
            batch_size=batch_size,
            sampler=sampler,
            generator=generator,
            collate_fn=self.train_collate if split == "train" and shuffle else self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def state_dict(self) -> dict:
        """Where training stands in the epoch, saved in every checkpoint for exact resumes."""
        if self.trainer is None:
            return {}
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        return {"epoch": self.trainer.current_epoch, "batches_done": progress.processed}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self._resume_at = (state["epoch"], state["batches_done"])

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def split_dataloader(self, split: str) -> DataLoader:
        """Loader for a split by name ("train", "validation"/"val", "test"), unshuffled."""
        split = {"val": "validation", "dev": "validation"}.get(split, split)
        if split not in ("train", "validation", "test"):
            raise UsageError(f"unknown split {split!r}; use train, validation or test")
        return self._loader(split, shuffle=False)

"""One LightningDataModule for every dataset: tokenize once, pad per batch, seeded shuffle."""

from __future__ import annotations

from pathlib import Path

import datasets
import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from core.errors import UsageError
from datamodules.length_grouping import LengthGroupedSampler, longest_first
from datamodules.sources import SPLIT_SEED, LabelledData, load_labelled_data


class TextClassificationDataModule(L.LightningDataModule):
    """Train/validation/test loaders over ``load_labelled_data(dataset)``.

    ``setup`` may be called early (train.py does, to learn the label set before building
    the model); later calls reuse what the first one loaded.
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
    ) -> None:
        super().__init__()
        if max_length <= 0:
            raise UsageError(f"--max-length must be > 0, got {max_length}")
        if batch_size <= 0:
            raise UsageError(f"--batch-size must be > 0, got {batch_size}")
        for flag, value in (("--max-train-samples", max_train_samples), ("--max-eval-samples", max_eval_samples)):
            if value is not None and value <= 0:
                raise UsageError(f"{flag} must be > 0, got {value}")
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
            self.data = load_labelled_data(self.dataset_name, self.data_dir, self.text_column, self.label_column)
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
                self._tokenize, batched=True, remove_columns=["text"], desc=f"tokenizing {split}"
            )
            self.lengths[split] = [len(ids) for ids in self.encoded[split]["input_ids"]]

    def add_train_column(self, name: str, values) -> None:
        """Attach per-example values (e.g. teacher logits, aligned with ``texts["train"]``)."""
        self.setup()
        values = values.tolist() if hasattr(values, "tolist") else list(values)
        if len(values) != len(self.encoded["train"]):
            raise ValueError(f"{name}: {len(values)} values for {len(self.encoded['train'])} training examples")
        self.encoded["train"] = self.encoded["train"].add_column(name, values)

    def add_unlabelled_train_texts(self, texts: list[str]) -> None:
        """Append texts without labels to the training split (a distillation transfer set).

        Every training row gets ``has_label``: 1 for the dataset's own, 0 for these, whose
        ``label`` is a placeholder the loss must ignore (see ``distill.losses.kd_loss``).
        """
        self.setup()
        train = self.encoded["train"]
        if "has_label" not in train.column_names:
            train = train.add_column("has_label", [1.0] * len(train))
        placeholder = [0.0] * len(self.label_names) if self.multi_label else 0
        extra = datasets.Dataset.from_dict({"text": texts, "label": [placeholder] * len(texts)})
        extra = extra.map(self._tokenize, batched=True, remove_columns=["text"], desc="tokenizing transfer set")
        extra = extra.add_column("has_label", [0.0] * len(extra))
        extra = extra.select_columns(train.column_names).cast(train.features)
        self.encoded["train"] = datasets.concatenate_datasets([train, extra])
        self.texts["train"] = self.texts["train"] + list(texts)
        self.lengths["train"] = self.lengths["train"] + [len(ids) for ids in extra["input_ids"]]

    def keep_train_texts(self, collate) -> None:
        """Put the raw text back into the training split and batch it with ``collate``
        (for losses that re-tokenize it, like the offset-aligned hidden-state loss)."""
        self.setup()
        self.encoded["train"] = self.encoded["train"].add_column("text", self.texts["train"])
        self.train_collate = collate

    def _tokenize(self, batch: dict) -> dict:
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

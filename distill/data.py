"""The distillation targets on the training split: the teacher's cached logits for every
example, unlabelled transfer texts, and both tokenizations for the hidden-state loss."""

from __future__ import annotations

from pathlib import Path

import datasets

from tweetcls.datamodules import TextClassificationDataModule
from tweetcls.distill.hidden_collator import AlignedDistillationCollator
from tweetcls.distill.teacher_cache import ensemble_teacher_logits
from tweetcls.distill.transfer_set import transfer_set
from tweetcls.core.build import load_tokenizer


def add_unlabelled_train_texts(datamodule: TextClassificationDataModule, texts: list[str]) -> None:
    """Append texts without labels to the training split (a distillation transfer set).

    Every training row gets ``has_label``: 1 for the dataset's own, 0 for these, whose
    ``label`` is a placeholder the loss must ignore (see ``distill.losses.kd_loss``).
    """
    datamodule.setup()
    train = datamodule.encoded["train"]
    if "has_label" not in train.column_names:
        train = train.add_column("has_label", [1.0] * len(train))
    placeholder = [0.0] * len(datamodule.label_names) if datamodule.multi_label else 0
    extra = datasets.Dataset.from_dict({"text": texts, "label": [placeholder] * len(texts)})
    extra = extra.map(datamodule.tokenize, batched=True, remove_columns=["text"], desc="tokenizing transfer set")
    extra = extra.add_column("has_label", [0.0] * len(extra))
    extra = extra.select_columns(train.column_names).cast(train.features)
    datamodule.replace_train(datasets.concatenate_datasets([train, extra]), datamodule.texts["train"] + list(texts),
                             datamodule.train_collate)


def add_train_column(datamodule: TextClassificationDataModule, name: str, values) -> None:
    """Attach per-example values (e.g. teacher logits) aligned with ``datamodule.texts["train"]``."""
    datamodule.setup()
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    train = datamodule.encoded["train"]
    if len(values) != len(train):
        raise ValueError(f"{name}: {len(values)} values for {len(train)} training examples")
    datamodule.replace_train(train.add_column(name, values), datamodule.texts["train"], datamodule.train_collate)


def prepare_distillation_data(
    datamodule: TextClassificationDataModule,
    teacher_dirs: list[Path],
    transfer_data: str | None = None,
    transfer_samples: int | None = None,
    hidden_loss: bool = False,
    precision: str = "32-true",
    device: str = "cpu",
    encoding: str = "utf-8",
) -> dict:
    """Put everything the distillation loss reads into the training split; returns what to record.
    Several teachers: the soft labels are their mean logits (the hidden-state loss needs one).
    ``encoding``: a transfer .txt or data file's (train.py's --encoding)."""
    datamodule.setup()
    info = {}
    if transfer_data:
        task = {name: list(split["text"]) for name, split in datamodule.load().splits.items()}
        extra = transfer_set(transfer_data, datamodule.data_dir, transfer_samples, task_texts=task,
                             encoding=encoding)
        add_unlabelled_train_texts(datamodule, extra.texts)
        info["transfer"] = extra.report(transfer_data)
    logits, caches = ensemble_teacher_logits(teacher_dirs, datamodule.texts["train"], datamodule.label_names,
                                             datamodule.max_length, precision, device)
    add_train_column(datamodule, "teacher_logits", logits)
    info["teacher_logits_cache"] = str(caches[0]) if len(caches) == 1 else [str(c) for c in caches]
    if hidden_loss:
        # the raw text goes back in, for the collator that tokenizes it for both models
        train = datamodule.encoded["train"].add_column("text", datamodule.texts["train"])
        collate = AlignedDistillationCollator(datamodule.tokenizer, load_tokenizer(teacher_dirs[0]), datamodule.max_length)
        datamodule.replace_train(train, datamodule.texts["train"], collate)
    return info

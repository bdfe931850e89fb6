"""A finished run's logits on its own dataset's splits, for experiments that rescore runs offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class SplitLogits:
    label_names: list[str]
    train_counts: torch.Tensor  # training examples per label: the prior
    logits: dict[str, torch.Tensor]  # split -> (n, labels), fp32
    labels: dict[str, torch.Tensor]  # split -> (n,)


def run_datamodule(results: dict, tokenizer):
    """The run's dataset as train.py read it (files, columns, max length), from its results.json."""
    from tweetcls.datamodules import TextClassificationDataModule

    config = results.get("config", {})
    return TextClassificationDataModule(results["dataset"], tokenizer, data_dir=config.get("data_dir"),
                                        max_length=int(config.get("max_length", 128)), eval_batch_size=128,
                                        text_column=config.get("text_column", "text"),
                                        label_column=config.get("label_column", "label"),
                                        val_file=config.get("val_file"), test_file=config.get("test_file"))


@torch.inference_mode()
def run_split_logits(run_dir: Path, splits: tuple[str, ...] = ("validation", "test")) -> SplitLogits:
    """Load the run's model/ and its dataset exactly as training read it (files, columns, max
    length) and return the model's logits on ``splits``; single-label runs only."""
    from tweetcls.loader import load_run

    run = load_run(run_dir)
    if run.multi_label:
        raise SystemExit(f"{run_dir}: multi-label; its decision rule is the val-tuned threshold, not an argmax")
    datamodule = run_datamodule(run.results, run.tokenizer)
    data = datamodule.load()
    datamodule.setup()
    counts = torch.bincount(torch.tensor(data.splits["train"]["label"]), minlength=len(data.label_names)).float()
    logits, labels = {}, {}
    for split in splits:
        parts, golds = [], []
        for batch in datamodule.split_dataloader(split):
            golds.append(batch.pop("labels"))
            inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            parts.append(run.model(**inputs).logits.float())
        logits[split], labels[split] = torch.cat(parts), torch.cat(golds)
    return SplitLogits(list(data.label_names), counts, logits, labels)

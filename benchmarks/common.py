"""What every benchmark shares: its flags, the model, one fixed random batch, the JSON."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("results")


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    return p


def classifier(name: str, num_labels: int = 4):
    from transformers import AutoModelForSequenceClassification, logging

    from tweetcls.core.resolve import resolve_model

    logging.set_verbosity_error()
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(resolve_model(name), num_labels=num_labels)


def random_batch(vocab_size: int, batch: int, seq: int) -> dict[str, torch.Tensor]:
    """The batch tweetcls.core.latency.measure_latency builds too (seed 0)."""
    ids = torch.randint(5, vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def write_result(name: str, args: argparse.Namespace, result: dict, folder: Path = RESULTS) -> Path:
    """``folder/name.json`` with the date, machine and torch version beside the numbers."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"date": date.today().isoformat(),
                                "machine": f"{platform.machine()}, {platform.platform()}",
                                "torch": torch.__version__, "config": vars(args), **result}, indent=2, default=str))
    return path
